package events

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestDeriveVM(t *testing.T) {
	t.Parallel()
	T, F, U := StatusTrue, StatusFalse, StatusUnknown
	c := func(status ConditionStatus, reason, message string) want {
		return want{present: true, status: status, reason: reason, message: message, gen: 3}
	}
	none := want{}
	createdOK := c(T, ReasonCreated, MsgCreated)
	tests := []struct {
		name             string
		ms               MachineStatus
		prevCreated      Condition
		created, running want
	}{
		{"untouched", MachineStatus{}, Condition{}, none, none},
		{"absent", MachineStatus{State: "absent", From: "deleting"}, Condition{}, none, none},
		{"creating", MachineStatus{State: "creating", From: "absent"}, Condition{}, c(U, ReasonPending, MsgPending), none},
		{"createFailed", MachineStatus{State: "createFailed", From: "creating", Message: "no such host"}, Condition{}, c(F, ReasonCreateFailed, "no such host"), none},
		{"createFailed without message", MachineStatus{State: "createFailed", From: "creating"}, Condition{}, c(F, ReasonCreateFailed, ""), none},
		{"created → stopped", MachineStatus{State: "stopped", From: "creating"}, Condition{}, createdOK, c(F, ReasonStopped, MsgStopped)},
		{"adopted: completing message goes to Created", MachineStatus{State: "stopped", From: "creating", Message: "Lima instance exists"}, Condition{},
			c(T, ReasonCreated, "Lima instance exists"), c(F, ReasonStopped, MsgStopped)},
		{"Created message is kept once True", MachineStatus{State: "starting", From: "stopped"},
			Condition{Type: CondCreated, Status: T, Message: "Lima instance exists"}, c(T, ReasonCreated, "Lima instance exists"), c(F, ReasonStarting, MsgStarting)},
		{"starting", MachineStatus{State: "starting", From: "stopped"}, Condition{}, createdOK, c(F, ReasonStarting, MsgStarting)},
		{"running", MachineStatus{State: "running", From: "starting"}, Condition{}, createdOK, c(T, ReasonStarted, MsgStarted)},
		{"startFailed", MachineStatus{State: "startFailed", From: "starting", Message: "spawn: ENOENT"}, Condition{}, createdOK, c(F, ReasonStartFailed, "spawn: ENOENT")},
		{"stopping", MachineStatus{State: "stopping", From: "running"}, Condition{}, createdOK, c(F, ReasonStopping, MsgStopping)},
		{"stopped for restart", MachineStatus{State: "stopped", From: "stopping", Message: "Stopped for restart"}, Condition{}, createdOK, c(F, ReasonStopped, "Stopped for restart")},
		{"stopFailed", MachineStatus{State: "stopFailed", From: "stopping", Message: "instance still running after stop attempt"}, Condition{},
			createdOK, c(F, ReasonStopFailed, "instance still running after stop attempt")},
		{"reconciling", MachineStatus{State: "reconciling", From: "running"}, Condition{}, createdOK, c(U, ReasonReconciling, MsgReconciling)},
		{"deleting", MachineStatus{State: "deleting", From: "stopped"}, Condition{}, createdOK, c(F, ReasonDeleting, MsgDeleting)},
		{"reason override", MachineStatus{State: "startFailed", From: "starting", Reason: "ImageMissingFailed", Message: "m"}, Condition{},
			createdOK, c(F, "ImageMissingFailed", "m")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.ms.ObservedGeneration = 3
			created, running := deriveVM(&tt.ms, &tt.prevCreated, limaVMTexts)
			if created != tt.created {
				t.Errorf("Created = %+v, want %+v", created, tt.created)
			}
			if running != tt.running {
				t.Errorf("Running = %+v, want %+v", running, tt.running)
			}
		})
	}
}

