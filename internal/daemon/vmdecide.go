package daemon

import (
	"fmt"
	"time"

	"github.com/rdd-project/rdd/internal/events"
	"github.com/rdd-project/rdd/internal/fsm"
	"github.com/rdd-project/rdd/internal/vm"
)

// vmOp is the kind of a vm decision: record something, or perform one of
// the driver's effects and record its outcome.
type vmOp int

const (
	vmIdle      vmOp = iota // nothing to do until an input changes
	vmFire                  // record a transition
	vmObserve               // record that the generation was evaluated (and facts)
	vmCreate                // drv.Create, then created or createFailed
	vmStart                 // drv.Start, then started or startFailed
	vmStop                  // drv.Stop, then stopped or stopFailed
	vmReconcile             // drv.Inspect and settle on what it shows
	vmDelete                // drv.Delete, then deleted
)

var vmOpNames = [...]string{"idle", "fire", "observe", "create", "start", "stop", "reconcile", "delete"}

func (o vmOp) String() string { return vmOpNames[o] }

// vmAction is one decision of the vm controller.
type vmAction struct {
	op vmOp
	// event is the transition to record (vmFire).
	event fsm.Event
	// change is the transition's or observation's content; for effects, its
	// Generation is the generation to claim and Message the success text.
	change fsm.Change
	// running is whether the machine should run (vmReconcile).
	running bool
}

// vmInput is everything a vm decision depends on.
type vmInput struct {
	state events.VMState
	// exists is false once the App is deleted (or before it is created).
	exists bool
	// running is the spec's running.
	running bool
	// gen is the App generation; observed the machine's observed generation.
	gen, observed int64
	facts         events.Facts
	// hash identifies the desired configuration; restartKey the part of it
	// whose change needs a restart of this driver's machine.
	hash, restartKey string
	noun             string
	now              time.Time
	// retryAt is when a failed effect may be tried again (zero: at once).
	retryAt time.Time
	// booting is true while a boot that the driver's Start began goes on
	// (vm.Info.Booted).
	booting bool
}

func (in vmInput) retryDue() bool {
	return in.retryAt.IsZero() || !in.now.Before(in.retryAt)
}

func fire(ev fsm.Event, c fsm.Change) vmAction { return vmAction{op: vmFire, event: ev, change: c} }

// configured is the patch that records the desired configuration as applied.
func (in vmInput) configured() events.FactsPatch {
	return events.FactsPatch{TemplateHash: events.Str(in.hash), RestartKey: events.Str(in.restartKey)}
}

// decideVM is the vm controller's decision: pure, so every state × input
// class is a table row (vmdecide_test.go).
func decideVM(in vmInput) vmAction {
	if !in.exists {
		return decideVMWithoutApp(in)
	}
	if rule, ok := vmRules[in.state]; ok {
		return rule(in)
	}
	return vmAction{op: vmIdle}
}

var idle = vmAction{op: vmIdle}

// vmRules decide for an App that exists, one rule per state.
var vmRules = map[events.VMState]func(vmInput) vmAction{
	events.VMAbsent: func(in vmInput) vmAction {
		return fire(fsm.VMCreate, fsm.Change{Generation: in.gen})
	},
	events.VMCreateFailed: func(in vmInput) vmAction {
		if !in.retryDue() {
			return idle
		}
		return fire(fsm.VMCreate, fsm.Change{Generation: in.gen})
	},
	events.VMCreating: func(in vmInput) vmAction {
		return vmAction{op: vmCreate, change: fsm.Change{Generation: in.gen, Facts: in.configured()}}
	},
	events.VMStopped: func(in vmInput) vmAction {
		switch {
		case in.running:
			return in.start()
		case in.facts.TemplateHash != in.hash || in.facts.RestartKey != in.restartKey || in.observed < in.gen:
			// A stopped machine takes a new configuration at once, without a boot.
			return vmAction{op: vmObserve, change: fsm.Change{Generation: in.gen, Facts: in.configured()}}
		}
		return idle
	},
	events.VMStarting: func(in vmInput) vmAction {
		if in.booting {
			// A VM boots for minutes: a stop or another configuration
			// does not wait for the boot to end.
			if !in.running || in.facts.TemplateHash != in.hash {
				return fire(fsm.VMStop, fsm.Change{Generation: in.gen, Message: "Stopping while the machine boots"})
			}
			return idle
		}
		if !in.retryDue() { // a crash-loop delay runs
			return idle
		}
		return vmAction{op: vmStart, change: fsm.Change{Generation: in.gen, Facts: in.configured()}}
	},
	events.VMRunning: decideRunning,
	events.VMStopping: func(in vmInput) vmAction {
		msg := in.noun + " stopped successfully"
		if in.running && in.facts.TemplateHash != in.hash {
			msg = "Stopped for restart"
		}
		return vmAction{op: vmStop, change: fsm.Change{Generation: in.gen, Message: msg}}
	},
	events.VMStartFailed: func(in vmInput) vmAction {
		switch {
		case !in.running:
			return fire(fsm.VMStop, fsm.Change{Generation: in.gen})
		case in.observed < in.gen || in.retryDue():
			return in.start()
		}
		return idle
	},
	events.VMStopFailed: func(in vmInput) vmAction {
		switch {
		case in.observed >= in.gen && !in.retryDue():
			return idle
		case in.running:
			return in.start()
		}
		return fire(fsm.VMStop, fsm.Change{Generation: in.gen})
	},
	events.VMReconciling: func(in vmInput) vmAction {
		if !in.retryDue() {
			return idle
		}
		return vmAction{op: vmReconcile, running: in.running, change: fsm.Change{Generation: in.gen}}
	},
	events.VMDeleting: func(in vmInput) vmAction {
		// An App created again while its machine was being deleted waits
		// for the delete to finish, then starts from absent.
		if !in.retryDue() {
			return idle
		}
		return vmAction{op: vmDelete}
	},
}

