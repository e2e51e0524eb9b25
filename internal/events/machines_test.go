package events

import "testing"

// The table is a constant, but a typo in it would only show when a
// controller first takes the broken edge: check its shape here.
func TestMachineTable(t *testing.T) {
	t.Parallel()
	for _, m := range Machines {
		states := States(m)
		known := map[string]bool{}
		for _, s := range states {
			if known[s] {
				t.Errorf("%s: state %s declared twice", m, s)
			}
			known[s] = true
			if !ValidState(m, s) {
				t.Errorf("%s: ValidState(%s) = false", m, s)
			}
		}
		if !known[InitialState(m)] {
			t.Errorf("%s: initial state %q is not a state", m, InitialState(m))
		}
		entered := map[string]bool{InitialState(m): true}
		type key struct {
			ev   Event
			from string
		}
		seen := map[key]bool{}
		for _, e := range Edges(m) {
			if !known[e.To] {
				t.Errorf("%s: %s goes to unknown state %q", m, e.Event, e.To)
			}
			entered[e.To] = true
			for _, from := range e.From {
				if !known[from] {
					t.Errorf("%s: %s leaves unknown state %q", m, e.Event, from)
				}
				if seen[key{e.Event, from}] {
					t.Errorf("%s: %s from %s declared twice", m, e.Event, from)
				}
				seen[key{e.Event, from}] = true
			}
		}
		for _, s := range states {
			if !entered[s] {
				t.Errorf("%s: state %s is never entered", m, s)
			}
		}
	}
	if ValidState("nope", "absent") || States("nope") != nil || Edges("nope") != nil || InitialState("nope") != "" {
		t.Error("an unknown machine has states or edges")
	}
	// Callers get copies: changing one must not change the table.
	States(MachineVM)[0] = "x"
	Edges(MachineVM)[0].From[0] = "x"
	if States(MachineVM)[0] == "x" || Edges(MachineVM)[0].From[0] == "x" {
		t.Error("States or Edges hands out the table itself")
	}
}
