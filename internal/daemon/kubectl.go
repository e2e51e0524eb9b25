package daemon

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/rdd-project/rdd/internal/events"
	"github.com/rdd-project/rdd/internal/fsm"
)

// kubeController executes the k3s and kubeconfig decisions (decideKube).
// This version drives their disabled and not-running paths; probing a
// running k3s and merging the kubeconfig arrive with the Kubernetes issue.
type kubeController struct {
	k3s *fsm.Machine
	// k3sConfig is D/k3s.yaml, where the cluster's kubeconfig appears.
	k3sConfig string
	kcfg      *fsm.Machine
	w         *writer
	logger    *zap.Logger
	loop      *loop
}

func newKubeController(w *writer, k3sConfig string, logger *zap.Logger) *kubeController {
	c := &kubeController{
		k3sConfig: k3sConfig,
		k3s:       fsm.NewK3s(w.appendOne), kcfg: fsm.NewKubeconfig(w.appendOne),
		w: w, logger: logger.With(zap.String("machine", "k3s")),
	}
	c.loop = newLoop("kubernetes", c, w.kick(), c.logger)
	return c
}

func (c *kubeController) recover(ctx context.Context, snap events.Snapshot) error {
	if err := c.k3s.Restore(snap.Machine(events.MachineK3s).State); err != nil {
		return err
	}
	return c.kcfg.Restore(snap.Machine(events.MachineKubeconfig).State)
}

func (c *kubeController) run(ctx context.Context) { c.loop.run(ctx) }

func (c *kubeController) wakeAt() time.Time { return time.Time{} }

// kubeOp is the kind of a Kubernetes decision.
type kubeOp int

const (
	kubeIdle kubeOp = iota
	kubeFireK3s
	kubeObserveK3s
	kubeObserveKubeconfig
)

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
	k3sConfig                  string
}

func (c *kubeController) input(snap events.Snapshot) kubeInput {
	in := kubeInput{
		exists:     snap.Exists && snap.Spec != nil,
		vmRunning:  snap.Machine(events.MachineVM).State == string(events.VMRunning),
		k3s:        events.K3sState(c.k3s.Current()),
		kubeconfig: events.KubeconfigState(c.kcfg.Current()),
		// Like the engine, Kubernetes does not claim a generation the VM
		// has not evaluated yet (F10).
		gen:          stampGen(snap),
		k3sObserved:  snap.Machine(events.MachineK3s).ObservedGeneration,
		kcfgObserved: snap.Machine(events.MachineKubeconfig).ObservedGeneration,
		k3sConfig:    c.k3sConfig,
	}
	in.enabled = in.exists && snap.Spec.Kubernetes.Enabled
	return in
}

// decideKube is the Kubernetes decision (behavior.md §8.1).
func decideKube(in kubeInput) kubeAction {
	if !in.exists {
		return kubeAction{}
	}
	g := fsm.Change{Generation: in.gen}
	switch {
	case !in.enabled:
		if in.k3s != events.K3sNotApplicable {
			return kubeAction{op: kubeFireK3s, event: fsm.K3sDisable, change: g}
		}
	case !in.vmRunning:
		if in.k3s != events.K3sNotRunning {
			return kubeAction{op: kubeFireK3s, event: fsm.K3sVMDown, change: g}
		}
	case in.k3s == events.K3sNotApplicable || in.k3s == events.K3sNotRunning:
		// Say what is awaited: until k3s is started by rdd nothing will
		// come, and a user waiting on `rdd set` deserves to know why.
		g.Message = fmt.Sprintf("Waiting for k3s API server (waiting for its kubeconfig at %s; this rdd does not start k3s yet)", in.k3sConfig)
		return kubeAction{op: kubeFireK3s, event: fsm.K3sProbe, change: g}
	}
	// The kubeconfig has nothing published on these paths; it only confirms
	// it has seen the generation, which KubernetesReady's staleness gate reads.
	if in.kubeconfig == events.KubeconfigAbsent && in.kcfgObserved < in.gen {
		return kubeAction{op: kubeObserveKubeconfig, change: fsm.Change{Generation: in.gen}}
	}
	if in.k3sObserved < in.gen {
		return kubeAction{op: kubeObserveK3s, change: fsm.Change{Generation: in.gen}}
	}
	return kubeAction{}
}

func (c *kubeController) step(ctx context.Context) (bool, error) {
	a := decideKube(c.input(c.w.Snapshot()))
	switch a.op {
	case kubeFireK3s:
		if !c.k3s.Can(a.event) {
			return false, fmt.Errorf("k3s machine cannot %s from %s", a.event, c.k3s.Current())
		}
		return true, c.k3s.Fire(ctx, a.event, a.change)
	case kubeObserveK3s:
		return true, c.k3s.Observe(ctx, a.change.Generation, a.change.Facts)
	case kubeObserveKubeconfig:
		return true, c.kcfg.Observe(ctx, a.change.Generation, a.change.Facts)
	}
	return false, nil
}
