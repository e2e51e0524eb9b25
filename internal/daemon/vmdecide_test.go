package daemon

import (
	"strings"
	"testing"
	"time"

	"github.com/rdd-project/rdd/internal/events"
	"github.com/rdd-project/rdd/internal/fsm"
	"github.com/rdd-project/rdd/internal/vm"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// vmIn is a running App at generation 3, fully applied, in state s.
func vmIn(s events.VMState, mods ...func(*vmInput)) vmInput {
	in := vmInput{
		state: s, exists: true, running: true, gen: 3, observed: 3,
		facts: events.Facts{PID: 42, RestartCount: 1, TemplateHash: "h1", RestartKey: "k1"},
		hash:  "h1", restartKey: "k1", noun: "Host engine", now: t0,
	}
	for _, m := range mods {
		m(&in)
	}
	return in
}

var (
	stopped    = func(in *vmInput) { in.running = false }
	deleted    = func(in *vmInput) { in.exists = false; in.running = false }
	newGen     = func(in *vmInput) { in.gen = 4 }
	retryLater = func(in *vmInput) { in.retryAt = t0.Add(time.Second) }
	retryPast  = func(in *vmInput) { in.retryAt = t0.Add(-time.Second) }
	// kubeToggled changes the configuration but not what needs a restart.
	kubeToggled = func(in *vmInput) { in.gen, in.hash = 4, "h2" }
	// engineSwitched changes what needs a restart.
	engineSwitched = func(in *vmInput) { in.gen, in.hash, in.restartKey = 4, "h2", "k2" }
	noKeyRecorded  = func(in *vmInput) { in.facts.RestartKey = "" }
	booting        = func(in *vmInput) { in.booting = true }
)

func TestDecideVM(t *testing.T) {
	type want struct {
		op    vmOp
		event fsm.Event
		gen   int64
		msg   string // substring of the recorded message, if any
	}
	cases := []struct {
		name string
		in   vmInput
		want want
	}{
		// absent / creating / createFailed
		{"absent creates", vmIn(events.VMAbsent), want{vmFire, fsm.VMCreate, 3, ""}},
		{"creating runs the create effect", vmIn(events.VMCreating), want{vmCreate, "", 3, ""}},
		{"createFailed waits for its retry", vmIn(events.VMCreateFailed, retryLater), want{vmIdle, "", 0, ""}},
		{"createFailed retries when due", vmIn(events.VMCreateFailed, retryPast), want{vmFire, fsm.VMCreate, 3, ""}},
		// stopped
		{"stopped starts when running is wanted", vmIn(events.VMStopped), want{vmFire, fsm.VMStart, 3, "is starting"}},
		{"stopped stays stopped", vmIn(events.VMStopped, stopped), want{vmIdle, "", 0, ""}},
		{"stopped takes a new generation without a boot", vmIn(events.VMStopped, stopped, newGen), want{vmObserve, "", 4, ""}},
		{"stopped takes a new template without a boot", vmIn(events.VMStopped, stopped, engineSwitched), want{vmObserve, "", 4, ""}},
		// starting
		{"starting runs the start effect", vmIn(events.VMStarting), want{vmStart, "", 3, ""}},
		{"starting waits out a crash-loop delay", vmIn(events.VMStarting, retryLater), want{vmIdle, "", 0, ""}},
		{"starting starts after the delay", vmIn(events.VMStarting, retryPast), want{vmStart, "", 3, ""}},
		{"a boot goes on without a new start", vmIn(events.VMStarting, booting), want{vmIdle, "", 0, ""}},
		{"a stop does not wait for the boot", vmIn(events.VMStarting, booting, stopped), want{vmFire, fsm.VMStop, 3, "boots"}},
		{"a new template does not wait for the boot", vmIn(events.VMStarting, booting, engineSwitched), want{vmFire, fsm.VMStop, 4, "boots"}},
		// running
		{"running at rest", vmIn(events.VMRunning), want{vmIdle, "", 0, ""}},
		{"running stops when stop is wanted", vmIn(events.VMRunning, stopped), want{vmFire, fsm.VMStop, 3, "is stopping"}},
		{"running observes a new generation", vmIn(events.VMRunning, newGen), want{vmObserve, "", 4, ""}},
		{"running applies a change that needs no restart", vmIn(events.VMRunning, kubeToggled), want{vmObserve, "", 4, ""}},
		{"running restarts for a change that needs one", vmIn(events.VMRunning, engineSwitched), want{vmFire, fsm.VMStop, 4, "apply the configuration change"}},
		{"running restarts when no restart key was recorded", vmIn(events.VMRunning, kubeToggled, noKeyRecorded), want{vmFire, fsm.VMStop, 4, "apply the configuration change"}},
		// stopping
		{"stopping runs the stop effect", vmIn(events.VMStopping, stopped), want{vmStop, "", 3, "stopped successfully"}},
		{"stopping for a restart says so", vmIn(events.VMStopping, engineSwitched), want{vmStop, "", 4, "Stopped for restart"}},
		// startFailed / stopFailed
		{"startFailed waits for its retry", vmIn(events.VMStartFailed, retryLater), want{vmIdle, "", 0, ""}},
		{"startFailed retries when due", vmIn(events.VMStartFailed, retryPast), want{vmFire, fsm.VMStart, 3, "is starting"}},
		{"startFailed retries at once for a new generation", vmIn(events.VMStartFailed, retryLater, newGen), want{vmFire, fsm.VMStart, 4, ""}},
		{"startFailed stops when stop is wanted", vmIn(events.VMStartFailed, stopped, retryLater), want{vmFire, fsm.VMStop, 3, ""}},
		{"stopFailed waits for its retry", vmIn(events.VMStopFailed, stopped, retryLater), want{vmIdle, "", 0, ""}},
		{"stopFailed stops again when due", vmIn(events.VMStopFailed, stopped, retryPast), want{vmFire, fsm.VMStop, 3, ""}},
		{"stopFailed starts when running is wanted again", vmIn(events.VMStopFailed, newGen, retryLater), want{vmFire, fsm.VMStart, 4, ""}},
		// reconciling / deleting
		{"reconciling inspects", vmIn(events.VMReconciling), want{vmReconcile, "", 3, ""}},
		{"reconciling waits after a failed inspect", vmIn(events.VMReconciling, retryLater), want{vmIdle, "", 0, ""}},
		{"deleting deletes", vmIn(events.VMDeleting), want{vmDelete, "", 0, ""}},
		{"deleting waits after a failed delete", vmIn(events.VMDeleting, retryLater), want{vmIdle, "", 0, ""}},
		// the App is deleted
		{"no App: absent rests", vmIn(events.VMAbsent, deleted), want{vmIdle, "", 0, ""}},
		{"no App: running stops first", vmIn(events.VMRunning, deleted), want{vmFire, fsm.VMStop, 3, "before the App is deleted"}},
		{"no App: starting stops first", vmIn(events.VMStarting, deleted), want{vmFire, fsm.VMStop, 3, ""}},
		{"no App: stopping stops", vmIn(events.VMStopping, deleted), want{vmStop, "", 3, ""}},
		{"no App: stopped deletes", vmIn(events.VMStopped, deleted), want{vmFire, fsm.VMDelete, 3, ""}},
		{"no App: createFailed deletes", vmIn(events.VMCreateFailed, deleted), want{vmFire, fsm.VMDelete, 3, ""}},
		{"no App: startFailed deletes", vmIn(events.VMStartFailed, deleted), want{vmFire, fsm.VMDelete, 3, ""}},
		{"no App: stopFailed deletes when due", vmIn(events.VMStopFailed, deleted, retryPast), want{vmFire, fsm.VMDelete, 3, ""}},
		{"no App: creating reconciles", vmIn(events.VMCreating, deleted), want{vmFire, fsm.VMReconcile, 3, ""}},
		{"no App: reconciling inspects", vmIn(events.VMReconciling, deleted), want{vmReconcile, "", 3, ""}},
		{"no App: deleting deletes", vmIn(events.VMDeleting, deleted), want{vmDelete, "", 0, ""}},
		{"no App: a failed delete waits for its retry", vmIn(events.VMDeleting, deleted, retryLater), want{vmIdle, "", 0, ""}},
	}
	covered := map[events.VMState]bool{}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := decideVM(tc.in)
			if got.op != tc.want.op || got.event != tc.want.event {
				t.Fatalf("decideVM = %s %q, want %s %q", got.op, got.event, tc.want.op, tc.want.event)
			}
			if got.op != vmIdle && got.op != vmDelete && got.change.Generation != tc.want.gen {
				t.Errorf("generation %d, want %d", got.change.Generation, tc.want.gen)
			}
			if !strings.Contains(got.change.Message, tc.want.msg) {
				t.Errorf("message %q does not contain %q", got.change.Message, tc.want.msg)
			}
			if got.op == vmFire && !edgeExists(events.MachineVM, tc.in.state, got.event) {
				t.Errorf("%s is not an edge from %s", got.event, tc.in.state)
			}
		})
		covered[tc.in.state] = true
	}
	for _, s := range fsm.NewVM(nil).States() {
		if !covered[events.VMState(s)] {
			t.Errorf("no case covers state %s", s)
		}
	}
}

