package events

import (
	"encoding/json"

	"github.com/rdd-project/rdd/internal/spec"
)

// Payload is the typed body of an envelope.
type Payload interface {
	EventType() Type
}

// DaemonStarted is appended when a daemon has opened the log and before it
// serves. VMDriver and VMDriverReason record how the driver was chosen.
type DaemonStarted struct {
	Version        string `json:"version"`
	PID            int    `json:"pid"`
	VMDriver       string `json:"vmDriver,omitempty"`
	VMDriverReason string `json:"vmDriverReason,omitempty"`
}

// DaemonStopping is appended when a daemon begins a graceful shutdown.
type DaemonStopping struct {
	Reason string `json:"reason"`
}

// Source says who asked for a spec change.
type Source struct {
	UID     int    `json:"uid"`
	PID     int    `json:"pid,omitempty"`
	Command string `json:"command,omitempty"`
}

// SpecChanged records a write that changed the spec. Generation is the new
// generation (previous + 1); Spec is the full spec after the change.
type SpecChanged struct {
	Generation int64     `json:"generation"`
	Spec       spec.Spec `json:"spec"`
	Changed    []string  `json:"changed"`
	Source     Source    `json:"source"`
}

// AppDeleted records that the App was deleted; the snapshot returns to
// exists=false and the next create starts again at generation 1.
type AppDeleted struct {
	Source Source `json:"source"`
}

// Machine names one of the four state machines.
type Machine string

// Machine names. Persisted: never rename.
const (
	MachineVM         Machine = "vm"
	MachineEngine     Machine = "engine"
	MachineK3s        Machine = "k3s"
	MachineKubeconfig Machine = "kubeconfig"
)

// Machines lists the machines in snapshot order.
var Machines = []Machine{MachineVM, MachineEngine, MachineK3s, MachineKubeconfig}

// Facts are the folded facts of a machine: what its driver measured, merged
// over every Transition and Observed (see FactsPatch). Zero values are
// omitted.
type Facts struct {
	PID          int    `json:"pid,omitempty"`
	RestartCount int    `json:"restartCount,omitempty"`
	Port         int    `json:"port,omitempty"`
	TemplateHash string `json:"templateHash,omitempty"`
	// RestartKey fingerprints the configuration fields whose change needs a
	// restart of the machine (driver-specific).
	RestartKey string `json:"restartKey,omitempty"`
	Containers int    `json:"containers,omitempty"`
	Images     int    `json:"images,omitempty"`
	Volumes    int    `json:"volumes,omitempty"`
	// AmbiguousStreak counts consecutive ambiguous k3s probes (behavior.md §8.1).
	AmbiguousStreak int `json:"ambiguousStreak,omitempty"`
}

// FactsPatch changes some facts: a nil field leaves the fact unchanged; a
// non-nil field sets it (a pointer to the zero value clears it). In JSON a
// non-nil pointer is written even when it points to zero, so a clear
// survives the log.
type FactsPatch struct {
	PID             *int    `json:"pid,omitempty"`
	RestartCount    *int    `json:"restartCount,omitempty"`
	Port            *int    `json:"port,omitempty"`
	TemplateHash    *string `json:"templateHash,omitempty"`
	RestartKey      *string `json:"restartKey,omitempty"`
	Containers      *int    `json:"containers,omitempty"`
	Images          *int    `json:"images,omitempty"`
	Volumes         *int    `json:"volumes,omitempty"`
	AmbiguousStreak *int    `json:"ambiguousStreak,omitempty"`
}

// Apply returns f with p's non-nil fields set.
func (p FactsPatch) Apply(f Facts) Facts {
	setInt(&f.PID, p.PID)
	setInt(&f.RestartCount, p.RestartCount)
	setInt(&f.Port, p.Port)
	setStr(&f.TemplateHash, p.TemplateHash)
	setStr(&f.RestartKey, p.RestartKey)
	setInt(&f.Containers, p.Containers)
	setInt(&f.Images, p.Images)
	setInt(&f.Volumes, p.Volumes)
	setInt(&f.AmbiguousStreak, p.AmbiguousStreak)
	return f
}

// IsZero reports whether p changes nothing. encoding/json's omitzero uses
// it, so an empty patch is left out of the log.
func (p FactsPatch) IsZero() bool {
	return p.PID == nil && p.RestartCount == nil && p.Port == nil && p.TemplateHash == nil &&
		p.RestartKey == nil && p.Containers == nil && p.Images == nil && p.Volumes == nil &&
		p.AmbiguousStreak == nil
}

// ReplaceFacts returns the patch that makes the facts exactly f, whatever
// they were: the meaning of the legacy "facts" key, and of a caller that
// still thinks in whole Facts.
func ReplaceFacts(f Facts) FactsPatch { return patchAll(&f) }

