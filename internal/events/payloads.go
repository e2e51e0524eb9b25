package events

import "github.com/rdd-project/rdd/internal/spec"

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

// Facts are what a driver measured at a transition. Zero values are omitted.
type Facts struct {
	PID          int    `json:"pid,omitempty"`
	RestartCount int    `json:"restartCount,omitempty"`
	Port         int    `json:"port,omitempty"`
	TemplateHash string `json:"templateHash,omitempty"`
	Containers   int    `json:"containers,omitempty"`
	Images       int    `json:"images,omitempty"`
	Volumes      int    `json:"volumes,omitempty"`
	// AmbiguousStreak counts consecutive ambiguous k3s probes (behavior.md §8.1).
	AmbiguousStreak int `json:"ambiguousStreak,omitempty"`
}

// Transition records one machine moving From → To on Event. Generation is
// the App generation the machine evaluated when it decided to move. Reason and
// Message, when set, override the condition defaults for the new state.
type Transition struct {
	Machine    Machine `json:"machine"`
	Event      string  `json:"event"`
	From       string  `json:"from"`
	To         string  `json:"to"`
	Reason     string  `json:"reason,omitempty"`
	Message    string  `json:"message,omitempty"`
	Generation int64   `json:"generation"`
	Facts      Facts   `json:"facts"`
}

// Observed records that Machine evaluated Generation and stayed where it was;
// it advances the observedGeneration of the conditions the machine feeds.
type Observed struct {
	Machine    Machine `json:"machine"`
	Generation int64   `json:"generation"`
	// Facts, when non-zero, replace the machine's recorded facts.
	Facts *Facts `json:"facts,omitempty"`
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
