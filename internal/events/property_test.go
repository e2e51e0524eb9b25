package events

import (
	"bytes"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"pgregory.net/rapid"

	"github.com/rdd-project/rdd/internal/spec"
)

// step is one move a controller may record from a state.
type step struct {
	event Event
	to    string
}

// plausible lists, per machine and state, the moves a controller may
// record: the edges of the machine table, plus a failure re-reported in
// place (the fold accepts a Transition whatever its edge, as logs written
// with an older table must still replay).
var plausible = func() map[Machine]map[string][]step {
	reReported := map[Machine][]string{
		MachineVM:         {string(VMCreateFailed), string(VMStartFailed)},
		MachineKubeconfig: {string(KubeconfigMergeFailed)},
	}
	out := map[Machine]map[string][]step{}
	for _, m := range Machines {
		out[m] = map[string][]step{}
		for _, e := range Edges(m) {
			for _, from := range e.From {
				out[m][from] = append(out[m][from], step{e.Event, e.To})
			}
		}
		for _, s := range reReported[m] {
			out[m][s] = append(out[m][s], step{Event(s), s})
		}
	}
	return out
}()

var longMessage = strings.Repeat("é", MaxMessageRunes+5)

// genLog draws a valid, plausible event log.
func genLog(t *rapid.T) []Envelope {
	p := NewProjector()
	n := rapid.IntRange(1, 150).Draw(t, "events")
	envs := make([]Envelope, 0, n)
	at := t0
	for len(envs) < n {
		s := p.Snapshot()
		curGen := s.Generation
		drawGen := func() int64 {
			if rapid.IntRange(0, 7).Draw(t, "staleGen") > 0 {
				return curGen
			}
			return rapid.Int64Range(0, curGen).Draw(t, "gen")
		}
		drawFacts := func() Facts {
			hash := ""
			switch rapid.IntRange(0, 9).Draw(t, "hashKind") {
			case 0:
			case 1:
				hash = "stale-template"
			default:
				if s.Spec != nil {
					hash = s.Spec.TemplateHash(s.Status.KubernetesPort)
				}
			}
			return Facts{
				Port:         rapid.SampledFrom([]int{0, 7443, 7444}).Draw(t, "port"),
				TemplateHash: hash,
				PID:          rapid.IntRange(0, 3).Draw(t, "pid"),
			}
		}
		// Half the patches set every fact, as a legacy log's replacement did;
		// the others set some and leave the rest.
		drawPatch := func() FactsPatch {
			f := drawFacts()
			if rapid.Bool().Draw(t, "wholeFacts") {
				return ReplaceFacts(f)
			}
			var p FactsPatch
			if rapid.Bool().Draw(t, "setPort") {
				p.Port = Int(f.Port)
			}
			if rapid.Bool().Draw(t, "setHash") {
				p.TemplateHash = Str(f.TemplateHash)
			}
			if rapid.Bool().Draw(t, "setPID") {
				p.PID = Int(f.PID)
			}
			return p
		}
		var pl Payload
		switch k := rapid.IntRange(0, 99).Draw(t, "kind"); {
		case k < 12:
			next := int64(1)
			if s.Exists {
				next = curGen + 1
			}
			sp := spec.Default()
			sp.Running = rapid.Bool().Draw(t, "running")
			sp.ContainerEngine.Name = rapid.SampledFrom([]spec.EngineName{spec.EngineMoby, spec.EngineContainerd}).Draw(t, "engine")
			if rapid.Bool().Draw(t, "k8s") {
				sp.Kubernetes = spec.Kubernetes{Enabled: true, Version: rapid.SampledFrom([]string{"1.34.6", "1.33.10"}).Draw(t, "version")}
			}
			pl = &SpecChanged{Generation: next, Spec: sp, Changed: []string{"running"}}
		case k < 60:
			m := rapid.SampledFrom(Machines).Draw(t, "machine")
			from := s.Machine(m).State
			st := rapid.SampledFrom(plausible[m][from]).Draw(t, "step")
			tr := &Transition{Machine: m, Event: string(st.event), From: from, To: st.to, Generation: drawGen(), Facts: drawPatch()}
			switch rapid.IntRange(0, 9).Draw(t, "override") {
			case 0:
				tr.Message = rapid.SampledFrom([]string{"boom", "Stopped for restart", "Lima instance exists", "", longMessage}).Draw(t, "message")
			case 1:
				tr.Reason = rapid.SampledFrom([]string{"CustomFailed", "Custom"}).Draw(t, "reason")
				tr.Message = "custom"
			}
			pl = tr
		case k < 85:
			ob := &Observed{Machine: rapid.SampledFrom(Machines).Draw(t, "machine"), Generation: drawGen()}
			if rapid.IntRange(0, 2).Draw(t, "withFacts") == 0 {
				ob.Facts = drawPatch()
			}
			pl = ob
		case k < 90:
			pl = &DaemonStarted{Version: "v1", PID: rapid.IntRange(1, 100).Draw(t, "pid")}
		case k < 93:
			pl = &DaemonStopping{Reason: "signal"}
		case k < 96:
			pl = &Recovered{Machine: rapid.SampledFrom(Machines).Draw(t, "machine"), Believed: "running", Found: "stopped"}
		default:
			pl = &AppDeleted{}
		}
		// Times may repeat: the projector must not depend on them.
		at = at.Add(time.Duration(rapid.IntRange(0, 3000).Draw(t, "ms")) * time.Millisecond)
		e, err := New(at, pl)
		if err != nil {
			t.Fatal(err)
		}
		e.Seq = uint64(len(envs)) + 1
		if err := p.Apply(e); err != nil {
			t.Fatalf("generator drew an invalid event: %v", err)
		}
		envs = append(envs, e)
	}
	return envs
}

