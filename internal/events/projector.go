package events

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/rdd-project/rdd/internal/spec"
)

// ErrFold is wrapped by every error of Projector.Apply and Restore: the
// event (or snapshot) is inconsistent with what was folded before.
var ErrFold = errors.New("events: cannot fold")

// Projector folds events into a Snapshot (design.md §1.3). It is a pure,
// deterministic function of the events it is given: no clock, no I/O, no
// randomness, no dependence on map order. Folding the same log always gives
// a snapshot whose json.Marshal is byte-identical.
//
// Apply is all-or-nothing: when it returns an error the projector is exactly
// as before, so a writer may fold an event first and append it only if the
// fold succeeds. A Projector is not safe for concurrent use; its owner (the
// single writer) hands out Snapshot copies instead.
type Projector struct {
	st state
	// Scratch space for the fast payload decoder, reused across events.
	tr Transition
	ob Observed
	// setVals and legacyVals hold the values the decoded patch points to.
	setVals, legacyVals Facts
	legacy              bool
	sc                  SpecChanged
	intern              map[string]string
	// jsonOnly turns the fast decoder off and alwaysDerive the skipping of
	// no-op observations; tests and benchmarks compare both paths.
	jsonOnly     bool
	alwaysDerive bool
}

// state is everything the fold keeps. It maps one-to-one onto Snapshot, so
// a checkpoint (a marshalled Snapshot) restores it exactly.
type state struct {
	exists     bool
	seq        uint64
	generation int64
	spec       spec.Spec
	daemon     DaemonInfo
	machines   [numMachines]MachineStatus
	conds      [numSlots]Condition // Type == "" means absent
	// Derived from spec and the k3s facts, cached because they are read on
	// every event.
	port        int
	desiredHash string
}

// NewProjector returns a projector at seq 0: no App, machines in their
// initial states.
func NewProjector() *Projector {
	return &Projector{intern: make(map[string]string, 64)}
}

// Seq is the seq of the last folded event.
func (p *Projector) Seq() uint64 { return p.st.seq }