func TestDeriveEngine(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		ms     MachineStatus
		status ConditionStatus
		reason string
		msg    string
	}{
		{MachineStatus{State: "stopped"}, StatusFalse, ReasonStopped, MsgEngineStopped},
		{MachineStatus{State: "connecting"}, StatusFalse, ReasonConnecting, MsgEngineConnecting},
		{MachineStatus{State: "connected"}, StatusTrue, ReasonConnected, MsgEngineConnected},
		{MachineStatus{State: "connectFailed", Message: "failed to ping Docker: EOF"}, StatusFalse, ReasonConnectFailed, "failed to ping Docker: EOF"},
		{MachineStatus{State: "notApplicable"}, StatusTrue, ReasonNotApplicable, MsgEngineNotApplic},
	} {
		tt.ms.ObservedGeneration = 4
		got := deriveEngine(&tt.ms)
		if !got.present || got.status != tt.status || got.reason != tt.reason || got.message != tt.msg || got.gen != 4 {
			t.Errorf("%s: got %+v", tt.ms.State, got)
		}
	}
	if got := deriveEngine(&MachineStatus{}); got.present {
		t.Errorf("untouched engine derived %+v", got)
	}
}

func TestDeriveKube(t *testing.T) {
	t.Parallel()
	F, T := StatusFalse, StatusTrue
	tests := []struct {
		k3s, kc      string
		k3sMsg       string
		kcMsg        string
		status       ConditionStatus
		reason, msg  string
		gen          int64
		wantAbsent   bool
		k3sG, kcG    int64
		kcUntouched  bool
		describeCase string
	}{
		{k3s: "", wantAbsent: true, describeCase: "k3s untouched"},
		{k3s: "notApplicable", kc: "absent", status: F, reason: ReasonNotApplicable, msg: MsgKubeNotApplicable, gen: 5},
		{k3s: "notApplicable", kc: "mergeFailed", status: F, reason: ReasonNotApplicable, msg: MsgKubeNotApplicable, gen: 5, describeCase: "mergeFailed ignored when disabled"},
		{k3s: "notRunning", kc: "removing", status: F, reason: ReasonNotRunning, msg: MsgKubeNotRunning, gen: 5},
		{k3s: "probing", kc: "absent", status: F, reason: ReasonProbing, msg: MsgKubeProbing, gen: 5},
		{k3s: "probing", kc: "mergeFailed", kcMsg: "read-only file system", status: F, reason: ReasonMergeFailed,
			msg: "Failed to publish Kubernetes context: read-only file system", gen: 2},
		{k3s: "waitingForNode", kc: "merged", k3sMsg: "No node has registered yet", status: F, reason: ReasonWaitingForNode, msg: "No node has registered yet", gen: 5},
		{k3s: "waitingForNode", kc: "mergeFailed", kcMsg: "Failed to publish Kubernetes context: x", status: F, reason: ReasonMergeFailed,
			msg: "Failed to publish Kubernetes context: x", gen: 2},
		{k3s: "ready", kc: "merged", status: T, reason: ReasonReady, msg: MsgKubeReady, gen: 2},
		{k3s: "ready", kc: "mergeFailed", status: F, reason: ReasonMergeFailed, msg: MsgMergeFailedPref, gen: 2},
		{k3s: "ready", kc: "absent", status: F, reason: ReasonProbing, msg: MsgKubePublishing, gen: 2},
		{k3s: "ready", kc: "removing", status: F, reason: ReasonProbing, msg: MsgKubePublishing, gen: 2},
		{k3s: "ready", kcUntouched: true, status: F, reason: ReasonProbing, msg: MsgKubePublishing, gen: 0, describeCase: "kubeconfig never moved"},
	}
	for _, tt := range tests {
		k3s := MachineStatus{State: tt.k3s, Message: tt.k3sMsg, ObservedGeneration: 5}
		kc := MachineStatus{State: tt.kc, Message: tt.kcMsg, ObservedGeneration: 2}
		if tt.kcUntouched {
			kc = MachineStatus{}
		}
		got := deriveKube(&k3s, &kc)
		name := tt.k3s + "/" + tt.kc + " " + tt.describeCase
		if tt.wantAbsent {
			if got.present {
				t.Errorf("%s: got %+v, want absent", name, got)
			}
			continue
		}
		if got.status != tt.status || got.reason != tt.reason || got.message != tt.msg || got.gen != tt.gen {
			t.Errorf("%s: got %s/%s %q gen %d, want %s/%s %q gen %d", name, got.status, got.reason, got.message, got.gen, tt.status, tt.reason, tt.msg, tt.gen)
		}
	}
}

