// Package fsm holds rdd's four state machines — vm, engine, k3s and
// kubeconfig — each a github.com/looplab/fsm machine wrapped so that callers
// only see typed states and events. The states, events and edges are the
// table in internal/events (events.States, events.Edges), which the
// projector reads too; this package only builds machines from it.
//
// Write-ahead contract: Machine.Fire appends a Transition event through the
// Appender first and moves the machine only when the append succeeded, so a
// failed append leaves the machine where it was and the log never lags the
// machine. Observe appends an Observed event without moving.
//
// The wrapper registers no looplab callbacks: effects start in the
// controllers (internal/daemon) after Fire returns, never inside the library's
// locks (looplab issue #36). A Machine is owned by one controller goroutine;
// its methods are not safe for concurrent use, except Current.
package fsm