// Apply folds e, whose Seq must be exactly one more than the last folded
// event's. Rules (design.md §2–3, behavior.md §3–4):
//
//   - SpecChanged sets the spec; its generation must be the previous one
//     plus one, or 1 when the App was absent.
//   - AppDeleted returns the App to absent (spec, generation and conditions
//     cleared). Machines keep their states and facts, but their observed
//     generations are reset to 0: the next App starts again at generation 1,
//     and an observation of the old App must not count for it.
//   - Transition moves a machine to To, recording the seq and the reason and
//     message overrides, and applies its facts patch; its observed
//     generation only grows.
//   - Observed raises a machine's observed generation and applies its facts
//     patch. A fact changes only when a patch sets it.
//   - DaemonStarted fills Snapshot.Daemon; DaemonStopping and Recovered
//     change nothing but the seq (the controllers record what recovery
//     decided as Transitions).
//
// After every event the conditions are derived again from the machines and
// the spec (see deriveVM, deriveEngine, deriveKube and computeSettled).
func (p *Projector) Apply(e Envelope) error {
	if e.Seq != p.st.seq+1 {
		return fmt.Errorf("%w: event seq %d does not follow %d", ErrFold, e.Seq, p.st.seq)
	}
	if e.V < 1 || e.V > CurrentVersion {
		return fmt.Errorf("%w: seq %d: %s has unsupported payload version %d", ErrFold, e.Seq, e.Type, e.V)
	}
	st := &p.st
	// Daemon events and recoveries do not feed the conditions.
	derive := true
	switch e.Type {
	case TypeTransition:
		tr, err := p.decodeTransition(e)
		if err != nil {
			return err
		}
		i, ok := machineSlot(tr.Machine)
		if !ok {
			return fmt.Errorf("%w: seq %d: transition of unknown machine %q", ErrFold, e.Seq, tr.Machine)
		}
		if !validState(i, tr.To) {
			return fmt.Errorf("%w: seq %d: %s machine has no state %q", ErrFold, e.Seq, tr.Machine, tr.To)
		}
		if tr.Generation < 0 {
			return fmt.Errorf("%w: seq %d: negative generation %d", ErrFold, e.Seq, tr.Generation)
		}
		ms := &st.machines[i]
		from := ms.State
		if from == "" {
			from = InitialState(tr.Machine)
		}
		ms.From = from
		ms.State = tr.To
		ms.SinceSeq = e.Seq
		ms.ObservedGeneration = max(ms.ObservedGeneration, tr.Generation)
		ms.Reason = tr.Reason
		ms.Message = TruncateMessage(tr.Message)
		ms.Failure = nil
		oldPort := ms.Facts.Port
		ms.Facts = tr.Facts.Apply(ms.Facts)
		if i == mK3s && ms.Facts.Port != oldPort {
			st.refreshDerived()
		}
	case TypeObserved:
		ob, err := p.decodeObserved(e)
		if err != nil {
			return err
		}
		i, ok := machineSlot(ob.Machine)
		if !ok {
			return fmt.Errorf("%w: seq %d: observation of unknown machine %q", ErrFold, e.Seq, ob.Machine)
		}
		ms := &st.machines[i]
		// Only the state, the observed generation, the vm's template hash and
		// the k3s port feed the conditions; a re-assertion that changes none
		// of them (the common case) skips the derivation.
		changed := p.alwaysDerive
		if ms.State == "" {
			ms.State = InitialState(ob.Machine)
			changed = true
		}
		if ob.Generation > ms.ObservedGeneration {
			ms.ObservedGeneration = ob.Generation
			changed = true
		}
		if !ob.Facts.IsZero() {
			old := ms.Facts
			ms.Facts = ob.Facts.Apply(old)
			switch {
			case i == mVM && old.TemplateHash != ms.Facts.TemplateHash:
				changed = true
			case i == mK3s && old.Port != ms.Facts.Port:
				st.refreshDerived()
				changed = true
			}
		}
		if !changed {
			st.seq = e.Seq
			return nil
		}
	case TypeSpecChanged:
		pl, err := p.decodeSpecChanged(e)
		if err != nil {
			return err
		}
		want := st.generation + 1
		if !st.exists {
			want = 1
		}
		if pl.Generation != want {
			return fmt.Errorf("%w: seq %d: SpecChanged to generation %d, want %d", ErrFold, e.Seq, pl.Generation, want)
		}
		st.exists = true
		st.generation = pl.Generation
		st.spec = pl.Spec
		st.refreshDerived()
	case TypeAppDeleted:
		if _, err := decodeAs[*AppDeleted](e); err != nil {
			return err
		}
		st.exists = false
		st.generation = 0
		st.spec = spec.Spec{}
		for i := range st.machines {
			st.machines[i].ObservedGeneration = 0
		}
		st.refreshDerived()
	case TypeDaemonStarted:
		pl, err := decodeAs[*DaemonStarted](e)
		if err != nil {
			return err
		}
		st.daemon = DaemonInfo{PID: pl.PID, Version: pl.Version, VMDriver: pl.VMDriver, VMDriverReason: pl.VMDriverReason, StartedSeq: e.Seq}
		derive = false
	case TypeDaemonStopping:
		if _, err := decodeAs[*DaemonStopping](e); err != nil {
			return err
		}
		derive = false
	case TypeRecovered:
		pl, err := decodeAs[*Recovered](e)
		if err != nil {
			return err
		}
		if _, ok := machineSlot(pl.Machine); !ok {
			return fmt.Errorf("%w: seq %d: recovery of unknown machine %q", ErrFold, e.Seq, pl.Machine)
		}
		derive = false
	case TypeEffectFailed:
		pl, err := decodeAs[*EffectFailed](e)
		if err != nil {
			return err
		}
		i, ok := machineSlot(pl.Machine)
		if !ok {
			return fmt.Errorf("%w: seq %d: failure of unknown machine %q", ErrFold, e.Seq, pl.Machine)
		}
		st.machines[i].Failure = &Failure{Effect: pl.Effect, Message: TruncateMessage(pl.Message), Seq: e.Seq}
		derive = false
	default:
		return fmt.Errorf("%w: seq %d: unknown event type %q", ErrFold, e.Seq, e.Type)
	}
	st.seq = e.Seq
	if derive || p.alwaysDerive {
		st.deriveConditions(e.Seq, e.Time)
	}
	return nil
}

// decodeAs decodes e's payload with encoding/json and checks its type.
func decodeAs[T Payload](e Envelope) (T, error) {
	var zero T
	pl, err := Decode(e)
	if err != nil {
		return zero, fmt.Errorf("%w: %w", ErrFold, err)
	}
	t, ok := pl.(T)
	if !ok {
		return zero, fmt.Errorf("%w: seq %d: payload %T for type %s", ErrFold, e.Seq, pl, e.Type)
	}
	return t, nil
}

