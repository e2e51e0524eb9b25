package svc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/rdd-project/rdd/internal/paths"
)

// startLockName is the file, in D, whose flock serializes implicit starts:
// two CLIs that both found no daemon used to spawn one each, and the CLI
// whose daemon lost the race for the event log failed with "the daemon
// exited before it served" (issue 10). The kernel drops the lock when its
// holder exits, so a killed CLI never leaves it held.
const startLockName = "rdd.start.lock"

// lockStart takes the start lock of p, waiting while another CLI holds it
// (it is starting the daemon) until ctx ends. The returned func releases it.
func lockStart(ctx context.Context, p paths.Paths) (release func(), err error) {
	if err := p.EnsureDirs(); err != nil {
		return nil, err
	}
	path := filepath.Join(p.ServiceDir, startLockName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open the daemon start lock: %w", err)
	}
	t := time.NewTicker(PollInterval / 4)
	defer t.Stop()
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { _ = f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("wait for another rdd command to start the daemon (it holds %s): %w", path, ctx.Err())
		case <-t.C:
		}
	}
}

// eventLogHeld reports whether a process holds the flock the daemon's store
// takes on its event log, i.e. whether a daemon runs (or is starting) on it.
// The probe's own shared lock lasts microseconds; a daemon opening the log
// at that moment retries its lock for a second (store.DefaultTimeout).
func eventLogHeld(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	err = syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB)
	return errors.Is(err, syscall.EWOULDBLOCK)
}
