package svc

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rdd-project/rdd/internal/paths"
)

// KillWait bounds the wait for a daemon to vanish after SIGKILL. Only a
// process stuck in the kernel (uninterruptible I/O) outlives it.
var KillWait = 10 * time.Second

// StopReport says what StopOrKill did.
type StopReport struct {
	// PID is the daemon that ran; 0 when none did.
	PID int
	// Killed is true when the daemon outlived its grace period after SIGINT
	// and was sent SIGKILL.
	Killed bool
}

// StopOrKill stops the daemon like Stop, but gives it only grace to exit
// after SIGINT (0: no limit): a daemon that is still there then is sent
// SIGKILL, and StopOrKill waits up to KillWait for it to vanish. The
// processes a killed daemon supervised run in their own process groups and
// are adopted or stopped by the next daemon (behavior of Start); its socket
// and pid file are stale, which the next start handles. When ctx ends first
// nothing is killed: the error wraps ctx.Err().
func StopOrKill(ctx context.Context, p paths.Paths, grace time.Duration) (StopReport, error) {
	pid, err := RunningPID(p)
	if err != nil || pid == 0 {
		return StopReport{}, err
	}
	r := StopReport{PID: pid}
	// The pidfd pins this very process: SIGKILL cannot hit a reused pid.
	pidfd, pidfdErr := pidfdOpen(pid)
	if pidfdErr == nil {
		defer unix.Close(pidfd)
	}
	if err := syscall.Kill(pid, syscall.SIGINT); err != nil {
		if errors.Is(err, syscall.ESRCH) {
			return r, removePIDFile(p, pid)
		}
		return r, fmt.Errorf("signal rdd daemon (pid %d): %w; is it another user's? (see `rdd svc status`)", pid, err)
	}
	gctx, cancel := ctx, context.CancelFunc(func() {})
	if grace > 0 {
		gctx, cancel = context.WithTimeout(ctx, grace)
	}
	err = waitExit(gctx, pid, pidfd, pidfdErr == nil)
	cancel()
	if err == nil {
		return r, removePIDFile(p, pid)
	}
	if ctx.Err() != nil {
		return r, fmt.Errorf("stop rdd daemon (pid %d): %w", pid, ctx.Err())
	}
	r.Killed = true
	if pidfdErr == nil {
		err = pidfdKill(pidfd)
	} else {
		err = syscall.Kill(pid, syscall.SIGKILL)
	}
	if err != nil && !errors.Is(err, syscall.ESRCH) {
		return r, fmt.Errorf("rdd daemon (pid %d) did not exit within %v of SIGINT, and SIGKILL failed: %w", pid, grace, err)
	}
	kctx, cancel := context.WithTimeout(ctx, KillWait)
	defer cancel()
	if err := waitExit(kctx, pid, pidfd, pidfdErr == nil); err != nil {
		return r, fmt.Errorf("rdd daemon (pid %d) is still there %v after SIGKILL (stuck in the kernel? see /proc/%d/stack): %w", pid, KillWait, pid, err)
	}
	return r, removePIDFile(p, pid)
}