// refreshDerived recomputes the port and the desired template hash.
func (st *state) refreshDerived() {
	st.port, st.desiredHash = 0, ""
	if !st.exists {
		return
	}
	if st.spec.Kubernetes.Enabled {
		st.port = st.machines[mK3s].Facts.Port
	}
	st.desiredHash = st.spec.TemplateHash(st.port)
}

// deriveConditions recomputes every condition and stamps the ones whose
// status flipped with the event's seq and time (behavior.md §3.2).
func (st *state) deriveConditions(seq uint64, at time.Time) {
	if !st.exists {
		st.conds = [numSlots]Condition{}
		return
	}
	var w [numSlots]want
	vm := &st.machines[mVM]
	w[slotCreated], w[slotRunning] = deriveVM(vm, &st.conds[slotCreated], vmTextsFor(st.daemon.VMDriver))
	w[slotEngine] = deriveEngine(&st.machines[mEngine])
	w[slotKube] = deriveKube(&st.machines[mK3s], &st.machines[mKubeconfig])
	vmExists := vm.State != "" && vm.State != string(VMAbsent)
	w[slotSettled] = computeSettled(settledInputs{
		generation:       st.generation,
		running:          st.spec.Running,
		k8s:              st.spec.Kubernetes.Enabled,
		templateUpToDate: !vmExists || vm.Facts.TemplateHash == "" || vm.Facts.TemplateHash == st.desiredHash,
		created:          w[slotCreated],
		runningCond:      w[slotRunning],
		engine:           w[slotEngine],
		kube:             w[slotKube],
	})
	for i := range w {
		c := &st.conds[i]
		if !w[i].present {
			*c = Condition{}
			continue
		}
		switch {
		case c.Type == "" || c.Status != w[i].status:
			c.LastTransitionTime = at.UTC()
			c.LastTransitionSeq = seq
			c.ReasonSeq = seq
		case c.Reason != w[i].reason:
			c.ReasonSeq = seq
		}
		c.Type = ConditionOrder[i]
		c.Status = w[i].status
		c.Reason = w[i].reason
		c.Message = TruncateMessage(w[i].message)
		c.ObservedGeneration = w[i].gen
	}
}

// Snapshot returns a deep copy of the current projection, safe to hand to
// other goroutines. It always has all four machines and a non-nil (possibly
// empty) condition list; Spec is nil while the App does not exist.
func (p *Projector) Snapshot() Snapshot {
	st := &p.st
	s := Snapshot{
		Exists:     st.exists,
		Seq:        st.seq,
		Generation: st.generation,
		Status:     AppStatus{KubernetesPort: st.port},
		Machines:   make(map[Machine]MachineStatus, numMachines),
		Daemon:     st.daemon,
	}
	// One allocation holds the spec and the conditions.
	a := new(struct {
		spec  spec.Spec
		conds [numSlots]Condition
	})
	if st.exists {
		a.spec = st.spec
		s.Spec = &a.spec
	}
	n := 0
	for i := range st.conds {
		if st.conds[i].Type != "" {
			a.conds[n] = st.conds[i]
			n++
		}
	}
	s.Status.Conditions = a.conds[:n:n]
	for i, m := range Machines {
		s.Machines[m] = st.machines[i]
	}
	return s
}

// Condition returns the current condition of type t, if present: what
// Snapshot().Condition(t) returns, without copying the whole projection
// (rdd why asks after every event of a log).
func (p *Projector) Condition(t ConditionType) (Condition, bool) {
	for i := range p.st.conds {
		if p.st.conds[i].Type == t {
			return p.st.conds[i], true
		}
	}
	return Condition{}, false
}

