package e2e

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rdd-project/rdd/internal/events"
	"github.com/rdd-project/rdd/internal/mounts"
	"github.com/rdd-project/rdd/internal/spec"
)

// settleBudget is how long a new daemon may take to report Settled after a
// crash interrupted `rdd start`, whatever the moment of the crash (a clean
// restart takes about a second).
const settleBudget = 5 * time.Second

// holdEnv makes the host driver block its start at a named point (see
// internal/vm/host, testHoldEnv), so the test can kill the daemon there.
const holdEnv = "RDD_HOST_TEST_HOLD"

// TestCrashDuringStart kills the daemon with SIGKILL at several moments of
// `rdd start` and checks that the next daemon heals the half-started
// engine at once: Settled within settleBudget, no orphaned containerd or
// dockerd of the instance, and a log that replays to the live status.
func TestCrashDuringStart(t *testing.T) {
	for _, tc := range []struct {
		name string
		hold string // RDD_HOST_TEST_HOLD of the first daemon
		// reached blocks until the first daemon is at the moment to kill it.
		reached func(in *instance)
	}{
		{"starting transition", "", func(in *instance) {
			in.waitStatus(time.Minute, "vm starting", func(s events.Snapshot) bool {
				return s.Machine(events.MachineVM).State == string(events.VMStarting)
			})
		}},
		{"containerd up, dockerd not started", "containerd", func(in *instance) {
			in.waitDaemonLog(time.Minute, `"after":"containerd"`)
		}},
		{"dockerd spawned, not answering yet", "dockerd", func(in *instance) {
			in.waitDaemonLog(time.Minute, `"after":"dockerd"`)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := newInstance(t)
			first := *in
			first.env = append(append([]string(nil), in.env...), holdEnv+"="+tc.hold)
			// The daemon takes its environment from the command that spawns it.
			first.must("svc", "start")
			ctx, cancel := context.WithCancel(context.Background())
			startDone := make(chan struct{})
			go func() {
				defer close(startDone)
				_, _, _ = first.rdd(ctx, "start", "--timeout=3m")
			}()
			defer func() { cancel(); <-startDone }()
			tc.reached(in)
			in.killDaemon()
			cancel()
			<-startDone

			began := time.Now()
			in.must("svc", "start")
			s := in.waitStatus(time.Minute, "Settled after the crash", func(s events.Snapshot) bool {
				return condIs(s, events.CondSettled, events.StatusTrue, "Settled") &&
					cond(s, events.CondSettled).ObservedGeneration == s.Generation &&
					condIs(s, events.CondRunning, events.StatusTrue, "Started") &&
					condIs(s, events.CondContainerEngineReady, events.StatusTrue, "Connected")
			})
			took := time.Since(began)
			t.Logf("interrupted at %q: Settled %s after the new daemon was started", tc.name, took.Round(time.Millisecond))
			if took > settleBudget {
				t.Errorf("Settled %s after the new daemon was started, budget %s\n%s", took, settleBudget, in.must("events"))
			}
			in.assertOnlyEngine(s.Machine(events.MachineVM).Facts.PID)
			in.assertReplayMatchesLive()
		})
	}
}

// TestDockerdKillDoesNotLeakMounts kills dockerd alone while the daemon
// runs: the engine comes back with the mounts of one dockerd under the
// instance, and after a stop none is left.
func TestDockerdKillDoesNotLeakMounts(t *testing.T) {
	in := newInstance(t)
	in.must("start", "--timeout=3m")
	s := in.status()
	pid := s.Machine(events.MachineVM).Facts.PID
	before := mountsUnder(t, in.home)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	s = in.waitStatus(2*time.Minute, "the engine to come back", func(s events.Snapshot) bool {
		return s.Machine(events.MachineVM).Facts.PID != pid &&
			condIs(s, events.CondContainerEngineReady, events.StatusTrue, "Connected") &&
			condIs(s, events.CondSettled, events.StatusTrue, "Settled")
	})
	if after := mountsUnder(t, in.home); len(after) != len(before) {
		t.Errorf("mounts under the instance: %d before dockerd was killed, %d after it came back\nbefore: %v\nafter:  %v",
			len(before), len(after), before, after)
	}
	in.assertOnlyEngine(s.Machine(events.MachineVM).Facts.PID)
	// The mount the killed dockerd left is the one the next dockerd found
	// already there, and so did not unmount on a clean stop: it stayed until
	// the instance was deleted.
	in.must("stop", "--timeout=2m")
	if left := mountsUnder(t, in.home); len(left) > 0 {
		t.Errorf("mounts left under the instance after stop: %v", left)
	}
	in.assertReplayMatchesLive()
}