func TestTruncateMessage(t *testing.T) {
	t.Parallel()
	if got := TruncateMessage("short"); got != "short" {
		t.Errorf("short message changed: %q", got)
	}
	exact := strings.Repeat("é", MaxMessageRunes)
	if got := TruncateMessage(exact); got != exact {
		t.Error("a message of exactly MaxMessageRunes runes was cut")
	}
	long := strings.Repeat("é", MaxMessageRunes+1)
	got := TruncateMessage(long)
	if !strings.HasSuffix(got, "… (truncated)") || utf8.RuneCountInString(got) != MaxMessageRunes || !utf8.ValidString(got) {
		t.Errorf("truncated message: %d runes, suffix ok %v", utf8.RuneCountInString(got), strings.HasSuffix(got, "… (truncated)"))
	}
}

func TestMergeFailedMessage(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"":     "Failed to publish Kubernetes context",
		"boom": "Failed to publish Kubernetes context: boom",
		"Failed to publish Kubernetes context: load ~/.kube/config: yaml": "Failed to publish Kubernetes context: load ~/.kube/config: yaml",
	} {
		if got := mergeFailedMessage(in); got != want {
			t.Errorf("mergeFailedMessage(%q) = %q, want %q", in, got, want)
		}
	}
}

// The vm's default messages name the driver's machine: the reference's
// exact texts for lima (and for a log that does not say), "Host engine"
// for host, never "Lima instance" for a driver that is not lima.
func TestVMMessagesFollowTheDriver(t *testing.T) {
	t.Parallel()
	if *limaVMTexts != (vmTexts{"Lima instance", MsgCreated, MsgStarting, MsgStarted, MsgStopped, MsgStopping, MsgDeleting}) {
		t.Errorf("lima texts %+v differ from the reference constants", *limaVMTexts)
	}
	for _, tc := range []struct {
		driver        string
		want          string
		created, stop string
	}{
		{"", "Lima instance is running", "Lima instance created successfully", "Lima instance is stopping"},
		{"lima", "Lima instance is running", "Lima instance created successfully", "Lima instance is stopping"},
		{"host", "Host engine is running", "Host engine created successfully", "Host engine is stopping"},
		{"qemu", "VM is running", "VM created successfully", "VM is stopping"},
	} {
		t.Run("driver="+tc.driver, func(t *testing.T) {
			t.Parallel()
			b := newLog(t)
			b.add(&DaemonStarted{Version: "v", PID: 1, VMDriver: tc.driver})
			b.set(defaultSpec(true))
			b.tr(MachineVM, "creating").tr(MachineVM, "stopped").tr(MachineVM, "starting").tr(MachineVM, "running")
			if c := b.cond(CondRunning); c.Message != tc.want {
				t.Errorf("Running message %q, want %q", c.Message, tc.want)
			}
			if c := b.cond(CondCreated); c.Message != tc.created {
				t.Errorf("Created message %q, want %q", c.Message, tc.created)
			}
			b.tr(MachineVM, "stopping")
			if c := b.cond(CondRunning); c.Message != tc.stop {
				t.Errorf("Running message %q, want %q", c.Message, tc.stop)
			}
			if tc.driver != "" && tc.driver != "lima" {
				for _, c := range b.snap().Status.Conditions {
					if strings.Contains(c.Message, "Lima instance") {
						t.Errorf("%s driver: %s says %q", tc.driver, c.Type, c.Message)
					}
				}
			}
			// A checkpoint keeps the driver, so a restored projector goes on
			// with the same texts.
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
			b.p = p
			b.tr(MachineVM, "stopped")
			if c := b.cond(CondRunning); c.Message != strings.Replace(tc.stop, "stopping", "stopped", 1) {
				t.Errorf("after restore: Running message %q", c.Message)
			}
		})
	}
}
