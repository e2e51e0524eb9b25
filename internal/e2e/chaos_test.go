package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rdd-project/rdd/internal/events"
	"github.com/rdd-project/rdd/internal/spec"
)

// chaosRoundsEnv sets how many rounds TestChaos runs (`make chaos` asks
// for 100); chaosSeedEnv replays a failed run's choices.
const (
	chaosRoundsEnv     = "RDD_CHAOS_ROUNDS"
	chaosSeedEnv       = "RDD_CHAOS_SEED"
	defaultChaosRounds = 10
)

// chaosSettleBudget is how long the instance may take to be Settled again
// after a round's damage: a restarted daemon, and an engine restart when
// dockerd died or running was toggled.
const chaosSettleBudget = 90 * time.Second

// ack is a `rdd set` the daemon acknowledged: its SpecChanged seq and the
// property and value it set.
type ack struct {
	seq   uint64
	prop  string // dotted, as `rdd set` takes it
	value string
}

// engines are the values engine-switch rounds alternate between.
var engines = []string{string(spec.EngineMoby), string(spec.EngineContainerd)}

// TestChaos is the in-tree chaos harness of issue 10: it kills the daemon
// with SIGKILL at random moments while sets, engine restarts and switches of
// containerEngine.name (moby <-> containerd, each a machine restart) are
// under way, and kills the engine process (dockerd or containerd), and after
// every round checks what a user relies on: every acknowledged set is in the
// log, the log has no seq gap, it replays to the live status, and the
// instance becomes Settled again with the engine its spec names and no stray
// process (a private containerd left over from the other engine included).
// At the end `rdd stop` and `rdd svc stop` must leave no process and no mount
// of the instance.
//
// It starts from several CLIs starting the daemon implicitly at once, which
// must all share the daemon one of them spawned.
func TestChaos(t *testing.T) {
	rounds := defaultChaosRounds
	if v := os.Getenv(chaosRoundsEnv); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			t.Fatalf("%s=%q: want a number of rounds", chaosRoundsEnv, v)
		}
		rounds = n
	}
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv(chaosSeedEnv); v != "" {
		var err error
		if seed, err = strconv.ParseUint(v, 10, 64); err != nil {
			t.Fatalf("%s=%q: want a number", chaosSeedEnv, v)
		}
	}
	t.Logf("chaos: %d rounds, %s=%d", rounds, chaosSeedEnv, seed)
	rng := rand.New(rand.NewPCG(seed, seed^0x5eed))
	vs, err := spec.Bundled()
	if err != nil {
		t.Fatal(err)
	}
	versions := vs.List()
	if len(versions) < 2 {
		t.Fatalf("need two supported Kubernetes versions to alternate, have %v", versions)
	}

	in := newInstance(t)
	// Runs before teardown (cleanups run last first): the instance is still
	// as the failed check found it.
	t.Cleanup(func() {
		if t.Failed() {
			in.dumpEvidence()
		}
	})
	// The race runtime sleeps a second at every exit to flush reports;
	// a round runs a dozen short CLI commands.
	in.env = append(in.env, "GORACE="+strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	in.concurrentImplicitStarts(4, versions)
	in.must("start", "--timeout=3m")

	var acks []ack
	counts := map[string]int{}
	var settleTimes []time.Duration
	for round := range rounds {
		kind := []string{"sets", "engine restart", "engine process", "engine switch"}[rng.IntN(4)]
		counts[kind]++
		delay := time.Duration(rng.IntN(400)) * time.Millisecond
		killed := 0 // the engine process the round killed: the status must move past it
		switch kind {
		case "sets":
			acks = append(acks, in.chaosSets("kubernetes.version", versions, round, rng.IntN(4), false, delay)...)
		case "engine restart":
			acks = append(acks, in.chaosEngineRestart(delay)...)
		case "engine process":
			killed = in.chaosEngineProcess(delay, rng.IntN(2) == 0)
		case "engine switch":
			// A switch stops one engine and starts the other (containerd,
			// then dockerd for moby): up to a few seconds of restart to
			// land the kill in. Sets that wait for Settled put it in one
			// whole restart; sets that do not, in restarts overtaken by
			// the next switch.
			delay = time.Duration(rng.IntN(2500)) * time.Millisecond
			first := slices.Index(engines, string(in.status().Spec.ContainerEngine.Name)) + 1
			acks = append(acks, in.chaosSets("containerEngine.name", engines, first, rng.IntN(3), rng.IntN(2) == 0, delay)...)
		}
		began := time.Now()
		// The next command starts the daemon again, implicitly, and asks for
		// a running engine (a no-op unless the round stopped it).
		in.must("set", "running=true", "--wait=false")
		s := in.waitStatus(chaosSettleBudget, fmt.Sprintf("Settled after round %d (%s)", round, kind), func(s events.Snapshot) bool {
			ready := "Connected" // dockerd's API is synced
			if s.Spec.ContainerEngine.Name == spec.EngineContainerd {
				ready = "NotApplicable"
			}
			return s.Spec.Running &&
				s.Machine(events.MachineVM).Facts.PID != killed &&
				condIs(s, events.CondSettled, events.StatusTrue, "Settled") &&
				cond(s, events.CondSettled).ObservedGeneration == s.Generation &&
				condIs(s, events.CondContainerEngineReady, events.StatusTrue, ready)
		})
		settleTimes = append(settleTimes, time.Since(began))
		checks := time.Now()
		in.assertOnlyEngineOf(s.Spec.ContainerEngine.Name, s.Machine(events.MachineVM).Facts.PID)
		in.assertLogKept(acks)
		in.assertReplayMatchesLive()
		t.Logf("round %d: %s, kill after %v, Settled %v after, checks %v", round, kind, delay, settleTimes[round].Round(time.Millisecond), time.Since(checks).Round(time.Millisecond))
		if t.Failed() {
			t.Fatalf("round %d (%s, kill after %v) failed; rerun with %s=%d", round, kind, delay, chaosSeedEnv, seed)
		}
	}
	byProp := map[string]int{}
	for _, a := range acks {
		byProp[a.prop]++
	}
	t.Logf("chaos: rounds by kind %v, %d acknowledged sets kept %v, Settled again after %s (median) / %s (max)",
		counts, len(acks), byProp, median(settleTimes), maxOf(settleTimes))

	in.must("stop", "--timeout=2m")
	in.must("svc", "stop")
	if procs := in.processes(); len(procs) > 0 {
		t.Errorf("processes of the instance left after rdd stop + rdd svc stop: %v", procs)
	}
	if left := mountsUnder(t, in.home); len(left) > 0 {
		t.Errorf("mounts of the instance left after rdd stop + rdd svc stop: %v", left)
	}
}