func (in vmInput) start() vmAction {
	return fire(fsm.VMStart, fsm.Change{Generation: in.gen, Message: in.noun + " is starting", Facts: in.configured()})
}

func decideRunning(in vmInput) vmAction {
	switch {
	case !in.running:
		return fire(fsm.VMStop, fsm.Change{Generation: in.gen, Message: in.noun + " is stopping"})
	case in.facts.TemplateHash != in.hash && in.facts.RestartKey != "" && in.facts.RestartKey == in.restartKey:
		// The change does not concern what this driver runs (e.g. the
		// host engine when Kubernetes is toggled): applied without a restart.
		return vmAction{op: vmObserve, change: fsm.Change{Generation: in.gen, Facts: events.FactsPatch{TemplateHash: events.Str(in.hash)}}}
	case in.facts.TemplateHash != in.hash:
		// Keep the old hash until the new start, so Settled says
		// ApplyingTemplate throughout (F12).
		return fire(fsm.VMStop, fsm.Change{Generation: in.gen, Message: "Stopping to apply the configuration change"})
	case in.observed < in.gen:
		return vmAction{op: vmObserve, change: fsm.Change{Generation: in.gen}}
	}
	return idle
}

// decideVMWithoutApp winds the machine down to absent after the App is
// deleted: stop, then delete (F15: full cleanup).
func decideVMWithoutApp(in vmInput) vmAction {
	g := in.observed
	switch in.state {
	case events.VMAbsent:
		return idle
	case events.VMRunning, events.VMStarting:
		return fire(fsm.VMStop, fsm.Change{Generation: g, Message: "Stopping before the App is deleted"})
	case events.VMStopping:
		return vmAction{op: vmStop, change: fsm.Change{Generation: g, Message: in.noun + " stopped successfully"}}
	case events.VMCreating:
		// A create the App no longer wants: find out what it left, then delete.
		return fire(fsm.VMReconcile, fsm.Change{Generation: g, Message: "The App was deleted while its machine was being created"})
	}
	if !in.retryDue() {
		return idle
	}
	switch in.state {
	case events.VMReconciling:
		return vmAction{op: vmReconcile, change: fsm.Change{Generation: g}}
	case events.VMDeleting:
		return vmAction{op: vmDelete}
	}
	return fire(fsm.VMDelete, fsm.Change{Generation: g})
}

// Crash-loop policy: a process that dies within vmStableAfter of starting is
// crash looping; the next start waits crashDelayMin, doubling up to retryMax.
const (
	vmStableAfter = 10 * time.Second
	crashDelayMin = time.Second
)

// decideCrash is the decision when the running engine process exits on its
// own after running for up: the message to record and the delay before the
// next start (0: at once). prev is the delay chosen at the previous crash.
func decideCrash(pid int, up, prev time.Duration) (msg string, delay time.Duration) {
	if up >= vmStableAfter {
		return fmt.Sprintf("the engine process (pid %d) exited unexpectedly; starting it again", pid), 0
	}
	delay = crashDelayMin
	if prev > 0 {
		delay = min(2*prev, retryMax)
	}
	return fmt.Sprintf("the engine process (pid %d) exited %s after it started; starting it again in %s", pid, up.Round(time.Millisecond), delay), delay
}

// vmRecovery is what a restarted daemon records and does about the vm
// machine once it has looked at the driver (design.md principle 6).
type vmRecovery struct {
	message string
	// event is fired after the Recovered record ("" for none); adopt is
	// true when the running process is re-adopted as it is.
	event fsm.Event
	adopt bool
}

// decideRecovery compares what the log believed with what the driver found.
// An empty message means the driver's own explanation is recorded.
func decideRecovery(believed events.VMState, found vm.Phase, pid, foundPID int) vmRecovery {
	const inFlight = "an operation was in flight when the daemon stopped; reconciling"
	switch believed {
	case events.VMAbsent:
		return vmRecovery{}
	case events.VMRunning:
		if found == vm.PhaseRunning {
			return vmRecovery{message: fmt.Sprintf("re-adopted the running engine process (pid %d)", foundPID), adopt: true}
		}
		return vmRecovery{message: fmt.Sprintf("the engine process (pid %d) is gone; it will be started again", pid), event: fsm.VMCrashed}
	case events.VMStopped:
		if found == vm.PhaseRunning {
			return vmRecovery{message: inFlight, event: fsm.VMReconcile}
		}
		return vmRecovery{}
	case events.VMCreateFailed, events.VMStartFailed, events.VMStopFailed:
		// The next start adopts a process that runs; a stop stops it.
		return vmRecovery{}
	case events.VMReconciling:
		return vmRecovery{message: inFlight}
	}
	return vmRecovery{message: inFlight, event: fsm.VMReconcile}
}
