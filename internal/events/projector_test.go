package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rdd-project/rdd/internal/spec"
)

func assertCond(t *testing.T, b *logBuilder, ct ConditionType, status ConditionStatus, reason string) Condition {
	t.Helper()
	c, ok := b.p.st.snapshotCondition(ct)
	if !ok {
		t.Fatalf("seq %d: %s is absent, want %s/%s", b.p.Seq(), ct, status, reason)
	}
	if c.Status != status || c.Reason != reason {
		t.Fatalf("seq %d: %s = %s/%s %q, want %s/%s", b.p.Seq(), ct, c.Status, c.Reason, c.Message, status, reason)
	}
	return c
}

func assertAbsent(t *testing.T, b *logBuilder, cts ...ConditionType) {
	t.Helper()
	for _, ct := range cts {
		if c, ok := b.p.st.snapshotCondition(ct); ok {
			t.Fatalf("seq %d: %s = %+v, want absent", b.p.Seq(), ct, c)
		}
	}
}

// TestLifecycle walks scenarios 18, 19 and 36: create stopped, start, stop.
func TestLifecycle(t *testing.T) {
	t.Parallel()
	b := newLog(t)
	s := b.snap()
	if s.Exists || s.Spec != nil || len(s.Status.Conditions) != 0 || s.Status.Conditions == nil || len(s.Machines) != 4 {
		t.Fatalf("initial snapshot: %+v", s)
	}
	b.set(defaultSpec(false))
	assertAbsent(t, b, CondCreated, CondRunning, CondContainerEngineReady, CondKubernetesReady)
	assertCond(t, b, CondSettled, StatusFalse, ReasonWaitingForLimaVM)

	b.tr(MachineVM, "creating")
	created := assertCond(t, b, CondCreated, StatusUnknown, ReasonPending)
	b.trf(MachineVM, "stopped", "", "", b.vmHash())
	c := assertCond(t, b, CondCreated, StatusTrue, ReasonCreated)
	if c.Message != MsgCreated || c.LastTransitionSeq == created.LastTransitionSeq {
		t.Fatalf("Created = %+v", c)
	}
	assertCond(t, b, CondRunning, StatusFalse, ReasonStopped)
	assertCond(t, b, CondSettled, StatusFalse, ReasonEngineStale) // engine absent on the stop path
	b.obs(MachineEngine, nil)
	assertCond(t, b, CondContainerEngineReady, StatusFalse, ReasonStopped)
	settled := assertCond(t, b, CondSettled, StatusTrue, ReasonSettled)
	if settled.ObservedGeneration != 1 {
		t.Fatalf("Settled gen %d", settled.ObservedGeneration)
	}

	// Scenario 19: start.
	b.set(defaultSpec(true))
	assertCond(t, b, CondSettled, StatusFalse, ReasonStopped)
	if c := b.cond(CondSettled); c.Message != "LimaVM has not yet reached Started" {
		t.Fatalf("Settled message %q", c.Message)
	}
	b.tr(MachineVM, "starting")
	assertCond(t, b, CondSettled, StatusFalse, ReasonStarting)
	b.trf(MachineVM, "running", "", "", Facts{TemplateHash: b.vmHash().TemplateHash, PID: 42, RestartCount: 1})
	runningCond := assertCond(t, b, CondRunning, StatusTrue, ReasonStarted)
	if runningCond.LastTransitionTime != t0.Add(time.Duration(b.p.Seq()-1)*time.Second) || runningCond.ObservedGeneration != 2 {
		t.Fatalf("Running = %+v", runningCond)
	}
	assertCond(t, b, CondSettled, StatusFalse, ReasonEngineStale) // engine Stopped at gen 1
	b.tr(MachineEngine, "connecting")
	assertCond(t, b, CondSettled, StatusFalse, ReasonConnecting)
	b.trf(MachineEngine, "connected", "", "", Facts{Containers: 3, Images: 2})
	assertCond(t, b, CondSettled, StatusTrue, ReasonSettled)

	// Scenario 36: stop. The engine's fresh Connected must not finish it.
	b.set(defaultSpec(false))
	assertCond(t, b, CondSettled, StatusFalse, ReasonStarted)
	b.obs(MachineEngine, nil) // Connected at gen 3 while the VM is still up
	b.tr(MachineVM, "stopping")
	b.tr(MachineVM, "stopped")
	assertCond(t, b, CondSettled, StatusFalse, ReasonEngineStale)
	b.tr(MachineEngine, "stopped")
	settled = assertCond(t, b, CondSettled, StatusTrue, ReasonSettled)
	if settled.ObservedGeneration != 3 {
		t.Fatalf("Settled gen %d", settled.ObservedGeneration)
	}
	if s := b.snap(); s.Machines[MachineVM].From != "stopping" || s.Machines[MachineEngine].ObservedGeneration != 3 {
		t.Fatalf("machines: %+v", s.Machines)
	}
}

