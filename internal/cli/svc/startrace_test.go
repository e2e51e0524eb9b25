package svc

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// holdEventLog is the fake daemon's store: an exclusive flock on the event
// log, kept until exit. A loser prints what the real daemon says and exits 1.
func holdEventLog() int {
	f, err := os.OpenFile(os.Getenv("RDD_SVC_TEST_EVENTLOG"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		if lost := os.Getenv("RDD_SVC_TEST_LOST"); lost != "" {
			_ = os.WriteFile(lost, nil, 0o600)
		}
		fmt.Fprintln(os.Stderr, "rdd daemon already running: the event log is held by another process")
		return 1
	}
	if gate := os.Getenv("RDD_SVC_TEST_GATE"); gate != "" {
		t := time.NewTicker(10 * time.Millisecond)
		for range t.C {
			if _, err := os.Stat(gate); err == nil {
				break
			}
		}
		t.Stop()
	}
	return 0 // f stays open, and locked, until the process exits
}

func exclusiveOptions(t *testing.T, o StartOptions, extra ...string) StartOptions {
	o.Env = append(append(o.Env, "RDD_SVC_TEST_EVENTLOG="+o.Paths.EventLog), extra...)
	return o
}

// waitFor polls cond every 10 ms until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(d)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline:
			t.Fatalf("timed out after %v waiting for %s", d, what)
		case <-tick.C:
		}
	}
}

// TestConcurrentStartsShareOneDaemon is issue 10's reproduction: CLIs that
// all start the daemon implicitly at once. Every one must succeed, using the
// one daemon that was spawned, instead of failing with "the daemon exited
// before it served".
func TestConcurrentStartsShareOneDaemon(t *testing.T) {
	p := testPaths(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	o := exclusiveOptions(t, startOptions(t, p, "exclusive"))
	const n = 6
	var wg sync.WaitGroup
	pids := make([]int, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() { defer wg.Done(); pids[i], errs[i] = start(t, ctx, o) }()
	}
	wg.Wait()
	spawned := 0
	for i := range n {
		if errs[i] != nil {
			t.Errorf("start %d: %v", i, errs[i])
		}
		if pids[i] != 0 {
			spawned++
		}
	}
	if spawned != 1 {
		t.Errorf("%d starts spawned a daemon, want exactly 1", spawned)
	}
	if _, err := StopOrKill(ctx, p, 10*time.Second); err != nil {
		t.Fatal(err)
	}
}

// TestStartUsesTheDaemonThatWonTheLog: a daemon started without the start
// lock (`rdd daemon` in a terminal) holds the event log but does not serve
// yet; the daemon Start spawns exits on the held log, and Start then waits
// for the winner instead of failing.
func TestStartUsesTheDaemonThatWonTheLog(t *testing.T) {
	p := testPaths(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := p.EnsureDirs(); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	gate, lost := filepath.Join(dir, "gate"), filepath.Join(dir, "lost")
	o := exclusiveOptions(t, startOptions(t, p, "exclusive"), "RDD_SVC_TEST_GATE="+gate, "RDD_SVC_TEST_LOST="+lost)

	winner := exec.Command(o.Command[0])
	winner.Env = o.Env
	if err := winner.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = winner.Wait(); close(exited) }()
	t.Cleanup(func() { _ = winner.Process.Kill(); <-exited })
	waitFor(t, 10*time.Second, "the first daemon to hold the event log", func() bool { return eventLogHeld(p.EventLog) })

	type result struct {
		pid int
		err error
	}
	done := make(chan result, 1)
	go func() { pid, err := start(t, ctx, o); done <- result{pid, err} }()
	waitFor(t, 20*time.Second, "the spawned daemon to lose the event log", func() bool {
		_, err := os.Stat(lost)
		return err == nil
	})
	if err := os.WriteFile(gate, nil, 0o600); err != nil { // now let the winner serve
		t.Fatal(err)
	}
	select {
	case r := <-done:
		if r.err != nil {
			t.Fatalf("Start after losing the event log: %v, want it to use the winner", r.err)
		}
	case <-ctx.Done():
		t.Fatal("Start did not return")
	}
	if pid, err := RunningPID(p); err != nil || pid != winner.Process.Pid {
		t.Fatalf("running daemon pid %d (%v), want the winner %d", pid, err, winner.Process.Pid)
	}
}
