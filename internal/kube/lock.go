package kube

import (
	"context"
	"errors"
	"os"
	"time"
)

// DefaultLockWait bounds how long rdd waits for kubectl's lock on a
// kubeconfig. kubectl holds it for milliseconds; a lock older than this is a
// concurrent long writer or debris, and the caller retries on its next pass.
const DefaultLockWait = 2 * time.Second

const (
	lockPollMin = 5 * time.Millisecond
	lockPollMax = 100 * time.Millisecond
)

// lockName is kubectl's lock path for a kubeconfig (clientcmd's lockName).
func lockName(path string) string { return path + ".lock" }

// acquireLock takes kubectl's lock for the kubeconfig at path: it creates
// path+".lock" with O_EXCL, retrying until wait has passed or ctx ends. The
// returned release removes the lock; it must be called exactly once. The
// directory must exist. Errors other than "exists" fail at once, named after
// path, because retrying cannot fix them (ENOTDIR, EACCES, EROFS).
func acquireLock(ctx context.Context, path string, wait time.Duration) (release func(), err error) {
	if wait <= 0 {
		wait = DefaultLockWait
	}
	lock := lockName(path)
	start := time.Now()
	deadline := start.Add(wait)
	poll := lockPollMin
	for {
		f, err := os.OpenFile(lock, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err == nil {
			// The lock is the file's existence; its content does not matter.
			_ = f.Close()
			return func() { _ = os.Remove(lock) }, nil
		}
		if !errors.Is(err, os.ErrExist) {
			return nil, &FileError{Op: OpWrite, Path: path, Err: err}
		}
		now := time.Now()
		if !now.Before(deadline) {
			return nil, &LockError{Lock: lock, Waited: now.Sub(start).Round(time.Millisecond)}
		}
		t := time.NewTimer(min(poll, deadline.Sub(now)))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
		poll = min(2*poll, lockPollMax)
	}
}
