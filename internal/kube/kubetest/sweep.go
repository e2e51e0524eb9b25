package kubetest

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// Temporary directories are named with these prefixes and hold an owner file
// with the creating process's pid, so a later run can remove what a test
// binary killed before its cleanup (a timeout, SIGKILL) left behind.
const (
	dirPrefix     = "kubetest-"
	etcdDirPrefix = "kubetest-etcd-"
	shmDir        = "/dev/shm"
	ownerFile     = "owner.pid"
)

// makeOwnedTemp creates a temporary directory under parent and records this
// process as its owner.
func makeOwnedTemp(parent, prefix string) (string, error) {
	d, err := os.MkdirTemp(parent, prefix)
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(d, ownerFile), []byte(strconv.Itoa(os.Getpid())), 0o600); err != nil {
		_ = os.RemoveAll(d)
		return "", err
	}
	return d, nil
}

// sweepStale removes harness directories whose owner process is gone. A
// directory without a readable owner file is left alone: it may be being
// created right now, or not be ours.
func sweepStale() {
	for _, parent := range []string{os.TempDir(), shmDir} {
		entries, err := os.ReadDir(parent)
		if err != nil {
			continue
		}
		for _, e := range entries {
			if !e.IsDir() || !strings.HasPrefix(e.Name(), dirPrefix) {
				continue
			}
			d := filepath.Join(parent, e.Name())
			b, err := os.ReadFile(filepath.Join(d, ownerFile))
			if err != nil {
				continue
			}
			pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
			if err != nil || pid <= 0 || alive(pid) {
				continue
			}
			_ = os.RemoveAll(d)
		}
	}
}

// alive reports whether a process with pid exists (EPERM: it does, owned by
// someone else).
func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
