package daemon

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rdd-project/rdd/internal/events"
	"github.com/rdd-project/rdd/internal/fsm"
	"github.com/rdd-project/rdd/internal/kube"
)

func TestDecideKube(t *testing.T) {
	// base: enabled on a running host machine, k3s running and probing,
	// a port chosen, everything observed.
	base := kubeInput{
		exists: true, enabled: true, vmRunning: true,
		k3s: events.K3sProbing, kubeconfig: events.KubeconfigAbsent,
		gen: 2, k3sObserved: 2, kcfgObserved: 2, facts: events.Facts{Port: 7443},
		runsK3s: true, procRunning: true, binaryReady: true,
		now: t0, checkAt: t0.Add(time.Second),
	}
	with := func(fs ...func(*kubeInput)) kubeInput {
		in := base
		for _, f := range fs {
			f(&in)
		}
		return in
	}
	state := func(s events.K3sState) func(*kubeInput) { return func(in *kubeInput) { in.k3s = s } }
	kcfg := func(s events.KubeconfigState) func(*kubeInput) { return func(in *kubeInput) { in.kubeconfig = s } }
	disabled := func(in *kubeInput) { in.enabled = false }
	vmDown := func(in *kubeInput) { in.vmRunning = false }
	noApp := func(in *kubeInput) { in.exists, in.enabled = false, false }
	noProcess := func(in *kubeInput) { in.procRunning = false }
	inVM := func(in *kubeInput) { in.runsK3s, in.procRunning = false, false }
	probeDue := func(in *kubeInput) { in.checkAt = t0 }
	noPort := func(in *kubeInput) { in.facts.Port = 0 }
	noBinary := func(in *kubeInput) { in.binaryReady = false }
	installing := func(in *kubeInput) { in.binaryReady, in.installing = false, true }
	retryLater := func(in *kubeInput) { in.retryAt = t0.Add(time.Second) }
	stale := func(in *kubeInput) { in.procStale = true }
	newGen := func(in *kubeInput) { in.gen = 3 }

	cases := []struct {
		name  string
		in    kubeInput
		op    kubeOp
		event fsm.Event
	}{
		{"probing, probe not due: rest", base, kubeIdle, ""},
		{"probing, probe due: check", with(probeDue), kubeCheck, ""},
		{"ready, probe due: check", with(state(events.K3sReady), kcfg(events.KubeconfigMerged), probeDue), kubeCheck, ""},
		{"waiting for node, probe due: check", with(state(events.K3sWaitingForNode), probeDue), kubeCheck, ""},
		{"new generation: kubeconfig observes", with(newGen), kubeObserveKubeconfig, ""},
		{"new generation, kubeconfig done: k3s observes", with(newGen, func(in *kubeInput) { in.kcfgObserved = 3 }), kubeObserveK3s, ""},
		{"ready and published, new generation: kubeconfig observes too", with(state(events.K3sReady), kcfg(events.KubeconfigMerged), newGen), kubeObserveKubeconfig, ""},
		// getting k3s running (host)
		{"enabled, no port yet: allocate one first", with(state(events.K3sNotApplicable), noPort, noProcess), kubeAllocatePort, ""},
		{"enabled, not running: start", with(state(events.K3sNotApplicable), noProcess), kubeFireK3s, fsm.K3sStart},
		{"vm came back: start", with(state(events.K3sNotRunning), noProcess), kubeFireK3s, fsm.K3sStart},
		{"starting, no binary: install", with(state(events.K3sStarting), noProcess, noBinary), kubeInstall, ""},
		{"starting, installing: wait", with(state(events.K3sStarting), noProcess, installing), kubeIdle, ""},
		{"starting, binary ready: start the process", with(state(events.K3sStarting), noProcess), kubeStartProcess, ""},
		{"starting after a failed start: wait for the retry", with(state(events.K3sStarting), noProcess, retryLater), kubeIdle, ""},
		{"install failed: wait for the retry", with(state(events.K3sInstallFailed), noProcess, noBinary, retryLater), kubeIdle, ""},
		{"install failed, retry due: start again", with(state(events.K3sInstallFailed), noProcess, noBinary), kubeFireK3s, fsm.K3sStart},
		{"process started: probe", with(state(events.K3sStarting)), kubeFireK3s, fsm.K3sProbe},
		{"ready, process died: start again", with(state(events.K3sReady), kcfg(events.KubeconfigMerged), noProcess), kubeFireK3s, fsm.K3sStart},
		{"new version while running: stop the process", with(state(events.K3sReady), stale), kubeStopProcess, ""},
		// in a VM the template runs k3s: probe only
		{"VM: enabled and running: probe", with(state(events.K3sNotApplicable), inVM), kubeFireK3s, fsm.K3sProbe},
		{"VM: probe due: check", with(inVM, probeDue), kubeCheck, ""},
		// winding down
		{"disabled: stop k3s first", with(disabled, state(events.K3sReady), kcfg(events.KubeconfigMerged)), kubeStopProcess, ""},
		{"disabled, stopped: remove the context", with(disabled, noProcess, state(events.K3sReady), kcfg(events.KubeconfigMerged)), kubeFireKubeconfig, fsm.KubeconfigRemove},
		{"disabled, merge failed: remove the context", with(disabled, noProcess, kcfg(events.KubeconfigMergeFailed)), kubeFireKubeconfig, fsm.KubeconfigRemove},
		{"removing: remove", with(disabled, noProcess, kcfg(events.KubeconfigRemoving)), kubeRemove, ""},
		{"disabled, removed: clear the port", with(disabled, noProcess), kubeObserveK3s, ""},
		{"disabled, port cleared: not applicable", with(disabled, noProcess, noPort), kubeFireK3s, fsm.K3sDisable},
		{"disabled at rest", with(disabled, noProcess, noPort, state(events.K3sNotApplicable)), kubeIdle, ""},
		{"disabled at rest, new generation: observe", with(disabled, noProcess, noPort, state(events.K3sNotApplicable), newGen), kubeObserveKubeconfig, ""},
		{"vm down: stop k3s", with(vmDown, state(events.K3sReady)), kubeStopProcess, ""},
		{"vm down, stopped: not running (port kept)", with(vmDown, noProcess), kubeFireK3s, fsm.K3sVMDown},
		{"vm down at rest", with(vmDown, noProcess, state(events.K3sNotRunning)), kubeIdle, ""},
		{"no App: stop k3s", with(noApp), kubeStopProcess, ""},
		{"no App: remove the context", with(noApp, noProcess, kcfg(events.KubeconfigMerged)), kubeFireKubeconfig, fsm.KubeconfigRemove},
		{"no App at rest", with(noApp, noProcess), kubeIdle, ""},
	}
	covered := map[events.K3sState]bool{}
	for _, tc := range cases {
		got := decideKube(tc.in)
		if got.op != tc.op || got.event != tc.event {
			t.Errorf("%s: decideKube = %s %q, want %s %q", tc.name, got.op, got.event, tc.op, tc.event)
			continue
		}
		if got.op == kubeFireK3s && !edgeExists(events.MachineK3s, tc.in.k3s, got.event) {
			t.Errorf("%s: %s is not an edge from %s", tc.name, got.event, tc.in.k3s)
		}
		covered[tc.in.k3s] = true
	}
	for _, s := range fsm.NewK3s(nil).States() {
		if !covered[events.K3sState(s)] {
			t.Errorf("no case covers k3s state %s", s)
		}
	}
	// Clearing the port on disable clears exactly the port and the streak.
	a := decideKube(with(disabled, noProcess))
	if a.change.Facts.Port == nil || *a.change.Facts.Port != 0 || a.change.Facts.PID != nil {
		t.Errorf("disable clears %+v, want the port only", a.change.Facts)
	}
}