// Restore replaces the projector's state with s, typically a checkpoint, so
// that folding the events after s.Seq continues exactly where the snapshot
// was taken. It checks that s is well-formed (known machines and states,
// known conditions in ConditionOrder) and leaves the projector unchanged on
// an error.
func (p *Projector) Restore(s Snapshot) error {
	var st state
	st.exists, st.seq, st.generation, st.daemon = s.Exists, s.Seq, s.Generation, s.Daemon
	if s.Exists {
		if s.Spec == nil {
			return fmt.Errorf("%w: snapshot at seq %d has an App without a spec", ErrFold, s.Seq)
		}
		st.spec = *s.Spec
	}
	for m, ms := range s.Machines {
		i, ok := machineSlot(m)
		if !ok {
			return fmt.Errorf("%w: snapshot has unknown machine %q", ErrFold, m)
		}
		if ms.State != "" && !validState(i, ms.State) {
			return fmt.Errorf("%w: snapshot has %s machine in unknown state %q", ErrFold, m, ms.State)
		}
		st.machines[i] = ms
	}
	next := 0
	for _, c := range s.Status.Conditions {
		i := conditionSlot(c.Type)
		if i < next || i >= numSlots {
			return fmt.Errorf("%w: snapshot condition %q is unknown, repeated or out of order", ErrFold, c.Type)
		}
		c.LastTransitionTime = c.LastTransitionTime.UTC()
		st.conds[i] = c
		next = i + 1
	}
	st.refreshDerived()
	p.st = st
	return nil
}

// checkpointVersion is the schema of MarshalCheckpoint's output.
const checkpointVersion = 1

type checkpoint struct {
	V        int      `json:"v"`
	Snapshot Snapshot `json:"snapshot"`
}

// MarshalCheckpoint serialises s for the checkpoints bucket (design.md §2):
// {"v":1,"snapshot":{…}}. Restoring it with UnmarshalCheckpoint and Restore
// reproduces the projector exactly.
func MarshalCheckpoint(s Snapshot) ([]byte, error) {
	b, err := json.Marshal(checkpoint{V: checkpointVersion, Snapshot: s})
	if err != nil {
		return nil, fmt.Errorf("encode checkpoint at seq %d: %w", s.Seq, err)
	}
	return b, nil
}

// UnmarshalCheckpoint decodes a checkpoint written by MarshalCheckpoint.
// A checkpoint of an unknown (newer) version is an error.
func UnmarshalCheckpoint(b []byte) (Snapshot, error) {
	var c checkpoint
	if err := json.Unmarshal(b, &c); err != nil {
		return Snapshot{}, fmt.Errorf("decode checkpoint: %w", err)
	}
	if c.V != checkpointVersion {
		return Snapshot{}, fmt.Errorf("decode checkpoint: unsupported version %d (this rdd reads %d)", c.V, checkpointVersion)
	}
	return c.Snapshot, nil
}

// Checkpoint is MarshalCheckpoint of the current snapshot.
func (p *Projector) Checkpoint() ([]byte, error) { return MarshalCheckpoint(p.Snapshot()) }

// Replay folds envs, which must start at seq 1, into a new projector and
// returns the final snapshot.
func Replay(envs []Envelope) (Snapshot, error) {
	p := NewProjector()
	for _, e := range envs {
		if err := p.Apply(e); err != nil {
			return Snapshot{}, err
		}
	}
	return p.Snapshot(), nil
}

func machineSlot(m Machine) (int, bool) {
	switch m {
	case MachineVM:
		return mVM, true
	case MachineEngine:
		return mEngine, true
	case MachineK3s:
		return mK3s, true
	case MachineKubeconfig:
		return mKubeconfig, true
	}
	return 0, false
}

// conditionSlot returns t's index in ConditionOrder, or numSlots+1.
func conditionSlot(t ConditionType) int {
	for i, c := range ConditionOrder {
		if c == t {
			return i
		}
	}
	return numSlots + 1
}

// ConditionChange is one condition that differs between two snapshots: Old
// is nil when it appeared, New is nil when it disappeared.
type ConditionChange struct {
	Type ConditionType
	Old  *Condition
	New  *Condition
}

// DiffConditions lists, in ConditionOrder, the conditions whose status,
// reason, message or observedGeneration differ between prev and next, or
// that exist in only one of them. `rdd replay` prints the ones whose status,
// reason or message changed (render.ChangedConditions).
func DiffConditions(prev, next *Snapshot) []ConditionChange {
	var out []ConditionChange
	for _, t := range ConditionOrder {
		o, hadOld := prev.Condition(t)
		n, hasNew := next.Condition(t)
		switch {
		case !hadOld && !hasNew:
			continue
		case hadOld && hasNew && o.Status == n.Status && o.Reason == n.Reason &&
			o.Message == n.Message && o.ObservedGeneration == n.ObservedGeneration:
			continue
		}
		ch := ConditionChange{Type: t}
		if hadOld {
			ch.Old = &o
		}
		if hasNew {
			ch.New = &n
		}
		out = append(out, ch)
	}
	return out
}
