package daemon

import (
	"context"

	"go.uber.org/zap"

	"github.com/rdd-project/rdd/internal/events"
	"github.com/rdd-project/rdd/internal/fsm"
)

// kubeController owns the k3s and kubeconfig machines. This version drives
// their disabled and not-running paths; probing a running k3s and merging the
// kubeconfig arrive with the Kubernetes issue.
type kubeController struct {
	k3s *fsm.Machine
	// k3sConfig is D/k3s.yaml, where the cluster's kubeconfig appears.
	k3sConfig string
	kcfg      *fsm.Machine
	w         *writer
	logger    *zap.Logger
	kick      <-chan struct{}
}

func newKubeController(w *writer, k3sConfig string, logger *zap.Logger) *kubeController {
	return &kubeController{
		k3sConfig: k3sConfig,
		k3s:       fsm.NewK3s(w.appendOne), kcfg: fsm.NewKubeconfig(w.appendOne),
		w: w, logger: logger.With(zap.String("machine", "k3s")), kick: w.kick(),
	}
}

func (c *kubeController) recover(ctx context.Context, snap events.Snapshot) error {
	if err := c.k3s.Restore(snap.Machine(events.MachineK3s).State); err != nil {
		return err
	}
	return c.kcfg.Restore(snap.Machine(events.MachineKubeconfig).State)
}

func (c *kubeController) run(ctx context.Context) {
	for {
		for i := 0; i < 8; i++ {
			moved, err := c.step(ctx)
			if err != nil {
				if ctx.Err() == nil {
					c.logger.Error("kubernetes step", zap.Error(err))
				}
				break
			}
			if !moved {
				break
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-c.kick:
		}
	}
}

func (c *kubeController) step(ctx context.Context) (bool, error) {
	snap := c.w.Snapshot()
	if !snap.Exists || snap.Spec == nil {
		return false, nil
	}
	// Like the engine, Kubernetes does not claim a generation the VM has
	// not evaluated yet (F10).
	gen := stampGen(snap)
	k := snap.Machine(events.MachineK3s)
	kc := snap.Machine(events.MachineKubeconfig)
	vmRunning := snap.Machine(events.MachineVM).State == string(events.VMRunning)

	switch {
	case !snap.Spec.Kubernetes.Enabled:
		if c.k3s.Can(fsm.K3sDisable) {
			return true, c.k3s.Fire(ctx, fsm.K3sDisable, fsm.Change{Generation: gen, Facts: events.ReplaceFacts(events.Facts{})})
		}
	case !vmRunning:
		if c.k3s.Can(fsm.K3sVMDown) {
			return true, c.k3s.Fire(ctx, fsm.K3sVMDown, fsm.Change{Generation: gen, Facts: events.ReplaceFacts(events.Facts{})})
		}
	default:
		if c.k3s.Can(fsm.K3sProbe) {
			// Say what is awaited: until probing is wired in, nothing will
			// come, and a user waiting on `rdd set` deserves to know why.
			msg := "Waiting for k3s API server (waiting for its kubeconfig at " + c.k3sConfig + "; this rdd does not start k3s yet)"
			return true, c.k3s.Fire(ctx, fsm.K3sProbe, fsm.Change{Generation: gen, Message: msg, Facts: events.ReplaceFacts(events.Facts{})})
		}
	}
	// The kubeconfig has nothing published on these paths; it only confirms
	// it has seen the generation, which KubernetesReady's staleness gate reads.
	if c.kcfg.Current() == string(events.KubeconfigAbsent) && kc.ObservedGeneration < gen {
		return true, c.kcfg.Observe(ctx, gen, events.FactsPatch{})
	}
	if k.ObservedGeneration < gen {
		return true, c.k3s.Observe(ctx, gen, events.FactsPatch{})
	}
	return false, nil
}
