package events

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Type names an event kind. Types are persisted: never rename or reuse one;
// retire a type by renaming its constant to …Deprecated and keeping the string.
type Type string

// Event types (design.md §2).
const (
	TypeDaemonStarted  Type = "DaemonStarted"
	TypeDaemonStopping Type = "DaemonStopping"
	TypeSpecChanged    Type = "SpecChanged"
	TypeAppDeleted     Type = "AppDeleted"
	TypeTransition     Type = "Transition"
	TypeObserved       Type = "Observed"
	TypeRecovered      Type = "Recovered"
	TypeEffectFailed   Type = "EffectFailed"
)

// KnownTypes lists every type the codec accepts, in a stable order.
var KnownTypes = []Type{
	TypeDaemonStarted, TypeDaemonStopping, TypeSpecChanged, TypeAppDeleted,
	TypeTransition, TypeObserved, TypeRecovered, TypeEffectFailed,
}

// CurrentVersion is the payload schema version written for each type.
const CurrentVersion = 1

// MaxEncodedBytes bounds one envelope as the store writes it and as one line
// of the export format (without its newline). Every payload comes from a
// request of at most 1 MiB (api.MaxRequestBytes) or from the daemon itself,
// and JSON escaping can grow it; 4 MiB leaves room for that while letting a
// reader of an export (rdd replay) refuse a runaway line instead of buffering
// it whole. The store refuses to append a larger envelope, so every event it
// exported can be read back.
const MaxEncodedBytes = 4 << 20

// ErrInvalidEnvelope is wrapped by every validation failure of Validate.
var ErrInvalidEnvelope = errors.New("events: invalid envelope")

// Envelope is one record of the event log. Seq and Time are assigned once,
// at append; Data is the JSON payload whose shape is fixed by Type and V.
type Envelope struct {
	Seq  uint64          `json:"seq"`
	Time time.Time       `json:"time"`
	Type Type            `json:"type"`
	V    int             `json:"v"`
	Data json.RawMessage `json:"data"`
}

// Known reports whether t is one of KnownTypes.
func (t Type) Known() bool {
	for _, k := range KnownTypes {
		if k == t {
			return true
		}
	}
	return false
}

// Validate checks what the store requires before it persists an envelope:
// a known type, a supported version, a non-zero UTC time and an object payload.
// Seq is not checked: the store assigns it.
func (e Envelope) Validate() error {
	if !e.Type.Known() {
		return fmt.Errorf("%w: unknown type %q", ErrInvalidEnvelope, e.Type)
	}
	if e.V < 1 || e.V > CurrentVersion {
		return fmt.Errorf("%w: %s has unsupported payload version %d (this rdd reads up to %d)", ErrInvalidEnvelope, e.Type, e.V, CurrentVersion)
	}
	if e.Time.IsZero() {
		return fmt.Errorf("%w: %s has a zero time", ErrInvalidEnvelope, e.Type)
	}
	if len(e.Data) == 0 || e.Data[0] != '{' {
		return fmt.Errorf("%w: %s payload must be a JSON object", ErrInvalidEnvelope, e.Type)
	}
	return nil
}

// New builds an unsequenced envelope for payload p at time t (normalised to UTC).
func New(t time.Time, p Payload) (Envelope, error) {
	data, err := json.Marshal(p)
	if err != nil {
		return Envelope{}, fmt.Errorf("encode %s payload: %w", p.EventType(), err)
	}
	return Envelope{Time: t.UTC(), Type: p.EventType(), V: CurrentVersion, Data: data}, nil
}

// Marshal encodes e as one line of the export format (no trailing newline).
func Marshal(e Envelope) ([]byte, error) { return json.Marshal(e) }

// Unmarshal decodes one envelope and validates it.
func Unmarshal(b []byte) (Envelope, error) {
	var e Envelope
	if err := json.Unmarshal(b, &e); err != nil {
		return Envelope{}, fmt.Errorf("decode event: %w", err)
	}
	if err := e.Validate(); err != nil {
		return Envelope{}, err
	}
	return e, nil
}

// Decode returns the typed payload of e.
func Decode(e Envelope) (Payload, error) {
	var p Payload
	switch e.Type {
	case TypeDaemonStarted:
		p = &DaemonStarted{}
	case TypeDaemonStopping:
		p = &DaemonStopping{}
	case TypeSpecChanged:
		p = &SpecChanged{}
	case TypeAppDeleted:
		p = &AppDeleted{}
	case TypeTransition:
		p = &Transition{}
	case TypeObserved:
		p = &Observed{}
	case TypeRecovered:
		p = &Recovered{}
	case TypeEffectFailed:
		p = &EffectFailed{}
	default:
		return nil, fmt.Errorf("%w: unknown type %q at seq %d", ErrInvalidEnvelope, e.Type, e.Seq)
	}
	if err := json.Unmarshal(e.Data, p); err != nil {
		return nil, fmt.Errorf("decode %s payload at seq %d: %w", e.Type, e.Seq, err)
	}
	return p, nil
}