func TestDecideProbe(t *testing.T) {
	healthy := kube.ProbeResult{Class: kube.ProbeHealthy}
	refused := kube.ProbeResult{Class: kube.ProbeUnreachable, Err: errors.New("dial tcp 127.0.0.1:7443: connect: connection refused")}
	http500 := kube.ProbeResult{Class: kube.ProbeUnhealthy, Err: errors.New("GET /healthz: HTTP 500")}
	timeout := kube.ProbeResult{Class: kube.ProbeAmbiguous, Err: errors.New("context deadline exceeded")}
	missing := errors.New("open /d/k3s.yaml: no such file or directory")
	cases := []struct {
		name        string
		state       events.K3sState
		streak      int
		message     string
		res         kube.ProbeResult
		err         error
		op          kubeOp
		event       fsm.Event
		healthy     bool
		streakAfter int
	}{
		{"healthy while probing: go on", events.K3sProbing, 0, "", healthy, nil, kubeIdle, "", true, 0},
		{"healthy after a tolerated timeout: reset the streak", events.K3sReady, 2, "", healthy, nil, kubeObserveK3s, "", true, 0},
		{"kubeconfig missing while probing: say so", events.K3sProbing, 0, "", kube.ProbeResult{}, missing, kubeFireK3s, fsm.K3sUnhealthy, false, 0},
		{"refused while ready: unhealthy at once", events.K3sReady, 0, "", refused, nil, kubeFireK3s, fsm.K3sUnhealthy, false, 0},
		{"HTTP 500 while waiting for a node: unhealthy", events.K3sWaitingForNode, 0, "", http500, nil, kubeFireK3s, fsm.K3sUnhealthy, false, 0},
		{"first timeout while ready: tolerated", events.K3sReady, 0, "", timeout, nil, kubeObserveK3s, "", false, 1},
		{"second timeout while ready: tolerated", events.K3sReady, 1, "", timeout, nil, kubeObserveK3s, "", false, 2},
		{"third timeout while ready: unhealthy", events.K3sReady, 2, "", timeout, nil, kubeFireK3s, fsm.K3sUnhealthy, false, 0},
		{"first timeout while starting up: flips at once", events.K3sWaitingForNode, 0, "", timeout, nil, kubeFireK3s, fsm.K3sUnhealthy, false, 0},
		{"the same refusal again while probing: nothing new to record", events.K3sProbing, 0,
			"Waiting for k3s API server (Unreachable: dial tcp 127.0.0.1:7443: connect: connection refused)", refused, nil, kubeIdle, "", false, 0},
	}
	for _, tc := range cases {
		out := decideProbe(tc.state, tc.streak, tc.message, 4, tc.res, tc.err)
		if out.action.op != tc.op || out.action.event != tc.event || out.healthy != tc.healthy || out.streak != tc.streakAfter {
			t.Errorf("%s: %s %q healthy=%v streak=%d, want %s %q %v %d", tc.name, out.action.op, out.action.event, out.healthy, out.streak, tc.op, tc.event, tc.healthy, tc.streakAfter)
			continue
		}
		if out.action.op == kubeFireK3s {
			if !edgeExists(events.MachineK3s, tc.state, out.action.event) {
				t.Errorf("%s: %s is not an edge from %s", tc.name, out.action.event, tc.state)
			}
			msg := out.action.change.Message
			if want := string(tc.res.Class); tc.err == nil && !strings.Contains(msg, want) {
				t.Errorf("%s: message %q does not carry the probe class %s", tc.name, msg, want)
			}
		}
	}
}

func TestNextCheck(t *testing.T) {
	if got := nextCheck(events.K3sReady, t0); got != t0.Add(probeEveryReady) {
		t.Errorf("ready: next probe at %s", got)
	}
	if got := nextCheck(events.K3sProbing, t0); got != t0.Add(probeEvery) {
		t.Errorf("probing: next probe at %s", got)
	}
}
