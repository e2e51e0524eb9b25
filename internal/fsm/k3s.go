package fsm

import "github.com/rdd-project/rdd/internal/events"

// k3s machine events.
const (
	K3sDisable   Event = "disable"
	K3sVMDown    Event = "vmDown"
	K3sProbe     Event = "probe"
	K3sHealthy   Event = "healthy"
	K3sNodeReady Event = "nodeReady"
	// K3sUnhealthy: a decisive probe failure, or the third ambiguous one.
	K3sUnhealthy Event = "unhealthy"
)

func k3sStates() []string {
	return []string{
		string(events.K3sNotApplicable), string(events.K3sNotRunning), string(events.K3sProbing),
		string(events.K3sWaitingForNode), string(events.K3sReady),
	}
}

func k3sEdges() []Edge {
	s := func(v ...events.K3sState) []string {
		out := make([]string, len(v))
		for i, x := range v {
			out[i] = string(x)
		}
		return out
	}
	return []Edge{
		{K3sDisable, s(events.K3sNotRunning, events.K3sProbing, events.K3sWaitingForNode, events.K3sReady), string(events.K3sNotApplicable)},
		{K3sVMDown, s(events.K3sNotApplicable, events.K3sProbing, events.K3sWaitingForNode, events.K3sReady), string(events.K3sNotRunning)},
		{K3sProbe, s(events.K3sNotApplicable, events.K3sNotRunning), string(events.K3sProbing)},
		{K3sHealthy, s(events.K3sProbing), string(events.K3sWaitingForNode)},
		{K3sNodeReady, s(events.K3sWaitingForNode, events.K3sProbing), string(events.K3sReady)},
		{K3sUnhealthy, s(events.K3sWaitingForNode, events.K3sReady), string(events.K3sProbing)},
	}
}

// NewK3s builds the k3s machine in its initial state (notApplicable).
func NewK3s(app Appender) *Machine {
	return newMachine(events.MachineK3s, k3sStates(), k3sEdges(), app)
}