// checkInvariants checks one folded event against the previous snapshot.
func checkInvariants(t *rapid.T, prev, cur Snapshot, e Envelope) {
	if cur.Seq != e.Seq {
		t.Fatalf("seq %d after event %d", cur.Seq, e.Seq)
	}
	if !cur.Exists {
		if cur.Spec != nil || len(cur.Status.Conditions) != 0 || cur.Generation != 0 || cur.Status.KubernetesPort != 0 {
			t.Fatalf("seq %d: absent App with data: %+v", e.Seq, cur)
		}
		return
	}
	if !cur.Spec.Kubernetes.Enabled && cur.Status.KubernetesPort != 0 {
		t.Fatalf("seq %d: port %d with Kubernetes disabled", e.Seq, cur.Status.KubernetesPort)
	}
	last := -1
	for _, c := range cur.Status.Conditions {
		i := conditionSlot(c.Type)
		if i >= numSlots || i <= last {
			t.Fatalf("seq %d: conditions out of ConditionOrder: %v", e.Seq, cur.Status.Conditions)
		}
		last = i
		if utf8.RuneCountInString(c.Message) > MaxMessageRunes {
			t.Fatalf("seq %d: %s message has %d runes", e.Seq, c.Type, utf8.RuneCountInString(c.Message))
		}
		if c.ReasonSeq < c.LastTransitionSeq || c.ReasonSeq > e.Seq {
			t.Fatalf("seq %d: %s reasonSeq %d, lastTransitionSeq %d", e.Seq, c.Type, c.ReasonSeq, c.LastTransitionSeq)
		}
		old, had := prev.Condition(c.Type)
		switch {
		case !had || old.Status != c.Status:
			if c.LastTransitionSeq != e.Seq || !c.LastTransitionTime.Equal(e.Time) {
				t.Fatalf("seq %d: %s flipped %s→%s without a new transition time: %+v", e.Seq, c.Type, old.Status, c.Status, c)
			}
		case !old.LastTransitionTime.Equal(c.LastTransitionTime) || old.LastTransitionSeq != c.LastTransitionSeq:
			t.Fatalf("seq %d: %s kept status %s but its transition moved: %+v → %+v", e.Seq, c.Type, c.Status, old, c)
		}
	}
	settled, ok := cur.Condition(CondSettled)
	if !ok || settled.ObservedGeneration != cur.Generation {
		t.Fatalf("seq %d: Settled %+v at generation %d", e.Seq, settled, cur.Generation)
	}
	if settled.Status == StatusTrue {
		for _, c := range cur.Status.Conditions {
			if c.Type == CondRunning && c.ObservedGeneration < cur.Generation {
				t.Fatalf("seq %d: Settled with a stale Running %+v", e.Seq, c)
			}
		}
	}
}

// TestProjectorProperties: for random plausible logs, (1) the live fold and
// a replay of the exported (JSON round-tripped) log print the same bytes,
// (2) restoring a checkpoint taken anywhere and folding the rest prints the
// same bytes, and (3) the invariants of checkInvariants hold after every event.
func TestProjectorProperties(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(t *rapid.T) {
		envs := genLog(t)

		live := NewProjector()
		prev := live.Snapshot()
		var wantJSON []byte
		for _, e := range envs {
			if err := live.Apply(e); err != nil {
				t.Fatal(err)
			}
			cur := live.Snapshot()
			checkInvariants(t, prev, cur, e)
			prev = cur
		}
		wantJSON = mustJSON(t, prev)

		// (1) Export and re-import the log, then replay it.
		exported := make([]Envelope, len(envs))
		for i, e := range envs {
			line, err := Marshal(e)
			if err != nil {
				t.Fatal(err)
			}
			if exported[i], err = Unmarshal(line); err != nil {
				t.Fatal(err)
			}
		}
		// The replay takes the slow paths (encoding/json, derivation after
		// every event), so it also checks the fast decoder and the skipping
		// of no-op observations against the reference behaviour.
		ref := NewProjector()
		ref.jsonOnly, ref.alwaysDerive = true, true
		for _, e := range exported {
			if err := ref.Apply(e); err != nil {
				t.Fatal(err)
			}
		}
		if got := mustJSON(t, ref.Snapshot()); !bytes.Equal(got, wantJSON) {
			t.Fatalf("replay differs:\nlive   %s\nreplay %s", wantJSON, got)
		}

		// (2) Checkpoint at a random point, restore, fold the rest.
		k := rapid.IntRange(0, len(envs)).Draw(t, "checkpointAt")
		head := NewProjector()
		for _, e := range exported[:k] {
			if err := head.Apply(e); err != nil {
				t.Fatal(err)
			}
		}
		cp, err := head.Checkpoint()
		if err != nil {
			t.Fatal(err)
		}
		s, err := UnmarshalCheckpoint(cp)
		if err != nil {
			t.Fatal(err)
		}
		tail := NewProjector()
		if err := tail.Restore(s); err != nil {
			t.Fatal(err)
		}
		for _, e := range exported[k:] {
			if err := tail.Apply(e); err != nil {
				t.Fatal(err)
			}
		}
		if got := mustJSON(t, tail.Snapshot()); !bytes.Equal(got, wantJSON) {
			t.Fatalf("checkpoint at %d differs:\nlive     %s\nrestored %s", k, wantJSON, got)
		}
	})
}
