package daemon

import (
	"testing"

	"github.com/rdd-project/rdd/internal/api"
	"github.com/rdd-project/rdd/internal/events"
	"github.com/rdd-project/rdd/internal/spec"
	"github.com/rdd-project/rdd/internal/vm"
	"github.com/rdd-project/rdd/internal/vm/host"
)

func TestSetSpecSaysWhetherItRestarts(t *testing.T) {
	running := spec.Default()
	running.Running = true
	snap := func(s spec.Spec, vmState events.VMState) events.Snapshot {
		return events.Snapshot{Exists: true, Generation: 1, Spec: &s, Machines: map[events.Machine]events.MachineStatus{
			events.MachineVM:     {State: string(vmState)},
			events.MachineEngine: {Facts: events.Facts{Containers: 3}},
		}}
	}
	with := func(set map[string]string) spec.Spec {
		next, _, err := spec.Apply(&running, set)
		if err != nil {
			t.Fatal(err)
		}
		return next
	}
	stopped := running
	stopped.Running = false
	for _, tt := range []struct {
		name        string
		drv         vm.Driver
		before      events.Snapshot
		next        spec.Spec
		wantRestart bool
	}{
		{"engine switch on the host", &host.Driver{}, snap(running, events.VMRunning), with(map[string]string{"containerEngine.name": "containerd"}), true},
		{"kubernetes on the host", &host.Driver{}, snap(running, events.VMRunning), with(map[string]string{"kubernetes.enabled": "true"}), false},
		{"kubernetes in a VM", &fakeDriver{}, snap(running, events.VMRunning), with(map[string]string{"kubernetes.enabled": "true"}), true},
		{"a stop", &fakeDriver{}, snap(running, events.VMRunning), with(map[string]string{"running": "false", "containerEngine.name": "containerd"}), false},
		{"machine not running", &fakeDriver{}, snap(running, events.VMStarting), with(map[string]string{"containerEngine.name": "containerd"}), false},
		{"App stopped", &fakeDriver{}, snap(stopped, events.VMStopped), with(map[string]string{"containerEngine.name": "containerd"}), false},
	} {
		d := &daemon{vm: &vmController{drv: tt.drv}}
		restart, n := d.restarts(tt.before, api.SetResponse{Spec: tt.next})
		if restart != tt.wantRestart || (restart && n != 3) || (!restart && n != 0) {
			t.Errorf("%s: restarts = %t, %d containers; want %t", tt.name, restart, n, tt.wantRestart)
		}
	}
}

func TestPlanSpecChangeListsOldAndNewValues(t *testing.T) {
	cur := spec.Default()
	cur.Running = true
	_, resp, err := planSpecChange(events.Snapshot{Exists: true, Generation: 4, Spec: &cur},
		&specReq{req: api.SetRequest{Set: map[string]string{"containerEngine.name": "containerd", "running": "true"}, DryRun: true}})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Changes) != 1 || resp.Changes[0] != (api.Change{Property: "containerEngine.name", Old: "moby", New: "containerd"}) {
		t.Errorf("Changes = %+v", resp.Changes)
	}
	_, resp, err = planSpecChange(events.Snapshot{}, &specReq{req: api.SetRequest{Set: map[string]string{"running": "true"}, DryRun: true}})
	if err != nil {
		t.Fatal(err)
	}
	// A create changes every property, from nothing.
	if len(resp.Changes) != 4 || resp.Changes[3] != (api.Change{Property: "running", Old: "", New: "true"}) {
		t.Errorf("Changes of a create = %+v", resp.Changes)
	}
}
