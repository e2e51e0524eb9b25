package e2e

import (
	"testing"
	"time"

	"github.com/rdd-project/rdd/internal/events"
)

// On the host driver, Kubernetes runs beside the engine: toggling it must
// not restart dockerd, or every container the user runs would die for a
// change that does not concern them.
func TestKubernetesToggleKeepsTheEngine(t *testing.T) {
	in := newInstance(t)
	in.must("start", "--timeout=3m")
	before := in.status()
	pid := before.Machine(events.MachineVM).Facts.PID
	if pid == 0 {
		t.Fatal("no engine pid recorded after start")
	}

	// k3s itself arrives with the Kubernetes issue; what matters here is that
	// the vm machine takes the new generation without a restart.
	in.must("set", "--wait=false", "kubernetes.enabled=true")
	applied := in.waitStatus(time.Minute, "the vm machine applies kubernetes.enabled=true", func(s events.Snapshot) bool {
		vm := s.Machine(events.MachineVM)
		return s.Generation > before.Generation && vm.ObservedGeneration == s.Generation && vm.State == string(events.VMRunning)
	})
	in.must("set", "--timeout=2m", "kubernetes.enabled=false")
	after := in.status()
	if !condIs(after, events.CondSettled, events.StatusTrue, "Settled") {
		t.Fatalf("Settled = %+v after disabling Kubernetes again", cond(after, events.CondSettled))
	}

	for _, s := range []events.Snapshot{applied, after} {
		vm := s.Machine(events.MachineVM)
		if vm.Facts.PID != pid || vm.Facts.RestartCount != before.Machine(events.MachineVM).Facts.RestartCount {
			t.Fatalf("engine pid %d → %d, restart count %d → %d: toggling Kubernetes restarted dockerd",
				pid, vm.Facts.PID, before.Machine(events.MachineVM).Facts.RestartCount, vm.Facts.RestartCount)
		}
	}
	for _, tr := range transitions(in.eventsJSON(), events.MachineVM) {
		if tr.Event == "stop" || tr.Event == "crashed" {
			t.Fatalf("vm transition %s→%s (%s) after a Kubernetes toggle: %s", tr.From, tr.To, tr.Event, tr.Message)
		}
	}
	if out, err := in.docker("--context", contextName, "info", "--format", "{{.ID}}"); err != nil {
		t.Fatalf("dockerd does not answer after the toggles: %v\n%s", err, out)
	}
	in.must("stop", "--timeout=2m")
}