// killDaemon kills the daemon with SIGKILL and waits until it is gone.
func (in *instance) killDaemon() {
	in.t.Helper()
	pid := in.daemonPID()
	if pid <= 0 {
		in.t.Fatal("no daemon pid file")
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		in.t.Fatal(err)
	}
	waitGone(in.t, pid)
}

// waitDaemonLog polls the daemon log until it contains s.
func (in *instance) waitDaemonLog(timeout time.Duration, s string) {
	in.t.Helper()
	log := in.path(".local", "state", "rancher-desktop-2", "rdd.log")
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for ; ; <-tick.C {
		if b, err := os.ReadFile(log); err == nil && bytes.Contains(b, []byte(s)) {
			return
		}
		if time.Now().After(deadline) {
			in.t.Fatalf("%s does not contain %q after %s", log, s, timeout)
		}
	}
}

// assertOnlyEngine fails unless exactly one containerd and one dockerd of
// this instance run, and the dockerd is enginePID: nothing a crashed start
// spawned is left over.
func (in *instance) assertOnlyEngine(enginePID int) {
	in.t.Helper()
	in.assertOnlyEngineOf(spec.EngineMoby, enginePID)
}

// assertOnlyEngineOf fails unless exactly the processes of engine run for
// this instance, with enginePID the engine process (onlyEngineOf).
func (in *instance) assertOnlyEngineOf(engine spec.EngineName, enginePID int) {
	in.t.Helper()
	ps := scanProcs(in.home)
	if err := onlyEngineOf(ps, engine, enginePID); err != nil {
		// Shown from the same scan: a process about to exit or exec is
		// gone by the time the test's clean-up dumps its evidence.
		lines := make([]string, len(ps))
		for i, p := range ps {
			lines[i] = p.String()
		}
		in.t.Fatalf("%v; in detail (pid ppid pgid state start-ticks age cmdline):\n  %s", err, strings.Join(lines, "\n  "))
	}
	if _, forks := unexecedForks(ps); len(forks) > 0 {
		in.t.Logf("not counted: %d fork(s) of an engine process that had not exec'd yet: %v", len(forks), forks)
	}
}

// assertReplayMatchesLive checks that the exported log folds to exactly the
// live status. The daemon may still append (the engine watcher's
// observations) right after Settled, so export, status and export again
// until the log did not move in between.
func (in *instance) assertReplayMatchesLive() {
	in.t.Helper()
	var exported, live string
	for i := 0; ; i++ {
		exported = in.must("events", "-o", "json")
		live = in.must("status", "-o", "json")
		if in.must("events", "-o", "json") == exported {
			break
		}
		if i == 20 {
			in.t.Fatal("the daemon keeps appending events while idle")
		}
	}
	replay := exec.Command(rddBin, "replay", "-", "-o", "json")
	replay.Env = in.env
	replay.Stdin = strings.NewReader(exported)
	replayed, err := replay.Output()
	if err != nil {
		in.t.Fatalf("rdd replay -: %v", err)
	}
	if string(replayed) != live {
		in.t.Fatalf("replay differs from live status\nreplay: %s\nlive:   %s", replayed, live)
	}
}

// mountsUnder lists the mount points at or below dir.
func mountsUnder(t *testing.T, dir string) []string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 4 {
			if mp := mounts.Unescape(f[4]); mp == dir || strings.HasPrefix(mp, dir+"/") {
				out = append(out, mp)
			}
		}
	}
	return out
}