// edgeExists reports whether ev leaves state on machine m's table.
func edgeExists[S ~string](m events.Machine, state S, ev fsm.Event) bool {
	var mach *fsm.Machine
	switch m {
	case events.MachineVM:
		mach = fsm.NewVM(nil)
	case events.MachineEngine:
		mach = fsm.NewEngine(nil)
	case events.MachineK3s:
		mach = fsm.NewK3s(nil)
	}
	if err := mach.Restore(string(state)); err != nil {
		return false
	}
	return mach.Can(ev)
}

// A change that needs no restart records the new template hash only; a
// start records the whole configuration, so the next decision can tell.
func TestDecideVMRecordsWhatIsApplied(t *testing.T) {
	a := decideVM(vmIn(events.VMRunning, kubeToggled))
	if a.change.Facts.TemplateHash == nil || *a.change.Facts.TemplateHash != "h2" || a.change.Facts.PID != nil || a.change.Facts.RestartCount != nil {
		t.Errorf("applying without restart patches %+v, want only the template hash", a.change.Facts)
	}
	a = decideVM(vmIn(events.VMStopped, engineSwitched))
	if a.change.Facts.RestartKey == nil || *a.change.Facts.RestartKey != "k2" {
		t.Errorf("start records restart key %v, want k2", a.change.Facts.RestartKey)
	}
}

