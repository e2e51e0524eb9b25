package render

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/rdd-project/rdd/internal/events"
	"github.com/rdd-project/rdd/internal/spec"
)

var t0 = time.Date(2026, 11, 26, 12, 0, 0, 123456789, time.UTC)

func TestAge(t *testing.T) {
	for d, want := range map[time.Duration]string{
		-time.Second: "0s", 0: "0s", 59 * time.Second: "59s", 61 * time.Second: "1m",
		3*time.Hour + 5*time.Minute: "3h", 47 * time.Hour: "47h", 72 * time.Hour: "3d",
	} {
		if got := Age(d); got != want {
			t.Errorf("Age(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		850 * time.Millisecond:                    "850ms",
		4240 * time.Millisecond:                   "4.2s",
		3*time.Minute + 12400*time.Millisecond:    "3m12s",
		2*time.Hour + 5*time.Minute + time.Second: "2h5m",
	} {
		if got := Duration(d); got != want {
			t.Errorf("Duration(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestParseFormat(t *testing.T) {
	if f, err := ParseFormat("json", Text, JSON); err != nil || f != JSON {
		t.Errorf("ParseFormat(json) = %q, %v", f, err)
	}
	_, err := ParseFormat("yaml", Text, JSON)
	if err == nil || !strings.Contains(err.Error(), "valid formats: text, json") {
		t.Errorf("ParseFormat(yaml) error = %v", err)
	}
}

func TestConditionLineAndChanges(t *testing.T) {
	c := events.Condition{Type: events.CondRunning, Status: events.StatusFalse, Reason: "Starting", Message: "Lima instance\nis starting"}
	if got, want := ConditionLine(c), "Running=False: Lima instance is starting (Starting)"; got != want {
		t.Errorf("ConditionLine = %q, want %q", got, want)
	}
	before := []events.Condition{
		{Type: "Created", Status: "True", Reason: "Created", Message: "m"},
		{Type: "Running", Status: "False", Reason: "Stopped", Message: "m"},
	}
	after := []events.Condition{
		{Type: "Created", Status: "True", Reason: "Created", Message: "m", ObservedGeneration: 2}, // only the generation moved
		{Type: "Running", Status: "False", Reason: "Starting", Message: "m"},
		{Type: "Settled", Status: "False", Reason: "Starting", Message: "m"},
	}
	got := ChangedConditions(before, after)
	if len(got) != 2 || got[0].Type != "Running" || got[1].Type != "Settled" {
		t.Errorf("ChangedConditions = %+v, want Running and Settled", got)
	}
}

func sampleSnapshot() events.Snapshot {
	sp := spec.Default()
	sp.Running = true
	sp.Kubernetes = spec.Kubernetes{Enabled: true, Version: "1.34.6"}
	return events.Snapshot{
		Exists: true, Seq: 42, Generation: 3, Spec: &sp,
		Status: events.AppStatus{KubernetesPort: 7443, Conditions: []events.Condition{
			{Type: "Running", Status: "True", Reason: "Started", Message: "Lima instance is running", ObservedGeneration: 3, LastTransitionTime: t0},
			{Type: "Settled", Status: "False", Reason: "Probing", Message: "Waiting for k3s API server", ObservedGeneration: 3, LastTransitionTime: t0.Add(90 * time.Second)},
		}},
		Daemon: events.DaemonInfo{VMDriver: "host", VMDriverReason: "running as root"},
	}
}

func TestStatusText(t *testing.T) {
	var b bytes.Buffer
	if err := StatusText(&b, sampleSnapshot(), t0.Add(5*time.Minute)); err != nil {
		t.Fatal(err)
	}
	want := `TYPE     STATUS  REASON   AGE  MESSAGE
Running  True    Started  5m   Lima instance is running
Settled  False   Probing  3m   Waiting for k3s API server

generation:     3 (seq 42)
spec:           running=true containerEngine.name=moby kubernetes.enabled=true kubernetes.version=1.34.6
kubernetesPort: 7443
vmDriver:       host (running as root)
`
	if b.String() != want {
		t.Errorf("StatusText:\n%s\nwant:\n%s", b.String(), want)
	}

	b.Reset()
	if err := StatusText(&b, events.Snapshot{Seq: 7}, t0); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(b.String(), "App does not exist (seq 7)") {
		t.Errorf("StatusText of no App = %q", b.String())
	}
}

func TestWriteJSONMatchesMarshal(t *testing.T) {
	s := sampleSnapshot()
	var b bytes.Buffer
	if err := WriteJSON(&b, s); err != nil {
		t.Fatal(err)
	}
	want, _ := json.Marshal(s)
	if b.String() != string(want)+"\n" {
		t.Errorf("WriteJSON = %s, want json.Marshal + newline", b.String())
	}
	b.Reset()
	if err := WriteYAML(&b, s); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "kubernetesPort: 7443") {
		t.Errorf("WriteYAML lacks the port:\n%s", b.String())
	}
}

func mustEnvelope(t *testing.T, seq uint64, p events.Payload) events.Envelope {
	t.Helper()
	e, err := events.New(t0, p)
	if err != nil {
		t.Fatal(err)
	}
	e.Seq = seq
	return e
}

func TestEventLine(t *testing.T) {
	sp := spec.Default()
	tests := []struct {
		p    events.Payload
		want string
	}{
		{&events.Transition{Machine: "vm", Event: "start", From: "stopped", To: "starting", Generation: 2},
			"vm stopped→starting (start) gen=2"},
		{&events.Transition{Machine: "vm", Event: "fail", From: "starting", To: "startFailed", Generation: 2, Reason: "StartFailed",
			Message: "no pid", Facts: events.FactsPatch{RestartCount: events.Int(1)}},
			"vm starting→startFailed (fail) gen=2 reason=StartFailed restartCount=1: no pid"},
		{&events.SpecChanged{Generation: 2, Spec: sp, Changed: []string{"running"}, Source: events.Source{UID: 0, Command: "rdd start"}},
			`gen=2 changed=running by "rdd start" uid=0`},
		{&events.DaemonStarted{Version: "dev", PID: 12, VMDriver: "host", VMDriverReason: "root"},
			"version=dev pid=12 vmDriver=host (root)"},
		{&events.Observed{Machine: "engine", Generation: 3}, "engine gen=3"},
		{&events.Recovered{Machine: "vm", Believed: "running", Found: "stopped"}, "vm believed=running found=stopped"},
		{&events.DaemonStopping{Reason: "signal"}, `reason="signal"`},
	}
	for _, tt := range tests {
		e := mustEnvelope(t, 9, tt.p)
		if got := EventSummary(e); got != tt.want {
			t.Errorf("EventSummary(%s) = %q, want %q", e.Type, got, tt.want)
		}
	}
	line := EventLine(mustEnvelope(t, 9, tests[0].p))
	if want := "9      2026-11-26T12:00:00.123Z Transition     vm stopped→starting (start) gen=2"; line != want {
		t.Errorf("EventLine = %q, want %q", line, want)
	}
}

func TestBlocking(t *testing.T) {
	c := func(typ events.ConditionType, status events.ConditionStatus, reason string, gen int64) events.Condition {
		return events.Condition{Type: typ, Status: status, Reason: reason, Message: reason + " message", ObservedGeneration: gen}
	}
	snap := func(cs ...events.Condition) events.Snapshot {
		return events.Snapshot{Exists: true, Generation: 2, Status: events.AppStatus{Conditions: cs}}
	}
	for _, tc := range []struct {
		name string
		s    events.Snapshot
		want string
	}{
		{"forwarded", snap(c("Running", "True", "Started", 2), c("KubernetesReady", "False", "Probing", 2), c("Settled", "False", "Probing", 2)),
			"waiting 35s: KubernetesReady=False Probing — Probing message"},
		{"own reason", snap(c("Running", "True", "Started", 1), c("Settled", "False", "ApplyingTemplate", 2)),
			"waiting 35s: Settled=False ApplyingTemplate — ApplyingTemplate message"},
		{"stale", snap(c("Settled", "True", "Settled", 1)),
			"waiting 35s: Settled=True Settled — still describes generation 1; the daemon has not evaluated generation 2 yet"},
		{"absent", snap(), "waiting 35s: Settled=Unknown Absent — the daemon has not computed Settled yet"},
	} {
		if got := WaitingLine(35*time.Second+900*time.Millisecond, Blocking(tc.s, 2)); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}
