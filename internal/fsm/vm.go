package fsm

import "github.com/rdd-project/rdd/internal/events"

// VM machine events.
const (
	VMCreate       Event = "create"
	VMCreated      Event = "created"
	VMCreateFailed Event = "createFailed"
	VMStart        Event = "start"
	VMStarted      Event = "started"
	VMStartFailed  Event = "startFailed"
	VMStop         Event = "stop"
	VMStopped      Event = "stopped"
	VMStopFailed   Event = "stopFailed"
	// VMCrashed: the engine process died while it should run; the machine
	// goes straight back to starting (a crash is not a stop).
	VMCrashed   Event = "crashed"
	VMReconcile Event = "reconcile"
	VMDelete    Event = "delete"
	VMDeleted   Event = "deleted"
)

func vmStates() []string {
	return []string{
		string(events.VMAbsent), string(events.VMCreating), string(events.VMCreateFailed),
		string(events.VMStopped), string(events.VMStarting), string(events.VMRunning),
		string(events.VMStartFailed), string(events.VMStopping), string(events.VMStopFailed),
		string(events.VMReconciling), string(events.VMDeleting),
	}
}

func vmEdges() []Edge {
	s := func(v ...events.VMState) []string {
		out := make([]string, len(v))
		for i, x := range v {
			out[i] = string(x)
		}
		return out
	}
	return []Edge{
		{VMCreate, s(events.VMAbsent, events.VMCreateFailed), string(events.VMCreating)},
		{VMCreated, s(events.VMCreating), string(events.VMStopped)},
		{VMCreateFailed, s(events.VMCreating), string(events.VMCreateFailed)},
		{VMStart, s(events.VMStopped, events.VMStartFailed, events.VMStopFailed), string(events.VMStarting)},
		{VMStarted, s(events.VMStarting, events.VMReconciling), string(events.VMRunning)},
		{VMStartFailed, s(events.VMStarting), string(events.VMStartFailed)},
		{VMStop, s(events.VMRunning, events.VMStarting, events.VMStartFailed, events.VMStopFailed), string(events.VMStopping)},
		{VMStopped, s(events.VMStopping, events.VMReconciling), string(events.VMStopped)},
		{VMStopFailed, s(events.VMStopping), string(events.VMStopFailed)},
		{VMCrashed, s(events.VMRunning), string(events.VMStarting)},
		{VMReconcile, s(events.VMCreating, events.VMStarting, events.VMStopping, events.VMRunning, events.VMStopped, events.VMDeleting), string(events.VMReconciling)},
		{VMDelete, s(events.VMStopped, events.VMCreateFailed, events.VMStartFailed, events.VMStopFailed, events.VMReconciling), string(events.VMDeleting)},
		{VMDeleted, s(events.VMDeleting), string(events.VMAbsent)},
	}
}

// NewVM builds the vm machine in its initial state (absent).
func NewVM(app Appender) *Machine {
	return newMachine(events.MachineVM, vmStates(), vmEdges(), app)
}