// concurrentImplicitStarts runs n `rdd set` at once with no daemon: each
// starts it implicitly, and all must succeed on the one daemon spawned.
func (in *instance) concurrentImplicitStarts(n int, versions []string) {
	in.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	fails := make([]string, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v := "kubernetes.version=" + versions[i%len(versions)]
			if out, errOut, code := in.rdd(ctx, "set", v, "--wait=false"); code != 0 {
				fails[i] = fmt.Sprintf("exit %d: %s%s", code, out, errOut)
			}
		}()
	}
	wg.Wait()
	for i, f := range fails {
		if f != "" {
			in.t.Errorf("concurrent implicit start %d of %d: %s", i+1, n, f)
		}
	}
	if in.t.Failed() {
		in.t.FailNow()
	}
}

// chaosSets sets prop to values[first], values[first+1], ... (cycling), one
// set after another, each waiting for Settled when wait is true, and kills
// the daemon delay after the after-th acknowledgment. It returns the sets
// the daemon acknowledged (a waiting set the kill cut short counts as not
// acknowledged).
func (in *instance) chaosSets(prop string, values []string, first, after int, wait bool, delay time.Duration) []ack {
	in.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var (
		mu    sync.Mutex
		acks  []ack
		done  = make(chan struct{})
		acked = make(chan struct{}, 1024)
	)
	go func() {
		defer close(done)
		for i := 0; ctx.Err() == nil; i++ {
			// Consecutive values differ: every set is a real spec change
			// (kubernetes.version while Kubernetes is off starts nothing;
			// containerEngine.name restarts the machine).
			v := values[(first+i)%len(values)]
			waitFlag := "--wait=false"
			if wait {
				waitFlag = "--timeout=1m"
			}
			out, _, code := in.rdd(ctx, "set", prop+"="+v, waitFlag, "-o", "json")
			if code != 0 {
				continue // not acknowledged: it may or may not be in the log
			}
			var r struct {
				Seq uint64 `json:"seq"`
			}
			if err := json.Unmarshal([]byte(out), &r); err != nil {
				in.t.Errorf("set %s=%s was acknowledged with %q: %v", prop, v, out, err)
				continue
			}
			if r.Seq == 0 {
				continue // the value it had already (a set the kill interrupted may have stored it)
			}
			mu.Lock()
			acks = append(acks, ack{seq: r.Seq, prop: prop, value: v})
			mu.Unlock()
			acked <- struct{}{}
		}
	}()
	stuck := time.NewTimer(time.Minute)
	defer stuck.Stop()
wait:
	for range after {
		select {
		case <-acked:
		case <-stuck.C:
			in.t.Errorf("no set acknowledged within a minute")
			break wait
		}
	}
	in.killDaemonAfter(delay)
	cancel()
	<-done
	return acks
}