func TestLastTransitionTimeAndSeqs(t *testing.T) {
	t.Parallel()
	b := newLog(t).set(defaultSpec(true))
	b.tr(MachineVM, "creating").tr(MachineVM, "stopped").tr(MachineVM, "starting")
	first := assertCond(t, b, CondRunning, StatusFalse, ReasonStarting)
	// A reason change with the same status keeps the time, moves ReasonSeq.
	b.trf(MachineVM, "startFailed", "", "spawn failed", Facts{})
	c := assertCond(t, b, CondRunning, StatusFalse, ReasonStartFailed)
	if !c.LastTransitionTime.Equal(first.LastTransitionTime) || c.LastTransitionSeq != first.LastTransitionSeq || c.ReasonSeq != b.p.Seq() {
		t.Fatalf("reason change: before %+v after %+v", first, c)
	}
	// A message-only change keeps all three.
	b.trf(MachineVM, "startFailed", "", "spawn failed again", Facts{})
	c2 := assertCond(t, b, CondRunning, StatusFalse, ReasonStartFailed)
	if c2.Message != "spawn failed again" || c2.LastTransitionSeq != c.LastTransitionSeq || c2.ReasonSeq != c.ReasonSeq {
		t.Fatalf("message change: before %+v after %+v", c, c2)
	}
	// A status flip moves everything.
	b.tr(MachineVM, "starting").tr(MachineVM, "running")
	c3 := assertCond(t, b, CondRunning, StatusTrue, ReasonStarted)
	if c3.LastTransitionSeq != b.p.Seq() || c3.ReasonSeq != b.p.Seq() || !c3.LastTransitionTime.After(c2.LastTransitionTime) {
		t.Fatalf("status flip: %+v", c3)
	}
}

func TestCreatedMessageFromAdoption(t *testing.T) {
	t.Parallel()
	b := newLog(t).set(defaultSpec(false))
	b.tr(MachineVM, "creating").trf(MachineVM, "stopped", "", "Lima instance exists", Facts{})
	if c := assertCond(t, b, CondCreated, StatusTrue, ReasonCreated); c.Message != "Lima instance exists" {
		t.Fatalf("Created message %q", c.Message)
	}
	if c := assertCond(t, b, CondRunning, StatusFalse, ReasonStopped); c.Message != MsgStopped {
		t.Fatalf("Running message %q", c.Message)
	}
	b.obs(MachineVM, nil).tr(MachineVM, "starting")
	if c := b.cond(CondCreated); c.Message != "Lima instance exists" {
		t.Fatalf("Created message changed to %q", c.Message)
	}
}

