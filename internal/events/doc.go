// Package events defines rdd's event log records and the projector that
// folds them into the App snapshot (design.md §2, §8).
//
// # Log format
//
// An Envelope is one log record: {"seq", "time", "type", "v", "data"}.
// Seq starts at 1 with no gaps; Time is set once, at append, in UTC; Type is
// one of KnownTypes; V is the payload schema version; Data is the payload
// object for the type (payloads.go). The export format (`rdd events -o
// json`) is one envelope per line. Types, machine names, states and
// condition reasons are persisted: never rename or reuse one.
//
// # Projector
//
// Projector.Apply is a pure, deterministic fold: no clock, no I/O, no
// randomness and no dependence on map order, so the same log always gives a
// byte-identical json.Marshal of the snapshot, live or replayed, from seq 1
// or from a checkpoint (MarshalCheckpoint / Restore). Apply is
// all-or-nothing: an event it rejects (wrong seq, generation out of order,
// unknown machine or state, undecodable payload) leaves it unchanged. A
// Projector is not safe for concurrent use: the daemon's single writer owns
// it and hands Snapshot copies to readers. Hot payloads are decoded without
// reflection (fastdecode.go), falling back to encoding/json for anything
// unusual, with identical results.
//
// # Conditions
//
// After every event the conditions are derived again from the machines
// (state, reason/message overrides of the last Transition, observed
// generation, facts) and the spec, in ConditionOrder:
//
//   - Created and Running from the vm machine (absent → neither);
//   - ContainerEngineReady from the engine machine, once it has made a
//     transition or an observation;
//   - KubernetesReady from the k3s and kubeconfig machines, once k3s has;
//   - Settled by behavior.md §4 (computeSettled), always at the current
//     generation.
//
// lastTransitionTime and lastTransitionSeq change only when a condition's
// status flips and come from the event that flipped it; reasonSeq moves
// whenever the reason changes. `rdd why` reads both.
//
// # What the controllers must record
//
// Settled compares observed generations with the App generation, so after
// every SpecChanged each machine whose condition gates Settled must append
// an Observed (or a Transition) carrying the new generation once it has
// evaluated it: the vm (Running; until then Settled is ApplyingTemplate),
// the engine (EngineStale otherwise), and with Kubernetes enabled both k3s
// and kubeconfig (KubernetesReady takes the lower of the two while the
// kubeconfig machine decides it). The vm reports the template hash it runs
// (spec.TemplateHash) in Facts.TemplateHash; k3s reports the API port in
// Facts.Port, which becomes status.kubernetesPort while Kubernetes is
// enabled. A Transition's Reason and Message override the default text of
// the condition its target state drives; the vm transition that completes
// creation carries the Created message instead (e.g. "Lima instance
// exists").
package events
