package fsm

import "github.com/rdd-project/rdd/internal/events"

// kubeconfig machine events.
const (
	KubeconfigMerge       Event = "merge"
	KubeconfigMergeFailed Event = "mergeFailed"
	KubeconfigRemove      Event = "remove"
	KubeconfigRemoved     Event = "removed"
)

func kubeconfigStates() []string {
	return []string{
		string(events.KubeconfigAbsent), string(events.KubeconfigMerged),
		string(events.KubeconfigMergeFailed), string(events.KubeconfigRemoving),
	}
}

func kubeconfigEdges() []Edge {
	s := func(v ...events.KubeconfigState) []string {
		out := make([]string, len(v))
		for i, x := range v {
			out[i] = string(x)
		}
		return out
	}
	return []Edge{
		{KubeconfigMerge, s(events.KubeconfigAbsent, events.KubeconfigMergeFailed), string(events.KubeconfigMerged)},
		{KubeconfigMergeFailed, s(events.KubeconfigAbsent, events.KubeconfigMerged), string(events.KubeconfigMergeFailed)},
		{KubeconfigRemove, s(events.KubeconfigMerged, events.KubeconfigMergeFailed), string(events.KubeconfigRemoving)},
		{KubeconfigRemoved, s(events.KubeconfigRemoving), string(events.KubeconfigAbsent)},
	}
}

// NewKubeconfig builds the kubeconfig machine in its initial state (absent).
func NewKubeconfig(app Appender) *Machine {
	return newMachine(events.MachineKubeconfig, kubeconfigStates(), kubeconfigEdges(), app)
}