// TestCreateFailedForwarded is F9 (scenario 28 as rdd fixes it).
func TestCreateFailedForwarded(t *testing.T) {
	t.Parallel()
	b := newLog(t).set(defaultSpec(true))
	b.tr(MachineVM, "creating")
	b.trf(MachineVM, "createFailed", "", "download https://images.invalid/x.raw.xz: lookup images.invalid: no such host", Facts{})
	assertCond(t, b, CondCreated, StatusFalse, ReasonCreateFailed)
	assertAbsent(t, b, CondRunning)
	s := assertCond(t, b, CondSettled, StatusFalse, ReasonCreateFailed)
	if !strings.Contains(s.Message, "images.invalid") {
		t.Fatalf("Settled message %q", s.Message)
	}
}

// TestApplyingTemplate is scenario 21: an engine switch on a running App
// passes through ApplyingTemplate until the VM runs the new template.
func TestApplyingTemplate(t *testing.T) {
	t.Parallel()
	b := newLog(t).set(defaultSpec(true))
	b.tr(MachineVM, "creating").trf(MachineVM, "stopped", "", "", b.vmHash())
	b.trf(MachineVM, "starting", "", "", b.vmHash()).trf(MachineVM, "running", "", "", b.vmHash())
	b.tr(MachineEngine, "connecting").tr(MachineEngine, "connected")
	assertCond(t, b, CondSettled, StatusTrue, ReasonSettled)
	old := b.vmHash()

	s := defaultSpec(true)
	s.ContainerEngine.Name = spec.EngineContainerd
	b.set(s)
	assertCond(t, b, CondSettled, StatusFalse, ReasonApplyingTemplate) // hash differs
	b.trf(MachineVM, "stopping", "", "", old)
	assertCond(t, b, CondSettled, StatusFalse, ReasonApplyingTemplate)
	b.trf(MachineVM, "stopped", "", "Stopped for restart", b.vmHash()) // the new template is written
	assertCond(t, b, CondSettled, StatusFalse, ReasonStopped)
	b.trf(MachineVM, "starting", "", "", b.vmHash())
	b.trf(MachineVM, "running", "", "", b.vmHash())
	assertCond(t, b, CondSettled, StatusFalse, ReasonEngineStale)
	b.tr(MachineEngine, "stopped").tr(MachineEngine, "notApplicable")
	assertCond(t, b, CondContainerEngineReady, StatusTrue, ReasonNotApplicable)
	assertCond(t, b, CondSettled, StatusTrue, ReasonSettled)

	// The vm has not looked at a new generation yet: stale → ApplyingTemplate,
	// even though its hash still matches (the change is template-neutral).
	b.set(s) // same spec, new generation, as if a field the VM ignores changed
	assertCond(t, b, CondSettled, StatusFalse, ReasonApplyingTemplate)
	b.obs(MachineVM, nil)
	assertCond(t, b, CondSettled, StatusFalse, ReasonEngineStale)
	b.obs(MachineEngine, nil)
	assertCond(t, b, CondSettled, StatusTrue, ReasonSettled)
}

