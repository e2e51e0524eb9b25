package svc

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"
)

// TestStopOrKillStubborn: a daemon that ignores SIGINT and SIGTERM is killed
// once its grace period is over, the pid file goes, and the report says so.
func TestStopOrKillStubborn(t *testing.T) {
	p := testPaths(t)
	ctx, pid := startFake(t, p, "stubborn")
	began := time.Now()
	r, err := StopOrKill(ctx, p, 200*time.Millisecond)
	if err != nil {
		t.Fatalf("StopOrKill of a stubborn daemon: %v", err)
	}
	if r.PID != pid || !r.Killed {
		t.Fatalf("report %+v, want pid %d killed", r, pid)
	}
	if Alive(pid) {
		t.Fatalf("pid %d still alive after StopOrKill", pid)
	}
	if took := time.Since(began); took < 200*time.Millisecond || took > 15*time.Second {
		t.Errorf("took %v: want the grace period, then the kill", took)
	}
	if _, err := os.Stat(p.PIDFile); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pid file left after the kill: %v", err)
	}
}

// TestStopOrKillGraceful: a daemon that exits on SIGINT is not killed.
func TestStopOrKillGraceful(t *testing.T) {
	p := testPaths(t)
	ctx, pid := startFake(t, p, "serve")
	r, err := StopOrKill(ctx, p, 20*time.Second)
	if err != nil || r.PID != pid || r.Killed {
		t.Fatalf("StopOrKill = %+v, %v; want pid %d stopped without a kill", r, err, pid)
	}
	if r, err := StopOrKill(ctx, p, time.Second); err != nil || r.PID != 0 {
		t.Fatalf("StopOrKill with none running = %+v, %v", r, err)
	}
}

// TestStopOrKillCancelled: the caller's own deadline (Ctrl-C) ends the wait
// without a kill.
func TestStopOrKillCancelled(t *testing.T) {
	p := testPaths(t)
	ctx, pid := startFake(t, p, "stubborn")
	short, cancelShort := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancelShort()
	if r, err := StopOrKill(short, p, time.Minute); !errors.Is(err, context.DeadlineExceeded) || r.Killed {
		t.Fatalf("StopOrKill with the caller's deadline first = %+v, %v", r, err)
	}
	if !Alive(pid) {
		t.Fatal("the daemon was killed although only the caller gave up")
	}
}
