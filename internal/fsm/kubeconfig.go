package fsm

import "github.com/rdd-project/rdd/internal/events"

// kubeconfig machine events (events.Edges declares where they lead).
const (
	KubeconfigMerge          = events.EventKubeconfigMerge
	KubeconfigMergeFailed    = events.EventKubeconfigMergeFailed
	KubeconfigRemove         = events.EventKubeconfigRemove
	KubeconfigRemoved        = events.EventKubeconfigRemoved
	KubeconfigCurrentContext = events.EventKubeconfigCurrentContext
)

// NewKubeconfig builds the kubeconfig machine in its initial state (absent).
func NewKubeconfig(app Appender) *Machine {
	return newMachine(events.MachineKubeconfig, app)
}
