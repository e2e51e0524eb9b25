package fsm

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	lfsm "github.com/looplab/fsm"

	"github.com/rdd-project/rdd/internal/events"
)

// Event names a machine event; events.Edges declares the machines.
type Event = events.Event

// Edge is one allowed transition: on Event, every state in From moves to To.
type Edge = events.Edge

// Appender durably appends p to the event log and returns once it is
// committed (and folded into the snapshot), or with the append's error.
type Appender func(ctx context.Context, p events.Payload) error

// Change describes the decision behind a Fire: the generation the
// controller evaluated, what it wants the condition to say, and the facts
// it changes (those it leaves nil keep their value).
type Change struct {
	Generation int64
	Reason     string
	Message    string
	Facts      events.FactsPatch
}

// ErrInvalidTransition is wrapped when an event is not allowed in the current state.
var ErrInvalidTransition = errors.New("fsm: invalid transition")

// Machine is one typed state machine.
type Machine struct {
	name   events.Machine
	edges  []Edge
	dst    map[edgeKey]string
	states map[string]bool
	append Appender

	mu sync.Mutex // guards f's current state for Current readers
	f  *lfsm.FSM
}

type edgeKey struct {
	event Event
	from  string
}

// newMachine builds machine name from events.States and events.Edges. It
// panics on a malformed table: the table is a constant checked by tests,
// not user input.
func newMachine(name events.Machine, app Appender) *Machine {
	edges := events.Edges(name)
	m := &Machine{name: name, edges: edges, dst: map[edgeKey]string{}, states: map[string]bool{}, append: app}
	for _, s := range events.States(name) {
		m.states[s] = true
	}
	var descs []lfsm.EventDesc
	for _, e := range edges {
		if !m.states[e.To] {
			panic(fmt.Sprintf("fsm %s: edge %s goes to unknown state %q", name, e.Event, e.To))
		}
		for _, from := range e.From {
			if !m.states[from] {
				panic(fmt.Sprintf("fsm %s: edge %s leaves unknown state %q", name, e.Event, from))
			}
			k := edgeKey{e.Event, from}
			if _, dup := m.dst[k]; dup {
				panic(fmt.Sprintf("fsm %s: edge %s from %s declared twice", name, e.Event, from))
			}
			m.dst[k] = e.To
		}
		descs = append(descs, lfsm.EventDesc{Name: string(e.Event), Src: e.From, Dst: e.To})
	}
	m.f = lfsm.NewFSM(events.InitialState(name), descs, lfsm.Callbacks{})
	return m
}

// Name is the machine's name in the log.
func (m *Machine) Name() events.Machine { return m.name }

// Current is the state the machine is in.
func (m *Machine) Current() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.f.Current()
}

// Can reports whether ev is allowed in the current state.
func (m *Machine) Can(ev Event) bool {
	_, ok := m.dst[edgeKey{ev, m.Current()}]
	return ok
}

// Target returns where ev leads from the current state.
func (m *Machine) Target(ev Event) (string, bool) {
	to, ok := m.dst[edgeKey{ev, m.Current()}]
	return to, ok
}

// Fire appends the Transition for ev and then moves the machine. If ev is not
// allowed, nothing is appended; if the append fails, the machine stays.
func (m *Machine) Fire(ctx context.Context, ev Event, c Change) error {
	from := m.Current()
	to, ok := m.dst[edgeKey{ev, from}]
	if !ok {
		return fmt.Errorf("%w: %s machine cannot %s from %s", ErrInvalidTransition, m.name, ev, from)
	}
	if err := m.append(ctx, &events.Transition{
		Machine: m.name, Event: string(ev), From: from, To: to,
		Reason: c.Reason, Message: c.Message, Generation: c.Generation, Facts: c.Facts,
	}); err != nil {
		return fmt.Errorf("record %s transition %s→%s: %w", m.name, from, to, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.f.Event(ctx, string(ev)); err != nil {
		var noTransition lfsm.NoTransitionError
		if !errors.As(err, &noTransition) {
			// The table and looplab disagree: a programming error, but the
			// event is already durable, so follow the log.
			m.f.SetState(to)
		}
	}
	return nil
}

// Observe appends an Observed event: the machine evaluated generation and
// stays where it is. facts changes the facts it sets and keeps the others.
func (m *Machine) Observe(ctx context.Context, generation int64, facts events.FactsPatch) error {
	if err := m.append(ctx, &events.Observed{Machine: m.name, Generation: generation, Facts: facts}); err != nil {
		return fmt.Errorf("record %s observation of generation %d: %w", m.name, generation, err)
	}
	return nil
}

// Restore puts the machine in state without recording anything: used when
// the daemon rebuilds its machines from the replayed log.
func (m *Machine) Restore(state string) error {
	if !m.states[state] {
		return fmt.Errorf("fsm %s: cannot restore unknown state %q", m.name, state)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.f.SetState(state)
	return nil
}

// Mermaid renders the machine as a Mermaid state diagram (the golden files
// under testdata/fsm).
func (m *Machine) Mermaid() string {
	f := lfsm.NewFSM(events.InitialState(m.name), m.descs(), lfsm.Callbacks{})
	out, err := lfsm.VisualizeForMermaidWithGraphType(f, lfsm.StateDiagram)
	if err != nil {
		return ""
	}
	return out
}

func (m *Machine) descs() []lfsm.EventDesc {
	var d []lfsm.EventDesc
	for _, e := range m.edges {
		d = append(d, lfsm.EventDesc{Name: string(e.Event), Src: e.From, Dst: e.To})
	}
	return d
}

// States lists the machine's states, sorted.
func (m *Machine) States() []string {
	var s []string
	for k := range m.states {
		s = append(s, k)
	}
	sort.Strings(s)
	return s
}

// Events lists the machine's event names, in table order, without duplicates.
func (m *Machine) Events() []Event {
	seen := map[Event]bool{}
	var out []Event
	for _, e := range m.edges {
		if !seen[e.Event] {
			seen[e.Event] = true
			out = append(out, e.Event)
		}
	}
	return out
}

func (m *Machine) String() string {
	return fmt.Sprintf("%s(%s)", m.name, strings.TrimSpace(m.Current()))
}