// TestKubernetes walks scenarios 44, 47, 49 and 50.
func TestKubernetes(t *testing.T) {
	t.Parallel()
	b := newLog(t).set(defaultSpec(true))
	b.tr(MachineVM, "creating").tr(MachineVM, "stopped").tr(MachineVM, "starting").tr(MachineVM, "running")
	b.tr(MachineEngine, "connecting").tr(MachineEngine, "connected")
	b.obs(MachineK3s, nil)
	assertCond(t, b, CondKubernetesReady, StatusFalse, ReasonNotApplicable)
	assertCond(t, b, CondSettled, StatusTrue, ReasonSettled) // k8s disabled: not a gate

	b.set(k8sSpec(true, "1.34.6"))
	if p := b.snap().Status.KubernetesPort; p != 0 {
		t.Fatalf("port before k3s reports one: %d", p)
	}
	b.trf(MachineK3s, "notRunning", "", "", Facts{Port: 7443})
	if p := b.snap().Status.KubernetesPort; p != 7443 {
		t.Fatalf("port = %d", p)
	}
	b.obs(MachineVM, nil).obs(MachineEngine, nil)
	assertCond(t, b, CondSettled, StatusFalse, ReasonNotRunning)
	b.trf(MachineK3s, "probing", "", "", Facts{Port: 7443})
	assertCond(t, b, CondSettled, StatusFalse, ReasonProbing)
	b.trf(MachineKubeconfig, "mergeFailed", "", "open /home/u/.kube/config: not a directory", Facts{})
	k := assertCond(t, b, CondKubernetesReady, StatusFalse, ReasonMergeFailed)
	if k.Message != "Failed to publish Kubernetes context: open /home/u/.kube/config: not a directory" || k.ObservedGeneration != 2 {
		t.Fatalf("KubernetesReady = %+v", k)
	}
	s := assertCond(t, b, CondSettled, StatusFalse, ReasonMergeFailed)
	if s.Message != k.Message {
		t.Fatalf("Settled message %q", s.Message)
	}
	b.tr(MachineKubeconfig, "merged")
	b.trf(MachineK3s, "waitingForNode", "", "No node has registered yet", Facts{Port: 7443})
	assertCond(t, b, CondSettled, StatusFalse, ReasonWaitingForNode)
	b.trf(MachineK3s, "ready", "", "", Facts{Port: 7443})
	assertCond(t, b, CondKubernetesReady, StatusTrue, ReasonReady)
	assertCond(t, b, CondSettled, StatusTrue, ReasonSettled)

	// Scenario 50: stop; Settled does not wait for Kubernetes.
	b.set(k8sSpec(false, "1.34.6"))
	b.obs(MachineK3s, nil).obs(MachineKubeconfig, nil)
	b.tr(MachineVM, "stopping").tr(MachineVM, "stopped").tr(MachineEngine, "stopped")
	assertCond(t, b, CondSettled, StatusTrue, ReasonSettled)
	assertCond(t, b, CondKubernetesReady, StatusTrue, ReasonReady) // not yet removed
	b.tr(MachineK3s, "notRunning").tr(MachineKubeconfig, "removing").tr(MachineKubeconfig, "absent")
	assertCond(t, b, CondKubernetesReady, StatusFalse, ReasonNotRunning)

	// Scenario 49: disable; the port goes back to 0 at once.
	b.set(defaultSpec(false))
	if p := b.snap().Status.KubernetesPort; p != 0 {
		t.Fatalf("port after disable = %d", p)
	}
}

func TestAppDeleted(t *testing.T) {
	t.Parallel()
	b := newLog(t).set(defaultSpec(true))
	b.tr(MachineVM, "creating").tr(MachineVM, "stopped").tr(MachineEngine, "stopped")
	b.add(&AppDeleted{Source: Source{UID: 1}})
	s := b.snap()
	if s.Exists || s.Spec != nil || s.Generation != 0 || len(s.Status.Conditions) != 0 {
		t.Fatalf("after delete: %+v", s)
	}
	if vm := s.Machines[MachineVM]; vm.State != "stopped" || vm.ObservedGeneration != 0 {
		t.Fatalf("vm after delete: %+v", vm)
	}
	b.tr(MachineVM, "deleting").tr(MachineVM, "absent")
	if len(b.snap().Status.Conditions) != 0 {
		t.Fatal("conditions while the App is absent")
	}
	b.gen = 0
	b.set(defaultSpec(false))
	if s := b.snap(); s.Generation != 1 || !s.Exists {
		t.Fatalf("recreated: %+v", s)
	}
	assertCond(t, b, CondSettled, StatusFalse, ReasonWaitingForLimaVM)
	assertCond(t, b, CondContainerEngineReady, StatusFalse, ReasonStopped)
}

