package fsm

import "github.com/rdd-project/rdd/internal/events"

// VM machine events (events.Edges declares where they lead).
const (
	VMCreate       = events.EventVMCreate
	VMCreated      = events.EventVMCreated
	VMCreateFailed = events.EventVMCreateFailed
	VMStart        = events.EventVMStart
	VMStarted      = events.EventVMStarted
	VMStartFailed  = events.EventVMStartFailed
	VMStop         = events.EventVMStop
	VMStopped      = events.EventVMStopped
	VMStopFailed   = events.EventVMStopFailed
	VMCrashed      = events.EventVMCrashed
	VMReconcile    = events.EventVMReconcile
	VMDelete       = events.EventVMDelete
	VMDeleted      = events.EventVMDeleted
)

// NewVM builds the vm machine in its initial state (absent).
func NewVM(app Appender) *Machine {
	return newMachine(events.MachineVM, app)
}
