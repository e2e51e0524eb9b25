package fsm

import "github.com/rdd-project/rdd/internal/events"

// Engine machine events (events.Edges declares where they lead).
const (
	EngineConnect       = events.EventEngineConnect
	EngineConnected     = events.EventEngineConnected
	EngineConnectFailed = events.EventEngineConnectFailed
	EngineDisconnected  = events.EventEngineDisconnected
	EngineStop          = events.EventEngineStop
	EngineNotApplicable = events.EventEngineNotApplicable
)

// NewEngine builds the engine machine in its initial state (stopped).
func NewEngine(app Appender) *Machine {
	return newMachine(events.MachineEngine, app)
}