func TestDaemonEvents(t *testing.T) {
	t.Parallel()
	b := newLog(t)
	b.add(&DaemonStarted{Version: "v0.1.0", PID: 77, VMDriver: "host", VMDriverReason: "RDD_VM_DRIVER=host"})
	b.add(&Recovered{Machine: MachineVM, Believed: "running", Found: "stopped"})
	b.add(&DaemonStopping{Reason: "signal"})
	s := b.snap()
	want := DaemonInfo{PID: 77, Version: "v0.1.0", VMDriver: "host", VMDriverReason: "RDD_VM_DRIVER=host", StartedSeq: 1}
	if s.Daemon != want || s.Seq != 3 || s.Exists {
		t.Fatalf("snapshot %+v", s)
	}
}

func TestApplyRejects(t *testing.T) {
	t.Parallel()
	b := newLog(t).set(defaultSpec(false)).tr(MachineVM, "creating")
	before := mustJSON(t, b.snap())
	next := uint64(len(b.envs)) + 1
	env := func(seq uint64, p Payload) Envelope {
		e, err := New(t0, p)
		if err != nil {
			t.Fatal(err)
		}
		e.Seq = seq
		return e
	}
	raw := func(typ Type, data string) Envelope {
		return Envelope{Seq: next, Time: t0, Type: typ, V: 1, Data: json.RawMessage(data)}
	}
	badV := env(next, &DaemonStopping{})
	badV.V = 2
	for name, e := range map[string]Envelope{
		"seq gap":                 env(next+1, &DaemonStopping{}),
		"seq repeated":            env(next-1, &DaemonStopping{}),
		"generation skipped":      env(next, &SpecChanged{Generation: 3, Spec: defaultSpec(true)}),
		"generation repeated":     env(next, &SpecChanged{Generation: 1, Spec: defaultSpec(true)}),
		"unknown machine":         env(next, &Transition{Machine: "gpu", To: "on"}),
		"unknown state":           env(next, &Transition{Machine: MachineVM, To: "exploded"}),
		"state of another":        env(next, &Transition{Machine: MachineVM, To: "connected"}),
		"negative generation":     env(next, &Transition{Machine: MachineVM, To: "stopped", Generation: -1}),
		"observe unknown machine": env(next, &Observed{Machine: "gpu"}),
		"recover unknown machine": env(next, &Recovered{Machine: "gpu"}),
		"unknown type":            raw("Exploded", `{}`),
		"bad transition payload":  raw(TypeTransition, `{"machine": 3}`),
		"bad observed payload":    raw(TypeObserved, `{"generation": "x"}`),
		"bad spec payload":        raw(TypeSpecChanged, `[]`),
		"truncated payload":       raw(TypeTransition, `{"machine":"vm"`),
		"unsupported version":     badV,
	} {
		err := b.p.Apply(e)
		if !errors.Is(err, ErrFold) {
			t.Errorf("%s: Apply = %v, want ErrFold", name, err)
		}
		if after := mustJSON(t, b.snap()); !bytes.Equal(before, after) {
			t.Fatalf("%s: a rejected event changed the snapshot", name)
		}
	}
	// The first SpecChanged of an absent App must be generation 1.
	p := NewProjector()
	if err := p.Apply(env(1, &SpecChanged{Generation: 2, Spec: defaultSpec(false)})); !errors.Is(err, ErrFold) {
		t.Errorf("create at generation 2: %v", err)
	}
}

func TestSnapshotIsDeepCopy(t *testing.T) {
	t.Parallel()
	b := newLog(t).set(defaultSpec(false)).tr(MachineVM, "creating").tr(MachineVM, "stopped")
	before := mustJSON(t, b.snap())
	s := b.snap()
	s.Spec.Running = true
	s.Status.Conditions[0].Reason = "Mutated"
	s.Machines[MachineVM] = MachineStatus{State: "running"}
	delete(s.Machines, MachineEngine)
	if after := mustJSON(t, b.snap()); !bytes.Equal(before, after) {
		t.Fatal("mutating a snapshot changed the projector")
	}
}

