package daemon

import (
	"context"
	"errors"
	"strings"
	"testing"

	"go.uber.org/zap/zaptest"

	"github.com/rdd-project/rdd/internal/api"
	"github.com/rdd-project/rdd/internal/engine"
	"github.com/rdd-project/rdd/internal/events"
	"github.com/rdd-project/rdd/internal/fsm"
	"github.com/rdd-project/rdd/internal/store"
)

func TestDecideEngine(t *testing.T) {
	running := func(s events.EngineState) engineInput {
		return engineInput{state: s, exists: true, vmRunning: true, moby: true, gen: 2, observed: 2}
	}
	with := func(in engineInput, f func(*engineInput)) engineInput { f(&in); return in }
	watching := func(in *engineInput) { in.watching = true }
	containerd := func(in *engineInput) { in.moby = false }
	vmDown := func(in *engineInput) { in.vmRunning = false }
	noApp := func(in *engineInput) { in.exists, in.moby = false, false }
	behind := func(in *engineInput) { in.gen = 3 }
	activated := func(in *engineInput) { in.activated = true }

	cases := []struct {
		name  string
		in    engineInput
		op    engineOp
		event fsm.Event
	}{
		{"moby on a running vm: watch and connect", running(events.EngineStopped), engineWatch, fsm.EngineConnect},
		{"connect failed before the daemon restarted: watch and connect", running(events.EngineConnectFailed), engineWatch, fsm.EngineConnect},
		{"connecting after a daemon restart: watch, state stays", running(events.EngineConnecting), engineWatch, ""},
		{"connected after a daemon restart: watch, state stays", running(events.EngineConnected), engineWatch, ""},
		{"not applicable, now moby: through stopped", running(events.EngineNotApplicable), engineFire, fsm.EngineStop},
		{"watching and connecting: wait for the watcher", with(running(events.EngineConnecting), watching), engineIdle, ""},
		{"connected: publish the docker context once", with(running(events.EngineConnected), watching), engineActivate, ""},
		{"connected and published: rest", with(with(running(events.EngineConnected), watching), activated), engineIdle, ""},
		{"connected, new generation: observe", with(with(with(running(events.EngineConnected), watching), activated), behind), engineObserve, ""},
		{"containerd while watching: unwatch", with(with(running(events.EngineConnected), watching), containerd), engineUnwatch, ""},
		{"containerd, connected: stop", with(running(events.EngineConnected), containerd), engineFire, fsm.EngineStop},
		{"containerd, stopped: not applicable", with(running(events.EngineStopped), containerd), engineFire, fsm.EngineNotApplicable},
		{"containerd, not applicable: rest", with(running(events.EngineNotApplicable), containerd), engineIdle, ""},
		{"containerd, new generation: observe", with(with(running(events.EngineNotApplicable), containerd), behind), engineObserve, ""},
		{"vm down while watching: unwatch and stop", with(with(running(events.EngineConnected), watching), vmDown), engineUnwatch, fsm.EngineStop},
		{"vm down, connect failed: unwatch and stop", with(running(events.EngineConnectFailed), vmDown), engineUnwatch, fsm.EngineStop},
		{"vm down, not applicable: stop", with(running(events.EngineNotApplicable), vmDown), engineUnwatch, fsm.EngineStop},
		{"vm down, stopped: rest", with(running(events.EngineStopped), vmDown), engineIdle, ""},
		{"vm down, new generation: observe", with(with(running(events.EngineStopped), vmDown), behind), engineObserve, ""},
		{"no App, stopped: rest", with(with(running(events.EngineStopped), vmDown), noApp), engineIdle, ""},
		{"no App, connected: stop", with(with(running(events.EngineConnected), watching), noApp), engineUnwatch, fsm.EngineStop},
	}
	covered := map[events.EngineState]bool{}
	for _, tc := range cases {
		got := decideEngine(tc.in)
		if got.op != tc.op || got.event != tc.event {
			t.Errorf("%s: decideEngine = %s %q, want %s %q", tc.name, got.op, got.event, tc.op, tc.event)
		}
		if got.event != "" && !edgeExists(events.MachineEngine, tc.in.state, got.event) {
			t.Errorf("%s: %s is not an edge from %s", tc.name, got.event, tc.in.state)
		}
		if got.event == fsm.EngineStop && (got.change.Facts.Containers == nil || *got.change.Facts.Containers != 0) {
			t.Errorf("%s: a stop must clear the inventory counts, patch %+v", tc.name, got.change.Facts)
		}
		covered[tc.in.state] = true
	}
	for _, s := range fsm.NewEngine(nil).States() {
		if !covered[events.EngineState(s)] {
			t.Errorf("no case covers state %s", s)
		}
	}
}

