package daemon

import (
	"fmt"
	"time"

	"github.com/rdd-project/rdd/internal/events"
	"github.com/rdd-project/rdd/internal/fsm"
	"github.com/rdd-project/rdd/internal/kube"
)

// Probe policy (behavior.md §8.1): a probe every 5 s until ready, every 15 s
// while ready; three ambiguous probes in a row are tolerated only while ready.
const (
	probeEvery       = 5 * time.Second
	probeEveryReady  = 15 * time.Second
	ambiguousAllowed = 3
	// mergeFileCheck is how often a failed merge looks at the kubeconfig
	// files, so that fixing them recovers without waiting for a probe.
	mergeFileCheck = time.Second
)

// kubeOp is the kind of a Kubernetes decision.
type kubeOp int

const (
	kubeIdle kubeOp = iota
	kubeFireK3s
	kubeObserveK3s
	kubeFireKubeconfig
	kubeObserveKubeconfig
	// kubeAllocatePort picks status.kubernetesPort (§3.4, its own pass).
	kubeAllocatePort
	// kubeInstall gets the k3s binary, in the background.
	kubeInstall
	// kubeStartProcess starts k3s through the driver.
	kubeStartProcess
	// kubeStopProcess stops the k3s process rdd runs.
	kubeStopProcess
	// kubeCheck probes the API server, publishes the context and checks
	// the node gate: one pass of §8.1 steps 3–6.
	kubeCheck
	// kubeRemove removes the published context (§8.4).
	kubeRemove
)

var kubeOpNames = [...]string{"idle", "fireK3s", "observeK3s", "fireKubeconfig", "observeKubeconfig", "allocatePort", "install", "startProcess", "stopProcess", "check", "remove"}

func (o kubeOp) String() string { return kubeOpNames[o] }

type kubeAction struct {
	op     kubeOp
	event  fsm.Event
	change fsm.Change
}

// kubeInput is everything a Kubernetes decision depends on.
type kubeInput struct {
	exists, enabled, vmRunning bool
	k3s                        events.K3sState
	kubeconfig                 events.KubeconfigState
	gen                        int64
	k3sObserved, kcfgObserved  int64
	facts                      events.Facts // the k3s machine's

	// runsK3s: rdd itself runs k3s on this driver (host); in a VM the
	// template starts it and rdd only probes.
	runsK3s bool
	// procRunning: the k3s process rdd runs is alive with the wanted config.
	procRunning, procStale bool
	// binaryReady: the k3s binary for the spec's version is resolved;
	// installing: a resolve runs in the background.
	binaryReady, installing bool

	now time.Time
	// retryAt delays the next start after a failed install or start.
	retryAt time.Time
	// checkAt is when the next probe is due (zero: now).
	checkAt time.Time
}

func (in kubeInput) due(at time.Time) bool { return at.IsZero() || !in.now.Before(at) }

func (in kubeInput) k3sFire(ev fsm.Event, msg string) kubeAction {
	return kubeAction{op: kubeFireK3s, event: ev, change: fsm.Change{Generation: in.gen, Message: msg}}
}

// decideKube is the Kubernetes decision (behavior.md §8.1, §8.4, §3.4).
func decideKube(in kubeInput) kubeAction {
	if !in.exists || !in.enabled || !in.vmRunning {
		return decideKubeDown(in)
	}
	if in.facts.Port == 0 {
		return kubeAction{op: kubeAllocatePort, change: fsm.Change{Generation: in.gen}}
	}
	if in.runsK3s && (!in.procRunning || in.procStale) {
		if a, ok := decideK3sProcess(in); ok {
			return a
		}
		return kubeAction{}
	}
	switch in.k3s {
	case events.K3sNotApplicable, events.K3sNotRunning, events.K3sStarting, events.K3sInstallFailed:
		return in.k3sFire(fsm.K3sProbe, "")
	}
	if in.due(in.checkAt) {
		return kubeAction{op: kubeCheck, change: fsm.Change{Generation: in.gen}}
	}
	// Every machine confirms each generation, or Settled stays stale; the
	// kubeconfig machine confirms it whatever it holds, since the merge
	// (or its failure) is redone on every check.
	if in.kubeconfig != events.KubeconfigRemoving && in.kcfgObserved < in.gen {
		return kubeAction{op: kubeObserveKubeconfig, change: fsm.Change{Generation: in.gen}}
	}
	if in.k3sObserved < in.gen {
		return kubeAction{op: kubeObserveK3s, change: fsm.Change{Generation: in.gen}}
	}
	return kubeAction{}
}