// patchAll is ReplaceFacts pointing into f, which must outlive the patch.
func patchAll(f *Facts) FactsPatch {
	return FactsPatch{
		PID: &f.PID, RestartCount: &f.RestartCount, Port: &f.Port,
		TemplateHash: &f.TemplateHash, RestartKey: &f.RestartKey,
		Containers: &f.Containers, Images: &f.Images, Volumes: &f.Volumes,
		AmbiguousStreak: &f.AmbiguousStreak,
	}
}

// over returns p with the fields base sets and p does not.
func (p FactsPatch) over(base FactsPatch) FactsPatch {
	pick := func(a, b *int) *int {
		if a != nil {
			return a
		}
		return b
	}
	if p.TemplateHash == nil {
		p.TemplateHash = base.TemplateHash
	}
	if p.RestartKey == nil {
		p.RestartKey = base.RestartKey
	}
	p.PID = pick(p.PID, base.PID)
	p.RestartCount = pick(p.RestartCount, base.RestartCount)
	p.Port = pick(p.Port, base.Port)
	p.Containers = pick(p.Containers, base.Containers)
	p.Images = pick(p.Images, base.Images)
	p.Volumes = pick(p.Volumes, base.Volumes)
	p.AmbiguousStreak = pick(p.AmbiguousStreak, base.AmbiguousStreak)
	return p
}

func setInt(dst *int, v *int) {
	if v != nil {
		*dst = *v
	}
}

func setStr(dst *string, v *string) {
	if v != nil {
		*dst = *v
	}
}

// Int returns a pointer to v, for a FactsPatch field.
func Int(v int) *int { return &v }

// Str returns a pointer to s, for a FactsPatch field.
func Str(s string) *string { return &s }

// Transition records one machine moving From → To on Event. Generation is
// the App generation the machine evaluated when it decided to move. Reason and
// Message, when set, override the condition defaults for the new state.
// Facts changes the machine's facts; those it leaves nil are kept.
type Transition struct {
	Machine    Machine    `json:"machine"`
	Event      string     `json:"event"`
	From       string     `json:"from"`
	To         string     `json:"to"`
	Reason     string     `json:"reason,omitempty"`
	Message    string     `json:"message,omitempty"`
	Generation int64      `json:"generation"`
	Facts      FactsPatch `json:"set,omitzero"`
}

// Observed records that Machine evaluated Generation and stayed where it was;
// it advances the observedGeneration of the conditions the machine feeds.
type Observed struct {
	Machine    Machine `json:"machine"`
	Generation int64   `json:"generation"`
	// Facts changes the machine's facts; those it leaves nil are kept.
	Facts FactsPatch `json:"set,omitzero"`
}

// Logs written before facts were patches carry the whole facts under
// "facts" (zero values omitted), replacing the machine's facts: a
// Transition always, an Observed when the key is there. Decoding turns that
// into the equivalent patch, so those logs fold exactly as they always did.
// When a payload has both keys, "set" wins over "facts" field by field.

// legacyFacts is the "facts" object of a Transition. Present is set even by
// null, which used to decode to the zero Facts and so cleared them all.
type legacyFacts struct {
	present bool
	f       Facts
}

func (l *legacyFacts) UnmarshalJSON(b []byte) error {
	l.present = true
	if string(b) == "null" {
		return nil
	}
	// Into the same value, so a repeated key merges as it used to.
	return json.Unmarshal(b, &l.f)
}

func (t *Transition) UnmarshalJSON(b []byte) error {
	type plain Transition
	aux := struct {
		plain
		Legacy legacyFacts `json:"facts"`
	}{plain: plain(*t)}
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	*t = Transition(aux.plain)
	if aux.Legacy.present {
		t.Facts = t.Facts.over(ReplaceFacts(aux.Legacy.f))
	}
	return nil
}

func (o *Observed) UnmarshalJSON(b []byte) error {
	type plain Observed
	aux := struct {
		plain
		Legacy *Facts `json:"facts"`
	}{plain: plain(*o)}
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	*o = Observed(aux.plain)
	if aux.Legacy != nil {
		o.Facts = o.Facts.over(ReplaceFacts(*aux.Legacy))
	}
	return nil
}

// Recovered records what a restarted daemon found for Machine: what the log
// said (Believed) and what re-observation showed (Found).
type Recovered struct {
	Machine  Machine `json:"machine"`
	Believed string  `json:"believed"`
	Found    string  `json:"found"`
	Message  string  `json:"message,omitempty"`
	PID      int     `json:"pid,omitempty"`
}

func (*DaemonStarted) EventType() Type  { return TypeDaemonStarted }
func (*DaemonStopping) EventType() Type { return TypeDaemonStopping }
func (*SpecChanged) EventType() Type    { return TypeSpecChanged }
func (*AppDeleted) EventType() Type     { return TypeAppDeleted }
func (*Transition) EventType() Type     { return TypeTransition }
func (*Observed) EventType() Type       { return TypeObserved }
func (*Recovered) EventType() Type      { return TypeRecovered }
