package events

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"pgregory.net/rapid"
)

// factNames are the JSON names of Facts' fields, which FactsPatch declares
// in the same order; the tests below walk both by index.
var factNames = []string{"pid", "restartCount", "port", "templateHash", "restartKey", "containers", "images", "volumes", "ambiguousStreak"}

func TestFactsPatchFieldsMatchFacts(t *testing.T) {
	t.Parallel()
	ft, pt := reflect.TypeFor[Facts](), reflect.TypeFor[FactsPatch]()
	if ft.NumField() != len(factNames) || pt.NumField() != len(factNames) {
		t.Fatalf("Facts has %d fields, FactsPatch %d, factNames %d", ft.NumField(), pt.NumField(), len(factNames))
	}
	for i, name := range factNames {
		f, p := ft.Field(i), pt.Field(i)
		if f.Name != p.Name || p.Type != reflect.PointerTo(f.Type) ||
			f.Tag.Get("json") != name+",omitempty" || p.Tag.Get("json") != name+",omitempty" {
			t.Errorf("field %d: Facts.%s %s %q, FactsPatch.%s %s %q", i, f.Name, f.Type, f.Tag, p.Name, p.Type, p.Tag)
		}
	}
}

// setFact sets fact i of p to the value v (an int or a string by field type).
func setFact(p *FactsPatch, i int, n int) {
	fv := reflect.ValueOf(p).Elem().Field(i)
	if fv.Type().Elem().Kind() == reflect.String {
		s := ""
		if n != 0 {
			s = strings.Repeat("h", n)
		}
		fv.Set(reflect.ValueOf(&s))
		return
	}
	fv.Set(reflect.ValueOf(&n))
}

func factValue(f Facts, i int) any { return reflect.ValueOf(f).Field(i).Interface() }

func TestFactsPatchApply(t *testing.T) {
	t.Parallel()
	base := Facts{PID: 1, RestartCount: 2, Port: 3, TemplateHash: "h", RestartKey: "k", Containers: 4, Images: 5, Volumes: 6, AmbiguousStreak: 7}
	if got := (FactsPatch{}).Apply(base); got != base {
		t.Errorf("empty patch changed %+v to %+v", base, got)
	}
	if !(FactsPatch{}).IsZero() || (FactsPatch{PID: Int(0)}).IsZero() {
		t.Error("IsZero must report only the patch with every field nil")
	}
	if got := ReplaceFacts(Facts{}).Apply(base); got != (Facts{}) {
		t.Errorf("ReplaceFacts(zero) left %+v", got)
	}
	for i := range factNames {
		var p FactsPatch
		setFact(&p, i, 0)
		got := p.Apply(base)
		for j := range factNames {
			want := factValue(base, j)
			if j == i {
				want = reflect.Zero(reflect.TypeFor[Facts]().Field(j).Type).Interface()
			}
			if factValue(got, j) != want {
				t.Errorf("clearing %s: %s = %v, want %v", factNames[i], factNames[j], factValue(got, j), want)
			}
		}
	}
}

// A clear must reach the log: a non-nil pointer to zero is written, an
// empty patch is not written at all.
func TestFactsPatchJSON(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		pl   Payload
		want string
	}{
		{&Transition{Machine: MachineVM, Event: "stop", From: "running", To: "stopping", Generation: 2, Facts: FactsPatch{PID: Int(0), TemplateHash: Str("")}},
			`{"machine":"vm","event":"stop","from":"running","to":"stopping","generation":2,"set":{"pid":0,"templateHash":""}}`},
		{&Transition{Machine: MachineVM, Event: "stop", From: "running", To: "stopping", Generation: 2},
			`{"machine":"vm","event":"stop","from":"running","to":"stopping","generation":2}`},
		{&Observed{Machine: MachineK3s, Generation: 3, Facts: FactsPatch{Port: Int(7443), AmbiguousStreak: Int(0)}},
			`{"machine":"k3s","generation":3,"set":{"port":7443,"ambiguousStreak":0}}`},
		{&Observed{Machine: MachineK3s, Generation: 3}, `{"machine":"k3s","generation":3}`},
	} {
		e, err := New(t0, tc.pl)
		if err != nil {
			t.Fatal(err)
		}
		if string(e.Data) != tc.want {
			t.Errorf("encoded %s\nwant    %s", e.Data, tc.want)
		}
		back, err := Decode(e)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(back, tc.pl) {
			t.Errorf("round trip of %s gave %+v", e.Data, back)
		}
	}
}

