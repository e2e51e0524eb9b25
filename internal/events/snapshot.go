package events

import (
	"time"

	"github.com/rdd-project/rdd/internal/spec"
)

// ConditionType names a condition of the App.
type ConditionType string

const (
	CondCreated              ConditionType = "Created"
	CondRunning              ConditionType = "Running"
	CondContainerEngineReady ConditionType = "ContainerEngineReady"
	CondKubernetesReady      ConditionType = "KubernetesReady"
	CondSettled              ConditionType = "Settled"
)

// ConditionOrder is the order conditions appear in a snapshot (design.md §8).
var ConditionOrder = []ConditionType{CondCreated, CondRunning, CondContainerEngineReady, CondKubernetesReady, CondSettled}

// ConditionStatus is True, False or Unknown.
type ConditionStatus string

const (
	StatusTrue    ConditionStatus = "True"
	StatusFalse   ConditionStatus = "False"
	StatusUnknown ConditionStatus = "Unknown"
)

// MaxMessageRunes bounds condition messages (behavior.md §3).
const MaxMessageRunes = 32768

// Condition is one entry of status.conditions. LastTransitionTime changes only
// when Status changes (behavior.md §3.2); it comes from the event that caused
// the flip, so a replay reproduces it.
type Condition struct {
	Type               ConditionType   `json:"type"`
	Status             ConditionStatus `json:"status"`
	Reason             string          `json:"reason"`
	Message            string          `json:"message"`
	ObservedGeneration int64           `json:"observedGeneration"`
	LastTransitionTime time.Time       `json:"lastTransitionTime"`
	// LastTransitionSeq is the seq of the event that last flipped Status;
	// ReasonSeq the seq of the event that set the current reason. Both feed
	// `rdd why`.
	LastTransitionSeq uint64 `json:"lastTransitionSeq"`
	ReasonSeq         uint64 `json:"reasonSeq"`
}

// AppStatus is the status block of the snapshot.
type AppStatus struct {
	KubernetesPort int         `json:"kubernetesPort"`
	Conditions     []Condition `json:"conditions"`
}

// MachineStatus is what the snapshot records of one machine. A machine that
// has never made a transition or an observation has the zero MachineStatus
// (State ""); Snapshot.Machine reports its initial state.
type MachineStatus struct {
	State string `json:"state,omitempty"`
	// From is the state the last Transition left ("" before the first one).
	From               string `json:"from,omitempty"`
	SinceSeq           uint64 `json:"sinceSeq,omitempty"`
	ObservedGeneration int64  `json:"observedGeneration,omitempty"`
	// Reason and Message are the last Transition's overrides (behavior.md
	// §3.3 defaults apply when empty); Message is already truncated to
	// MaxMessageRunes.
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`
	Facts   Facts  `json:"facts"`
	// Failure is the last effect that failed without a failed state of its
	// own (EffectFailed); the next transition clears it.
	Failure *Failure `json:"failure,omitempty"`
}

// Snapshot is the projection of the log up to Seq (design.md §8). It is what
// `rdd status -o json`, GET /v1/status and `rdd replay -o json` print.
type Snapshot struct {
	Exists     bool                      `json:"exists"`
	Seq        uint64                    `json:"seq"`
	Generation int64                     `json:"generation"`
	Spec       *spec.Spec                `json:"spec,omitempty"`
	Status     AppStatus                 `json:"status"`
	Machines   map[Machine]MachineStatus `json:"machines"`
	// Daemon describes the daemon that appended the latest DaemonStarted.
	Daemon DaemonInfo `json:"daemon"`
}

// DaemonInfo is the latest DaemonStarted, as folded into the snapshot.
type DaemonInfo struct {
	PID            int    `json:"pid,omitempty"`
	Version        string `json:"version,omitempty"`
	VMDriver       string `json:"vmDriver,omitempty"`
	VMDriverReason string `json:"vmDriverReason,omitempty"`
	StartedSeq     uint64 `json:"startedSeq,omitempty"`
}

// Condition returns the condition of type t, if present.
func (s *Snapshot) Condition(t ConditionType) (Condition, bool) {
	for _, c := range s.Status.Conditions {
		if c.Type == t {
			return c, true
		}
	}
	return Condition{}, false
}

// Machine returns the status of machine m, with its initial state when the
// machine has never moved.
func (s *Snapshot) Machine(m Machine) MachineStatus {
	if ms, ok := s.Machines[m]; ok && ms.State != "" {
		return ms
	}
	return MachineStatus{State: InitialState(m)}
}