func TestCheckpoint(t *testing.T) {
	t.Parallel()
	b := newLog(t).set(k8sSpec(true, "1.34.6"))
	b.tr(MachineVM, "creating").tr(MachineVM, "stopped").trf(MachineK3s, "notRunning", "", "", Facts{Port: 7443})
	cp, err := b.p.Checkpoint()
	if err != nil {
		t.Fatal(err)
	}
	s, err := UnmarshalCheckpoint(cp)
	if err != nil {
		t.Fatal(err)
	}
	p := NewProjector()
	if err := p.Restore(s); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(mustJSON(t, p.Snapshot()), mustJSON(t, b.snap())) {
		t.Fatal("restored snapshot differs")
	}
	if p.Snapshot().Status.KubernetesPort != 7443 {
		t.Fatal("port not restored")
	}
	if _, err := UnmarshalCheckpoint([]byte(`{"v":2,"snapshot":{}}`)); err == nil {
		t.Error("a v2 checkpoint was accepted")
	}
	if _, err := UnmarshalCheckpoint([]byte(`{"v":1,`)); err == nil {
		t.Error("a truncated checkpoint was accepted")
	}
	good := b.snap()
	for name, mutate := range map[string]func(*Snapshot){
		"unknown machine": func(s *Snapshot) { s.Machines["gpu"] = MachineStatus{} },
		"unknown state":   func(s *Snapshot) { s.Machines[MachineVM] = MachineStatus{State: "exploded"} },
		"no spec":         func(s *Snapshot) { s.Spec = nil },
		"order":           func(s *Snapshot) { c := s.Status.Conditions; c[0], c[1] = c[1], c[0] },
		"unknown cond":    func(s *Snapshot) { s.Status.Conditions[0].Type = "Happy" },
	} {
		s := b.snap()
		mutate(&s)
		if err := p.Restore(s); !errors.Is(err, ErrFold) {
			t.Errorf("%s: Restore = %v", name, err)
		}
		if !bytes.Equal(mustJSON(t, p.Snapshot()), mustJSON(t, good)) {
			t.Fatalf("%s: a rejected Restore changed the projector", name)
		}
	}
}

func TestReplayMatchesLiveFold(t *testing.T) {
	t.Parallel()
	b := newLog(t).set(defaultSpec(true)).tr(MachineVM, "creating").tr(MachineVM, "stopped")
	s, err := Replay(b.envs)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(mustJSON(t, s), mustJSON(t, b.snap())) {
		t.Fatal("Replay differs from the live fold")
	}
	if _, err := Replay(b.envs[1:]); !errors.Is(err, ErrFold) {
		t.Fatalf("Replay without seq 1: %v", err)
	}
}

func TestMessagesAreTruncated(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", MaxMessageRunes+10)
	b := newLog(t).set(defaultSpec(true)).tr(MachineVM, "creating").tr(MachineVM, "stopped").tr(MachineVM, "starting")
	b.trf(MachineVM, "startFailed", "", long, Facts{})
	for _, ct := range []ConditionType{CondRunning, CondSettled} {
		if m := b.cond(ct).Message; len(m) > MaxMessageRunes+len("… (truncated)") || !strings.HasSuffix(m, "… (truncated)") {
			t.Errorf("%s message not truncated (%d bytes)", ct, len(m))
		}
	}
	if m := b.snap().Machines[MachineVM].Message; !strings.HasSuffix(m, "… (truncated)") {
		t.Error("machine message not truncated")
	}
}

func TestValidState(t *testing.T) {
	t.Parallel()
	for _, m := range Machines {
		if !ValidState(m, InitialState(m)) {
			t.Errorf("initial state of %s is not valid", m)
		}
	}
	if ValidState(MachineVM, "connected") || ValidState("gpu", "on") {
		t.Error("ValidState accepted a foreign state")
	}
}