// Logs written before patches carry the whole facts under "facts": a
// Transition replaces them all, an Observed replaces them when the key is
// there. Both decoders must say so.
func TestLegacyFactsReplace(t *testing.T) {
	t.Parallel()
	const (
		setAll  = `{"machine":"vm","event":"e","from":"absent","to":"creating","generation":1,"set":{"pid":9,"restartCount":3,"port":7443,"templateHash":"old","restartKey":"rk","containers":1,"images":2,"volumes":3,"ambiguousStreak":4}}`
		legTr   = `{"machine":"vm","event":"e","from":"creating","to":"stopped","generation":1,"facts":{"templateHash":"new"}}`
		legTr0  = `{"machine":"vm","event":"e","from":"stopped","to":"starting","generation":1,"facts":{}}`
		legObs  = `{"machine":"vm","generation":1,"facts":{"restartCount":5}}`
		bareObs = `{"machine":"vm","generation":1}`
	)
	steps := []struct {
		typ  Type
		data string
		want Facts
	}{
		{TypeTransition, setAll, Facts{PID: 9, RestartCount: 3, Port: 7443, TemplateHash: "old", RestartKey: "rk", Containers: 1, Images: 2, Volumes: 3, AmbiguousStreak: 4}},
		{TypeTransition, legTr, Facts{TemplateHash: "new"}},
		{TypeObserved, bareObs, Facts{TemplateHash: "new"}},
		{TypeObserved, legObs, Facts{RestartCount: 5}},
		{TypeTransition, legTr0, Facts{}},
	}
	for _, jsonOnly := range []bool{false, true} {
		p := NewProjector()
		p.jsonOnly = jsonOnly
		for i, s := range steps {
			e := Envelope{Seq: uint64(i) + 1, Time: t0, Type: s.typ, V: CurrentVersion, Data: json.RawMessage(s.data)}
			if err := p.Apply(e); err != nil {
				t.Fatal(err)
			}
			snap := p.Snapshot()
			if got := snap.Machine(MachineVM).Facts; got != s.want {
				t.Errorf("jsonOnly=%v, after %s: facts %+v, want %+v", jsonOnly, s.data, got, s.want)
			}
		}
	}
}

// TestUnmentionedFactsUnchanged is the property the patches exist for: a
// fact that no Transition or Observed of its machine mentions keeps its
// value, whatever else those events and the other machines do.
func TestUnmentionedFactsUnchanged(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(t *rapid.T) {
		m := rapid.SampledFrom(Machines).Draw(t, "machine")
		fact := rapid.IntRange(0, len(factNames)-1).Draw(t, "fact")
		p := NewProjector()
		var envs []Envelope
		var gen int64
		add := func(pl Payload) {
			e, err := New(t0, pl)
			if err != nil {
				t.Fatal(err)
			}
			e.Seq = uint64(len(envs)) + 1
			if err := p.Apply(e); err != nil {
				t.Fatal(err)
			}
			envs = append(envs, e)
		}
		respec := func(running bool) {
			gen++
			add(&SpecChanged{Generation: gen, Spec: k8sSpec(running, "1.34.6"), Changed: []string{"running"}})
		}
		respec(true)
		var first FactsPatch
		setFact(&first, fact, rapid.IntRange(1, 9).Draw(t, "value"))
		add(&Observed{Machine: m, Generation: gen, Facts: first})
		facts := func(p *Projector) Facts {
			s := p.Snapshot()
			return s.Machine(m).Facts
		}
		want := factValue(facts(p), fact)

		drawPatch := func(mentionable bool) FactsPatch {
			var fp FactsPatch
			for i := range factNames {
				if (mentionable || i != fact) && rapid.Bool().Draw(t, "mention") {
					setFact(&fp, i, rapid.IntRange(0, 2).Draw(t, "v"))
				}
			}
			return fp
		}
		n := rapid.IntRange(1, 60).Draw(t, "events")
		for range n {
			other := rapid.SampledFrom(Machines).Draw(t, "target")
			patch := drawPatch(other != m)
			s := p.Snapshot()
			from := s.Machine(other).State
			if steps := plausible[other][from]; len(steps) == 0 || rapid.Bool().Draw(t, "observe") {
				add(&Observed{Machine: other, Generation: gen, Facts: patch})
			} else {
				st := rapid.SampledFrom(steps).Draw(t, "step")
				add(&Transition{Machine: other, Event: string(st.event), From: from, To: st.to, Generation: gen, Facts: patch})
			}
			if rapid.IntRange(0, 9).Draw(t, "respec") == 0 {
				respec(rapid.Bool().Draw(t, "running"))
			}
		}
		if got := factValue(facts(p), fact); got != want {
			t.Fatalf("%s %s = %v after events that never set it, want %v", m, factNames[fact], got, want)
		}
		// The exported log replays to the same facts, through encoding/json.
		ref := NewProjector()
		ref.jsonOnly = true
		for _, e := range envs {
			line, err := Marshal(e)
			if err != nil {
				t.Fatal(err)
			}
			back, err := Unmarshal(line)
			if err != nil {
				t.Fatal(err)
			}
			if err := ref.Apply(back); err != nil {
				t.Fatal(err)
			}
		}
		if got := factValue(facts(ref), fact); got != want {
			t.Fatalf("replayed %s %s = %v, want %v", m, factNames[fact], got, want)
		}
	})
}
