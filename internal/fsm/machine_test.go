package fsm

import (
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/rdd-project/rdd/internal/events"
)

var update = flag.Bool("update", false, "rewrite the golden Mermaid diagrams in testdata/fsm")

// recorder is an Appender that keeps what was appended and can be made to fail.
type recorder struct {
	got  []events.Payload
	fail error
}

func (r *recorder) append(_ context.Context, p events.Payload) error {
	if r.fail != nil {
		return r.fail
	}
	r.got = append(r.got, p)
	return nil
}

func allMachines(app Appender) []*Machine {
	return []*Machine{NewVM(app), NewEngine(app), NewK3s(app), NewKubeconfig(app)}
}

func TestGoldenMermaid(t *testing.T) {
	for _, m := range allMachines((&recorder{}).append) {
		t.Run(string(m.Name()), func(t *testing.T) {
			got := m.Mermaid()
			if got == "" {
				t.Fatal("empty diagram")
			}
			path := filepath.Join("..", "..", "testdata", "fsm", string(m.Name())+".mmd")
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("read golden %s (regenerate with go test ./internal/fsm -update): %v", path, err)
			}
			if string(want) != got {
				t.Errorf("%s diagram changed; review and regenerate with -update.\ngot:\n%s\nwant:\n%s", m.Name(), got, want)
			}
		})
	}
}

// Every state the projector knows must be reachable in its machine, and the
// initial state must be one of the machine's states.
func TestEveryStateReachable(t *testing.T) {
	for _, m := range allMachines((&recorder{}).append) {
		reached := map[string]bool{events.InitialState(m.Name()): true}
		for _, e := range m.edges {
			reached[e.To] = true
		}
		for _, s := range m.States() {
			if !reached[s] {
				t.Errorf("%s: state %s is never entered", m.Name(), s)
			}
		}
		if !m.states[events.InitialState(m.Name())] {
			t.Errorf("%s: initial state %q is not a state of the machine", m.Name(), events.InitialState(m.Name()))
		}
	}
}

func TestFireAppendsBeforeMoving(t *testing.T) {
	rec := &recorder{}
	vm := NewVM(rec.append)
	ctx := context.Background()
	if err := vm.Fire(ctx, VMCreate, Change{Generation: 1}); err != nil {
		t.Fatal(err)
	}
	if vm.Current() != string(events.VMCreating) {
		t.Fatalf("state = %s, want creating", vm.Current())
	}
	tr, ok := rec.got[0].(*events.Transition)
	if !ok || tr.From != "absent" || tr.To != "creating" || tr.Event != "create" || tr.Machine != events.MachineVM || tr.Generation != 1 {
		t.Fatalf("appended %+v", rec.got[0])
	}

	rec.fail = errors.New("disk full")
	err := vm.Fire(ctx, VMCreated, Change{Generation: 1})
	if err == nil || !errors.Is(err, rec.fail) {
		t.Fatalf("Fire with failing append = %v, want the append error", err)
	}
	if vm.Current() != string(events.VMCreating) {
		t.Fatalf("a failed append moved the machine to %s", vm.Current())
	}
}

func TestInvalidEventAppendsNothing(t *testing.T) {
	rec := &recorder{}
	vm := NewVM(rec.append)
	err := vm.Fire(context.Background(), VMStarted, Change{})
	if !errors.Is(err, ErrInvalidTransition) {
		t.Fatalf("err = %v, want ErrInvalidTransition", err)
	}
	if len(rec.got) != 0 || vm.Current() != string(events.VMAbsent) {
		t.Fatalf("invalid event appended %d events, state %s", len(rec.got), vm.Current())
	}
}

func TestObserveDoesNotMove(t *testing.T) {
	rec := &recorder{}
	e := NewEngine(rec.append)
	if err := e.Observe(context.Background(), 3, events.FactsPatch{Containers: events.Int(2)}); err != nil {
		t.Fatal(err)
	}
	o, ok := rec.got[0].(*events.Observed)
	if !ok || o.Generation != 3 || o.Machine != events.MachineEngine || o.Facts.Containers == nil || *o.Facts.Containers != 2 {
		t.Fatalf("appended %+v", rec.got[0])
	}
	if e.Current() != string(events.EngineStopped) {
		t.Fatalf("state %s", e.Current())
	}
}

// Step tables: paths through each machine a controller takes.
func TestPaths(t *testing.T) {
	cases := []struct {
		name  string
		mk    func(Appender) *Machine
		steps []Event
		want  string
	}{
		{"vm boot", NewVM, []Event{VMCreate, VMCreated, VMStart, VMStarted}, "running"},
		{"vm create retry", NewVM, []Event{VMCreate, VMCreateFailed, VMCreate, VMCreated}, "stopped"},
		{"vm crash restarts", NewVM, []Event{VMCreate, VMCreated, VMStart, VMStarted, VMCrashed, VMStarted}, "running"},
		{"vm restart for template", NewVM, []Event{VMCreate, VMCreated, VMStart, VMStarted, VMStop, VMStopped, VMStart, VMStarted}, "running"},
		{"vm start failure then stop", NewVM, []Event{VMCreate, VMCreated, VMStart, VMStartFailed, VMStop, VMStopped}, "stopped"},
		{"vm recovery", NewVM, []Event{VMCreate, VMCreated, VMStart, VMReconcile, VMStarted}, "running"},
		{"vm delete", NewVM, []Event{VMCreate, VMCreated, VMDelete, VMDeleted}, "absent"},
		{"engine reconnect", NewEngine, []Event{EngineConnect, EngineConnected, EngineDisconnected, EngineConnected}, "connected"},
		{"engine retry", NewEngine, []Event{EngineConnect, EngineConnectFailed, EngineConnect, EngineConnected, EngineStop}, "stopped"},
		{"engine containerd", NewEngine, []Event{EngineNotApplicable, EngineStop}, "stopped"},
		{"k3s ready", NewK3s, []Event{K3sProbe, K3sHealthy, K3sNodeReady, K3sUnhealthy}, "probing"},
		{"k3s disabled", NewK3s, []Event{K3sVMDown, K3sDisable}, "notApplicable"},
		{"kubeconfig", NewKubeconfig, []Event{KubeconfigMergeFailed, KubeconfigMerge, KubeconfigRemove, KubeconfigRemoved}, "absent"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{}
			m := tc.mk(rec.append)
			for _, s := range tc.steps {
				if err := m.Fire(context.Background(), s, Change{}); err != nil {
					t.Fatalf("step %s: %v", s, err)
				}
			}
			if m.Current() != tc.want {
				t.Fatalf("state = %s, want %s", m.Current(), tc.want)
			}
			if len(rec.got) != len(tc.steps) {
				t.Fatalf("appended %d transitions for %d steps", len(rec.got), len(tc.steps))
			}
		})
	}
}

func TestRestore(t *testing.T) {
	vm := NewVM((&recorder{}).append)
	if err := vm.Restore("running"); err != nil {
		t.Fatal(err)
	}
	if !vm.Can(VMCrashed) {
		t.Fatal("restored running machine cannot crash")
	}
	if err := vm.Restore("flying"); err == nil {
		t.Fatal("restoring an unknown state succeeded")
	}
}