// chaosEngineRestart stops and starts the engine through sets and kills the
// daemon after delay, somewhere in that restart.
func (in *instance) chaosEngineRestart(delay time.Duration) []ack {
	in.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _, _ = in.rdd(ctx, "set", "running=false", "--timeout=1m")
		_, _, _ = in.rdd(ctx, "set", "running=true", "--wait=false")
	}()
	in.killDaemonAfter(delay)
	cancel()
	<-done
	return nil
}

// chaosEngineProcess kills the engine process (dockerd, or containerd for
// the containerd engine), and returns its pid; with alsoDaemon, the daemon
// too, after delay, while it is bringing the engine back.
func (in *instance) chaosEngineProcess(delay time.Duration, alsoDaemon bool) int {
	in.t.Helper()
	s := in.status()
	pid := s.Machine(events.MachineVM).Facts.PID
	if pid <= 0 {
		in.t.Fatal("no engine pid in the status")
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		in.t.Fatalf("kill the %s engine process %d: %v", s.Spec.ContainerEngine.Name, pid, err)
	}
	if alsoDaemon {
		in.killDaemonAfter(delay)
	}
	return pid
}

// killDaemonAfter kills the daemon with SIGKILL once delay has passed (the
// random moment of the round), if one runs then.
func (in *instance) killDaemonAfter(delay time.Duration) {
	in.t.Helper()
	timer := time.NewTimer(delay)
	<-timer.C
	if pid := in.daemonPID(); pid > 0 && syscall.Kill(pid, syscall.SIGKILL) == nil {
		waitGone(in.t, pid)
	}
}

// assertLogKept checks the log has no seq gap and holds every acknowledged
// set under the seq it was acknowledged with.
func (in *instance) assertLogKept(acks []ack) {
	in.t.Helper()
	envs := in.eventsJSON()
	bySeq := make(map[uint64]events.Envelope, len(envs))
	for i, e := range envs {
		if e.Seq != uint64(i)+1 {
			in.t.Fatalf("the log has a gap: event %d of the export has seq %d", i+1, e.Seq)
		}
		bySeq[e.Seq] = e
	}
	for _, a := range acks {
		e, ok := bySeq[a.seq]
		if !ok || e.Type != events.TypeSpecChanged {
			in.t.Fatalf("acknowledged set of %s=%s (seq %d) is not in the log (found %s)", a.prop, a.value, a.seq, e.Type)
		}
		var p events.SpecChanged
		err := json.Unmarshal(e.Data, &p)
		if got := p.Spec.Value(a.prop); err != nil || got != a.value {
			in.t.Fatalf("seq %d holds %s=%v, acknowledged as %s (%v)", a.seq, a.prop, got, a.value, err)
		}
	}
}

// processes lists the live processes whose command line names the
// instance's HOME, as "pid argv0".
func (in *instance) processes() []string {
	var out []string
	for _, p := range scanProcs(in.home) {
		if p.State != 'Z' { // a zombie holds nothing
			out = append(out, fmt.Sprintf("%d %s", p.PID, p.name()))
		}
	}
	return out
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
	return s[len(s)/2].Round(time.Millisecond)
}

func maxOf(ds []time.Duration) time.Duration {
	var m time.Duration
	for _, d := range ds {
		m = max(m, d)
	}
	return m.Round(time.Millisecond)
}