func TestDecidePhase(t *testing.T) {
	connected := engine.Phase{State: engine.PhaseConnected}
	connected.Counts.Containers = 3
	failed := engine.Phase{State: engine.PhaseConnectFailed, Err: errors.New("dial unix /x/docker.sock: connection refused")}
	lost := engine.Phase{State: engine.PhaseDisconnected, Err: errors.New("event stream ended")}
	cases := []struct {
		state events.EngineState
		ph    engine.Phase
		op    engineOp
		event fsm.Event
		msg   string
	}{
		{events.EngineConnecting, connected, engineFire, fsm.EngineConnected, "Container engine synced"},
		{events.EngineConnectFailed, connected, engineFire, fsm.EngineConnected, "Container engine synced"},
		{events.EngineConnected, connected, engineObserve, "", ""},
		{events.EngineStopped, connected, engineIdle, "", ""},
		{events.EngineConnecting, failed, engineFire, fsm.EngineConnectFailed, "connection refused"},
		{events.EngineConnected, failed, engineFire, fsm.EngineConnectFailed, "connection refused"},
		{events.EngineConnectFailed, failed, engineIdle, "", ""},
		{events.EngineConnected, lost, engineFire, fsm.EngineDisconnected, "event stream ended"},
		{events.EngineConnecting, lost, engineIdle, "", ""},
	}
	for _, tc := range cases {
		got := decidePhase(tc.state, 5, tc.ph)
		if got.op != tc.op || got.event != tc.event || got.change.Message != tc.msg && tc.op == engineFire && !strings.Contains(got.change.Message, tc.msg) {
			t.Errorf("%s on %s: %s %q %q, want %s %q %q", tc.ph.State, tc.state, got.op, got.event, got.change.Message, tc.op, tc.event, tc.msg)
		}
		if got.event != "" && !edgeExists(events.MachineEngine, tc.state, got.event) {
			t.Errorf("%s on %s: %s is not an edge", tc.ph.State, tc.state, got.event)
		}
		if tc.ph.State == engine.PhaseConnected && got.op != engineIdle && (got.change.Facts.Containers == nil || *got.change.Facts.Containers != 3) {
			t.Errorf("%s on %s: counts not recorded: %+v", tc.ph.State, tc.state, got.change.Facts)
		}
	}
}

// The inventory's refusal says why there is none and what to do, in the
// user's situation: no App, a containerd engine, a stopped App.
func TestInventoryRefusalExplains(t *testing.T) {
	w := startWriter(t, store.NewMem())
	c := newEngineController(w, testPaths(t), func(string) string { return "" }, zaptest.NewLogger(t))
	check := func(want string) {
		t.Helper()
		_, err := c.Containers(context.Background())
		var apiErr *api.Error
		if !errors.As(err, &apiErr) || apiErr.Code != api.CodeConflict || !strings.Contains(apiErr.Message, want) {
			t.Fatalf("inventory error %v, want a conflict saying %q", err, want)
		}
	}
	check("there is no App yet")
	set := func(kv ...string) {
		req := api.SetRequest{Set: map[string]string{}}
		for i := 0; i < len(kv); i += 2 {
			req.Set[kv[i]] = kv[i+1]
		}
		if _, err := w.SetSpec(context.Background(), req, api.Source{}); err != nil {
			t.Fatal(err)
		}
	}
	set("running", "false")
	check("the App is stopped")
	set("containerEngine.name", "containerd")
	check("containerd.sock")
}
