package host

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// fallbackPollInterval is how often a watcher without pidfd support checks
// whether its process still runs.
const fallbackPollInterval = 500 * time.Millisecond

// teardownGrace bounds how long a machine watcher waits, after one process
// of the machine exited, for the others to exit on SIGTERM before it sends
// SIGKILL.
const teardownGrace = 10 * time.Second

// waitExit blocks until rec exits (true) or ctx ends (false). With usePidfd
// it waits on a pidfd (pidfd_open, Linux 5.3+) next to a pipe that ctx's
// cancellation closes, so it costs no CPU while it waits; without pidfd
// support it checks /proc every fallbackPollInterval.
func waitExit(ctx context.Context, rec procRecord, usePidfd bool) bool {
	if usePidfd {
		if exited, ok := waitPidfd(ctx, rec); ok {
			return exited
		}
	}
	t := time.NewTicker(fallbackPollInterval)
	defer t.Stop()
	for {
		if !rec.alive() {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
	}
}

// waitPidfd is waitExit over a pidfd. ok is false when pidfds are not
// available and the caller must poll instead.
func waitPidfd(ctx context.Context, rec procRecord) (exited, ok bool) {
	fd, err := pidfdOpen(rec.PID)
	if errors.Is(err, unix.ESRCH) {
		return true, true
	}
	if err != nil {
		return false, false
	}
	defer unix.Close(fd)
	// The fd pins the pid: if it is still the recorded process now, every
	// later exit shows up on the fd.
	if !rec.alive() {
		return true, true
	}
	r, w, err := os.Pipe()
	if err != nil {
		return false, false
	}
	defer r.Close()
	stop := context.AfterFunc(ctx, func() { _ = w.Close() })
	defer func() {
		stop()
		_ = w.Close() // a second Close (after the AfterFunc's) only returns an error
	}()
	rc, err := r.SyscallConn()
	if err != nil {
		return false, false
	}
	var cancelFD int32
	if err := rc.Control(func(u uintptr) { cancelFD = int32(u) }); err != nil {
		return false, false
	}
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}, {Fd: cancelFD, Events: unix.POLLIN}}
	for {
		_, err := unix.Poll(fds, -1)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return false, false
		}
		if fds[0].Revents != 0 {
			return true, true
		}
		if fds[1].Revents != 0 {
			return false, true
		}
	}
}

// machine watches the processes of one running machine. exited is closed
// once any of them exited and the driver has stopped the rest, so that a
// machine is either whole or gone when a reader sees exited closed.
type machine struct {
	st       state
	exited   chan struct{}
	cancel   context.CancelFunc
	done     chan struct{} // closed when every goroutine of the watcher returned
	stopping atomic.Bool   // set by Stop: the exit is expected
}

// procExit is what a process watcher reports.
type procExit struct {
	rec    procRecord
	status string // "exit status 1", "signal: killed", or "exited" when not our child
}

// watchMachine starts the watcher of st. cmds holds the exec.Cmd of processes
// that are children of this rdd (they are reaped after they exit); adopted
// processes have none.
func (d *Driver) watchMachine(st state, cmds map[int]*exec.Cmd) *machine {
	ctx, cancel := context.WithCancel(context.Background())
	m := &machine{st: st, exited: make(chan struct{}), cancel: cancel, done: make(chan struct{})}
	exits := make(chan procExit, len(st.Procs))
	var wg sync.WaitGroup
	for _, rec := range st.Procs {
		cmd := cmds[rec.PID]
		wg.Go(func() {
			if !waitExit(ctx, rec, d.usePidfd) {
				return
			}
			e := procExit{rec: rec, status: "exited"}
			if cmd != nil {
				// Reap our child; Wait returns at once because it exited.
				if err := cmd.Wait(); err != nil {
					e.status = err.Error()
				} else {
					e.status = cmd.ProcessState.String()
				}
			}
			exits <- e
		})
	}
	go func() {
		defer close(m.done)
		defer wg.Wait()
		defer cancel()
		select {
		case e := <-exits:
			lvl := zap.WarnLevel
			if m.stopping.Load() {
				lvl = zap.InfoLevel
			}
			d.log.Log(lvl, "engine process exited", zap.String("process", e.rec.Name), zap.Int("pid", e.rec.PID), zap.String("status", e.status), zap.String("log", e.rec.Log))
			teardown(ctx, st)
			close(m.exited)
		case <-ctx.Done():
		}
	}()
	return m
}

// teardown stops whatever still runs of st after one of its processes
// exited: SIGTERM, then SIGKILL after teardownGrace. It gives up when ctx ends.
func teardown(ctx context.Context, st state) {
	if len(st.live()) == 0 {
		return
	}
	for i := len(st.Procs) - 1; i >= 0; i-- {
		st.Procs[i].signal(syscall.SIGTERM)
	}
	gctx, cancel := context.WithTimeout(ctx, teardownGrace)
	defer cancel()
	if waitUntil(gctx, func() bool { return len(st.live()) == 0 }) || ctx.Err() != nil {
		return
	}
	for _, p := range st.Procs {
		p.signal(syscall.SIGKILL)
	}
	kctx, cancel := context.WithTimeout(ctx, teardownGrace)
	defer cancel()
	waitUntil(kctx, func() bool { return len(st.live()) == 0 })
}