// decideK3sProcess gets k3s running on a driver where rdd runs it.
func decideK3sProcess(in kubeInput) (kubeAction, bool) {
	if in.procRunning && in.procStale {
		// A new version: the running k3s stops, then starts again.
		return kubeAction{op: kubeStopProcess, change: fsm.Change{Generation: in.gen}}, true
	}
	switch in.k3s {
	case events.K3sStarting:
		switch {
		case in.installing:
			return kubeAction{}, true
		case !in.binaryReady:
			return kubeAction{op: kubeInstall, change: fsm.Change{Generation: in.gen}}, true
		case in.due(in.retryAt):
			return kubeAction{op: kubeStartProcess, change: fsm.Change{Generation: in.gen}}, true
		}
		return kubeAction{}, true
	case events.K3sInstallFailed:
		if !in.due(in.retryAt) {
			return kubeAction{}, true
		}
	}
	return in.k3sFire(fsm.K3sStart, ""), true
}

// decideKubeDown winds Kubernetes down when it is disabled, the VM is not
// running or the App is gone: stop k3s, remove the context (§8.4), clear
// the port when disabled (§3.4), record the state.
func decideKubeDown(in kubeInput) kubeAction {
	g := fsm.Change{Generation: in.gen}
	switch {
	case in.runsK3s && in.procRunning:
		return kubeAction{op: kubeStopProcess, change: g}
	case in.kubeconfig == events.KubeconfigMerged || in.kubeconfig == events.KubeconfigMergeFailed:
		return kubeAction{op: kubeFireKubeconfig, event: fsm.KubeconfigRemove, change: g}
	case in.kubeconfig == events.KubeconfigRemoving:
		return kubeAction{op: kubeRemove, change: g}
	case !in.exists:
		return kubeAction{}
	case !in.enabled && in.facts.Port != 0:
		return kubeAction{op: kubeObserveK3s, change: fsm.Change{Generation: in.gen, Facts: events.FactsPatch{Port: events.Int(0), AmbiguousStreak: events.Int(0)}}}
	case !in.enabled && in.k3s != events.K3sNotApplicable:
		return in.k3sFire(fsm.K3sDisable, "")
	case in.enabled && in.k3s != events.K3sNotRunning:
		return in.k3sFire(fsm.K3sVMDown, "")
	case in.kubeconfig == events.KubeconfigAbsent && in.kcfgObserved < in.gen:
		return kubeAction{op: kubeObserveKubeconfig, change: g}
	case in.k3sObserved < in.gen:
		return kubeAction{op: kubeObserveK3s, change: g}
	}
	return kubeAction{}
}

// probeOutcome is what a kubeCheck records after its probe.
type probeOutcome struct {
	// action is the transition or observation to record (kubeIdle: none).
	action kubeAction
	// healthy: go on to publish the context and check the node gate.
	healthy bool
	// streak is the ambiguous streak after this probe.
	streak int
}

// decideProbe applies §8.1 step 3 to one probe. err is a kubeconfig that is
// missing or unparsable; res the probe otherwise. message is the k3s
// machine's current message, so an unchanged cause is not recorded again.
func decideProbe(state events.K3sState, streak int, message string, gen int64, res kube.ProbeResult, err error) probeOutcome {
	unhealthy := func(msg string) probeOutcome {
		out := probeOutcome{}
		if state != events.K3sProbing || msg != message {
			out.action = kubeAction{op: kubeFireK3s, event: fsm.K3sUnhealthy, change: fsm.Change{Generation: gen, Message: msg, Facts: events.FactsPatch{AmbiguousStreak: events.Int(0)}}}
		}
		return out
	}
	switch {
	case err != nil:
		return unhealthy(fmt.Sprintf("Waiting for k3s API server (its kubeconfig is not usable yet: %v)", err))
	case res.Class == kube.ProbeHealthy:
		out := probeOutcome{healthy: true}
		if streak != 0 {
			out.action = kubeAction{op: kubeObserveK3s, change: fsm.Change{Generation: gen, Facts: events.FactsPatch{AmbiguousStreak: events.Int(0)}}}
		}
		return out
	case res.Class == kube.ProbeAmbiguous && state == events.K3sReady && streak+1 < ambiguousAllowed:
		// Tolerated: a busy server looks like this (the 3rd flips it).
		return probeOutcome{streak: streak + 1, action: kubeAction{op: kubeObserveK3s, change: fsm.Change{Generation: gen, Facts: events.FactsPatch{AmbiguousStreak: events.Int(streak + 1)}}}}
	}
	return unhealthy(fmt.Sprintf("Waiting for k3s API server (%s: %v)", res.Class, res.Err))
}

// nextCheck is when the next probe is due after one at now.
func nextCheck(state events.K3sState, now time.Time) time.Time {
	if state == events.K3sReady {
		return now.Add(probeEveryReady)
	}
	return now.Add(probeEvery)
}
