package events

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/rdd-project/rdd/internal/spec"
)

// t0 is the time of the first event of every built log.
var t0 = time.Date(2026, 11, 26, 12, 0, 0, 123456789, time.UTC)

// logBuilder builds a sequenced log, one second per event, and can fold it
// as it goes.
type logBuilder struct {
	tb   testing.TB
	envs []Envelope
	p    *Projector
	gen  int64
	sp   spec.Spec
}

func newLog(tb testing.TB) *logBuilder {
	return &logBuilder{tb: tb, p: NewProjector()}
}

// add appends p and folds it.
func (b *logBuilder) add(p Payload) *logBuilder {
	b.tb.Helper()
	e, err := New(t0.Add(time.Duration(len(b.envs))*time.Second), p)
	if err != nil {
		b.tb.Fatal(err)
	}
	e.Seq = uint64(len(b.envs)) + 1
	if err := e.Validate(); err != nil {
		b.tb.Fatal(err)
	}
	if err := b.p.Apply(e); err != nil {
		b.tb.Fatalf("fold %s at seq %d: %v", e.Type, e.Seq, err)
	}
	b.envs = append(b.envs, e)
	return b
}

// set records a SpecChanged to s with the next generation.
func (b *logBuilder) set(s spec.Spec) *logBuilder {
	b.gen++
	b.sp = s
	return b.add(&SpecChanged{Generation: b.gen, Spec: s, Changed: spec.Diff(spec.Spec{}, s), Source: Source{UID: 1000}})
}

// tr records a Transition of m to state at the current generation.
func (b *logBuilder) tr(m Machine, to string) *logBuilder {
	return b.trf(m, to, "", "", Facts{})
}

// trf is tr with reason/message overrides and facts, which replace the
// machine's facts as a whole.
func (b *logBuilder) trf(m Machine, to, reason, message string, f Facts) *logBuilder {
	s := b.p.Snapshot()
	from := s.Machine(m).State
	return b.add(&Transition{Machine: m, Event: "to-" + to, From: from, To: to, Reason: reason, Message: message, Generation: b.gen, Facts: ReplaceFacts(f)})
}

// obs records an Observed of m at the current generation; non-nil facts
// replace the machine's facts as a whole.
func (b *logBuilder) obs(m Machine, f *Facts) *logBuilder {
	return b.add(&Observed{Machine: m, Generation: b.gen, Facts: replaceOrKeep(f)})
}

// replaceOrKeep is the patch an Observed with *Facts used to mean.
func replaceOrKeep(f *Facts) FactsPatch {
	if f == nil {
		return FactsPatch{}
	}
	return ReplaceFacts(*f)
}

// vmHash is the template hash the vm reports when it runs the current spec.
func (b *logBuilder) vmHash() Facts {
	s := b.p.Snapshot()
	return Facts{TemplateHash: b.sp.TemplateHash(s.Status.KubernetesPort)}
}

func (b *logBuilder) snap() Snapshot { return b.p.Snapshot() }

func (b *logBuilder) cond(t ConditionType) Condition {
	c, _ := b.p.st.snapshotCondition(t)
	return c
}

func (st *state) snapshotCondition(t ConditionType) (Condition, bool) {
	i := conditionSlot(t)
	if i >= numSlots || st.conds[i].Type == "" {
		return Condition{}, false
	}
	return st.conds[i], true
}

// fataler is the part of testing.TB and *rapid.T that mustJSON needs.
type fataler interface{ Fatal(args ...any) }

func mustJSON(tb fataler, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func defaultSpec(running bool) spec.Spec {
	s := spec.Default()
	s.Running = running
	return s
}

func k8sSpec(running bool, version string) spec.Spec {
	s := defaultSpec(running)
	s.Kubernetes = spec.Kubernetes{Enabled: true, Version: version}
	return s
}
