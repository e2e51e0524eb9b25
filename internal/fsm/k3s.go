package fsm

import "github.com/rdd-project/rdd/internal/events"

// k3s machine events (events.Edges declares where they lead).
const (
	K3sDisable       = events.EventK3sDisable
	K3sVMDown        = events.EventK3sVMDown
	K3sProbe         = events.EventK3sProbe
	K3sHealthy       = events.EventK3sHealthy
	K3sNodeReady     = events.EventK3sNodeReady
	K3sUnhealthy     = events.EventK3sUnhealthy
	K3sStart         = events.EventK3sStart
	K3sProgress      = events.EventK3sProgress
	K3sInstallFailed = events.EventK3sInstallFailed
)

// NewK3s builds the k3s machine in its initial state (notApplicable).
func NewK3s(app Appender) *Machine {
	return newMachine(events.MachineK3s, app)
}
