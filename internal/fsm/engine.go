package fsm

import "github.com/rdd-project/rdd/internal/events"

// Engine machine events.
const (
	EngineConnect       Event = "connect"
	EngineConnected     Event = "connected"
	EngineConnectFailed Event = "connectFailed"
	// EngineDisconnected: the event stream of a connected engine broke; the
	// watcher reconnects with a full sync.
	EngineDisconnected  Event = "disconnected"
	EngineStop          Event = "stop"
	EngineNotApplicable Event = "notApplicable"
)

func engineStates() []string {
	return []string{
		string(events.EngineStopped), string(events.EngineConnecting), string(events.EngineConnected),
		string(events.EngineConnectFailed), string(events.EngineNotApplicable),
	}
}

func engineEdges() []Edge {
	s := func(v ...events.EngineState) []string {
		out := make([]string, len(v))
		for i, x := range v {
			out[i] = string(x)
		}
		return out
	}
	return []Edge{
		{EngineConnect, s(events.EngineStopped, events.EngineConnectFailed), string(events.EngineConnecting)},
		{EngineConnected, s(events.EngineConnecting, events.EngineConnectFailed), string(events.EngineConnected)},
		{EngineConnectFailed, s(events.EngineConnecting, events.EngineConnected), string(events.EngineConnectFailed)},
		{EngineDisconnected, s(events.EngineConnected), string(events.EngineConnecting)},
		{EngineStop, s(events.EngineConnecting, events.EngineConnected, events.EngineConnectFailed, events.EngineNotApplicable), string(events.EngineStopped)},
		{EngineNotApplicable, s(events.EngineStopped), string(events.EngineNotApplicable)},
	}
}

// NewEngine builds the engine machine in its initial state (stopped).
func NewEngine(app Appender) *Machine {
	return newMachine(events.MachineEngine, engineStates(), engineEdges(), app)
}