func TestDecideCrash(t *testing.T) {
	cases := []struct {
		up, prev, want time.Duration
	}{
		{up: time.Minute, prev: 8 * time.Second, want: 0},
		{up: time.Second, prev: 0, want: crashDelayMin},
		{up: time.Second, prev: crashDelayMin, want: 2 * crashDelayMin},
		{up: time.Second, prev: 20 * time.Second, want: retryMax},
		{up: time.Second, prev: retryMax, want: retryMax},
	}
	for _, tc := range cases {
		msg, got := decideCrash(7, tc.up, tc.prev)
		if got != tc.want {
			t.Errorf("decideCrash(up %s, prev %s) delay %s, want %s", tc.up, tc.prev, got, tc.want)
		}
		if !strings.Contains(msg, "pid 7") || (got > 0 && !strings.Contains(msg, "again in "+got.String())) {
			t.Errorf("message %q does not name the pid and the delay", msg)
		}
	}
}

func TestDecideRecovery(t *testing.T) {
	cases := []struct {
		believed events.VMState
		found    vm.Phase
		event    fsm.Event
		adopt    bool
	}{
		{events.VMAbsent, vm.PhaseRunning, "", false},
		{events.VMRunning, vm.PhaseRunning, "", true},
		{events.VMRunning, vm.PhaseStopped, fsm.VMCrashed, false},
		{events.VMRunning, vm.PhaseBroken, fsm.VMCrashed, false},
		{events.VMStopped, vm.PhaseStopped, "", false},
		{events.VMStopped, vm.PhaseRunning, fsm.VMReconcile, false},
		{events.VMStartFailed, vm.PhaseRunning, "", false},
		{events.VMStarting, vm.PhaseBroken, fsm.VMReconcile, false},
		{events.VMStarting, vm.PhaseRunning, fsm.VMReconcile, false},
		{events.VMCreating, vm.PhaseAbsent, fsm.VMReconcile, false},
		{events.VMStopping, vm.PhaseRunning, fsm.VMReconcile, false},
		{events.VMDeleting, vm.PhaseStopped, fsm.VMReconcile, false},
		{events.VMReconciling, vm.PhaseStopped, "", false},
	}
	for _, tc := range cases {
		r := decideRecovery(tc.believed, tc.found, 10, 11)
		if r.event != tc.event || r.adopt != tc.adopt {
			t.Errorf("believed %s, found %s: event %q adopt %v, want %q %v", tc.believed, tc.found, r.event, r.adopt, tc.event, tc.adopt)
		}
		if r.event != "" && !edgeExists(events.MachineVM, tc.believed, r.event) {
			t.Errorf("believed %s: %s is not an edge", tc.believed, r.event)
		}
	}
}
