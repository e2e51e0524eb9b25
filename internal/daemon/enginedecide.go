package daemon

import (
	"github.com/rdd-project/rdd/internal/engine"
	"github.com/rdd-project/rdd/internal/events"
	"github.com/rdd-project/rdd/internal/fsm"
)

// engineOp is the kind of an engine decision.
type engineOp int

const (
	engineIdle    engineOp = iota
	engineFire             // record a transition
	engineObserve          // record that the generation was evaluated (and facts)
	// engineWatch starts the Docker watcher, then records connecting.
	engineWatch
	// engineUnwatch stops the watcher and removes the Docker context, then
	// records the transition in event, if any.
	engineUnwatch
	// engineActivate publishes the Docker context (once per watcher, §7.4).
	engineActivate
)

var engineOpNames = [...]string{"idle", "fire", "observe", "watch", "unwatch", "activate"}

func (o engineOp) String() string { return engineOpNames[o] }

type engineAction struct {
	op     engineOp
	event  fsm.Event // engineFire; engineWatch and engineUnwatch when non-empty
	change fsm.Change
}

// engineInput is everything an engine decision depends on.
type engineInput struct {
	state events.EngineState
	// exists: an App with a spec; vmRunning: the vm machine is running;
	// moby: the spec's engine is moby (the one rdd watches).
	exists, vmRunning, moby bool
	gen, observed           int64
	watching                bool
	// activated: the Docker context was published for the current watcher.
	activated bool
}

// decideEngine is the engine controller's decision (behavior.md §7.1).
func decideEngine(in engineInput) engineAction {
	g := fsm.Change{Generation: in.gen}
	// A stopped engine has no inventory to count.
	stop := fsm.Change{Generation: in.gen, Facts: events.FactsPatch{Containers: events.Int(0), Images: events.Int(0), Volumes: events.Int(0)}}
	switch {
	case in.exists && in.vmRunning && !in.moby:
		if in.watching {
			// A backend switch removes the context (§7.4).
			return engineAction{op: engineUnwatch}
		}
		switch in.state {
		case events.EngineStopped:
			return engineAction{op: engineFire, event: fsm.EngineNotApplicable, change: g}
		case events.EngineNotApplicable:
		default:
			return engineAction{op: engineFire, event: fsm.EngineStop, change: stop}
		}
	case in.exists && in.vmRunning:
		if !in.watching {
			a := engineAction{op: engineWatch, change: fsm.Change{Generation: in.gen}}
			switch in.state {
			case events.EngineStopped, events.EngineConnectFailed:
				a.event = fsm.EngineConnect
			case events.EngineNotApplicable:
				// Through stopped first: connect is not an edge from here.
				return engineAction{op: engineFire, event: fsm.EngineStop, change: stop}
			}
			return a
		}
		if in.state == events.EngineConnected && !in.activated {
			return engineAction{op: engineActivate}
		}
	default:
		if in.watching || in.state != events.EngineStopped {
			a := engineAction{op: engineUnwatch}
			if in.state != events.EngineStopped {
				a.event, a.change = fsm.EngineStop, stop
			}
			return a
		}
	}
	if in.exists && in.observed < in.gen {
		return engineAction{op: engineObserve, change: g}
	}
	return engineAction{op: engineIdle}
}

// decidePhase is the decision on a report of the Docker watcher: what to
// record for it (behavior.md §7.2). Counts become facts.
func decidePhase(state events.EngineState, gen int64, ph engine.Phase) engineAction {
	facts := events.FactsPatch{Containers: events.Int(ph.Counts.Containers), Images: events.Int(ph.Counts.Images), Volumes: events.Int(ph.Counts.Volumes)}
	switch ph.State {
	case engine.PhaseConnected:
		if state == events.EngineConnected {
			return engineAction{op: engineObserve, change: fsm.Change{Generation: gen, Facts: facts}}
		}
		if state == events.EngineConnecting || state == events.EngineConnectFailed {
			return engineAction{op: engineFire, event: fsm.EngineConnected, change: fsm.Change{Generation: gen, Message: "Container engine synced", Facts: facts}}
		}
	case engine.PhaseConnectFailed:
		if state == events.EngineConnecting || state == events.EngineConnected {
			return engineAction{op: engineFire, event: fsm.EngineConnectFailed, change: fsm.Change{Generation: gen, Message: phaseMessage(ph)}}
		}
	case engine.PhaseDisconnected:
		if state == events.EngineConnected {
			return engineAction{op: engineFire, event: fsm.EngineDisconnected, change: fsm.Change{Generation: gen, Message: phaseMessage(ph)}}
		}
	}
	return engineAction{op: engineIdle}
}

func phaseMessage(ph engine.Phase) string {
	if ph.Err != nil {
		return ph.Err.Error()
	}
	return string(ph.State)
}
