package main

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rdd-project/rdd/internal/api/client"
	"github.com/rdd-project/rdd/internal/events"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// golden compares got with testdata/name, rewriting it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (go test -update rewrites it):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

func TestReplayFile(t *testing.T) {
	for _, tt := range []struct {
		args   []string
		golden string
	}{
		{[]string{"replay", "testdata/replay/start.ndjson"}, "replay/start.text.golden"},
		{[]string{"replay", "testdata/replay/start.ndjson", "-o", "json"}, "replay/start.json.golden"},
		{[]string{"replay", "testdata/replay/start.ndjson", "--to", "7"}, "replay/start-to-7.text.golden"},
	} {
		t.Run(strings.Join(tt.args[2:], " "), func(t *testing.T) {
			h := newHarness(t) // no daemon: replay of a file needs none
			if code := h.run(tt.args...); code != 0 {
				t.Fatalf("rdd %q = %d: %s", tt.args, code, h.stderr)
			}
			golden(t, tt.golden, h.stdout.String())
		})
	}
}

func TestReplayJSONIsTheProjection(t *testing.T) {
	h := newHarness(t)
	if code := h.run("replay", "testdata/replay/start.ndjson", "--json"); code != 0 {
		t.Fatal(code)
	}
	snap, err := events.Replay(loadEvents(t, "start.ndjson"))
	if err != nil {
		t.Fatal(err)
	}
	var want strings.Builder
	if err := writeLine(&want, mustJSON(t, snap)); err != nil {
		t.Fatal(err)
	}
	if h.stdout.String() != want.String() {
		t.Errorf("replay -o json:\n%s\nwant json.Marshal(events.Replay):\n%s", h.stdout, want.String())
	}
}

func TestReplayBadInput(t *testing.T) {
	for name, input := range map[string]string{
		"not JSON":     "{\"seq\":1,",
		"unknown type": `{"seq":1,"time":"2026-11-26T12:00:00Z","type":"Bogus","v":1,"data":{}}`,
		"gap":          `{"seq":2,"time":"2026-11-26T12:00:00Z","type":"DaemonStopping","v":1,"data":{"reason":"x"}}`,
	} {
		h := newHarness(t)
		h.e.stdin = strings.NewReader(input)
		if code := h.run("replay", "-"); code != 1 || !strings.HasPrefix(h.stderr.String(), "Error: ") {
			t.Errorf("%s: replay = %d, stderr %q", name, code, h.stderr)
		}
	}
	h := newHarness(t)
	if code := h.run("replay", "testdata/replay/missing.ndjson"); code != 1 {
		t.Errorf("replay of a missing file = %d", code)
	}
}

func TestWhy(t *testing.T) {
	envs := loadEvents(t, "start.ndjson")
	now := envs[len(envs)-1].Time.Add(2 * time.Minute)
	r, err := explain(daemonLog{Envs: envs}, events.CondRunning, now)
	if err != nil {
		t.Fatal(err)
	}
	if r.Condition.Reason != "Started" || r.ReasonEvent == nil || r.ReasonEvent.Seq != 10 {
		t.Fatalf("why Running: %+v", r)
	}
	if r.SpecChange == nil || r.SpecChange.Seq != 8 || r.Since != 8 {
		t.Errorf("why Running answers %+v since %d, want SpecChanged 8", r.SpecChange, r.Since)
	}

	h := newHarness(t)
	h.e.now = func() time.Time { return now }
	h.serve(logBackend(t, "start.ndjson"))
	if code := h.run("why", "running"); code != 0 {
		t.Fatalf("why running = %d: %s", code, h.stderr)
	}
	golden(t, "replay/why-running.golden", h.stdout.String())
}

// why reads the log from the spec change its answer starts at, not from
// seq 1; the answer must be the one the whole log gives, for every
// condition, whatever window the search for that spec change starts with.
func TestWhyReadsFromTheSpecChange(t *testing.T) {
	envs := loadEvents(t, "start.ndjson")
	now := envs[len(envs)-1].Time.Add(2 * time.Minute)
	h := newHarness(t)
	h.serve(logBackend(t, "start.ndjson"))
	c := client.New(h.e.paths.Socket)
	ctx := context.Background()
	defer func(w uint64) { whyWindow = w }(whyWindow)
	shorter := false
	for _, w := range []uint64{1, 3, 4096} {
		whyWindow = w
		for _, typ := range events.ConditionOrder {
			full, err := explain(daemonLog{Envs: envs}, typ, now)
			if err != nil {
				t.Fatal(err)
			}
			l, err := fetchWhyLog(ctx, c, typ)
			if err != nil {
				t.Fatal(err)
			}
			part, err := explain(l, typ, now)
			if err != nil {
				t.Fatal(err)
			}
			if a, b := string(mustJSON(t, full)), string(mustJSON(t, part)); a != b {
				t.Errorf("window %d, why %s from the spec change:\n%s\nfrom seq 1:\n%s", w, typ, b, a)
			}
			shorter = shorter || len(l.Envs) < len(envs)
		}
	}
	if !shorter {
		t.Error("why read the whole log for every condition")
	}
}

// After the daemon's retention policy compacted its log, replay and why
// start from the oldest snapshot the daemon can rebuild, say so, and still
// end at the live snapshot.
func TestReplayAndWhyAfterRetention(t *testing.T) {
	retained := func(t *testing.T, compacted, oldest uint64) (*harness, *fakeBackend) {
		h := newHarness(t)
		b := logBackend(t, "start.ndjson")
		b.compacted, b.oldest = compacted, oldest
		h.serve(b)
		return h, b
	}
	h, b := retained(t, 5, 8)
	if code := h.run("status", "-o", "json"); code != 0 {
		t.Fatal(code)
	}
	status := h.stdout.String()
	h.reset()
	if code := h.run("replay", "-o", "json"); code != 0 || h.stdout.String() != status {
		t.Fatalf("replay -o json of a compacted log = %d:\n%s\nwant rdd status -o json:\n%s\nstderr: %s", code, h.stdout, status, h.stderr)
	}
	const note = "Note: events up to seq 5 were removed by the daemon's retention policy (RDD_RETAIN_EVENTS); replayed from its snapshot at seq 8.\n"
	if h.stderr.String() != note {
		t.Errorf("replay -o json: stderr %q, want %q", h.stderr, note)
	}
	// The oldest rebuildable seq is found by bisection, not seq by seq.
	if b.snapshotAts > 5 {
		t.Errorf("replay asked for %d past snapshots of a 14-event log", b.snapshotAts)
	}

	h.reset()
	if code := h.run("replay"); code != 0 {
		t.Fatalf("replay = %d: %s", code, h.stderr)
	}
	golden(t, "replay/start-retained.text.golden", h.stdout.String())

	h.reset()
	if code := h.run("replay", "--to", "7"); code != 1 || !strings.Contains(h.stderr.String(), "use --to 8 or later") {
		t.Errorf("replay --to 7 below the oldest snapshot = %d: %s", code, h.stderr)
	}
	h.reset()
	if code := h.run("replay", "--to", "10", "-o", "json"); code != 0 {
		t.Fatalf("replay --to 10 = %d: %s", code, h.stderr)
	}
	want, err := events.Replay(loadEvents(t, "start.ndjson")[:10])
	if err != nil {
		t.Fatal(err)
	}
	if got := h.stdout.String(); got != string(mustJSON(t, want))+"\n" {
		t.Errorf("replay --to 10 of a compacted log:\n%s\nwant the fold of seq 1..10:\n%s", got, mustJSON(t, want))
	}

	// The spec change (seq 8) and the reason's event (seq 10) are kept.
	envs := loadEvents(t, "start.ndjson")
	now := envs[len(envs)-1].Time.Add(2 * time.Minute)
	h.e.now = func() time.Time { return now }
	h.reset()
	if code := h.run("why", "running"); code != 0 {
		t.Fatalf("why running = %d: %s", code, h.stderr)
	}
	golden(t, "replay/why-running-retained.golden", h.stdout.String())

	// Both removed: the answer says so instead of "no spec change".
	h, _ = retained(t, 11, 12)
	h.e.now = func() time.Time { return now }
	if code := h.run("why", "running"); code != 0 {
		t.Fatalf("why running = %d: %s", code, h.stderr)
	}
	out := h.stdout.String()
	for _, s := range []string{
		"Reason Started was set by seq 10, which the retention policy removed.",
		"The spec change it answers was removed by the retention policy.",
		"replayed from its snapshot at seq 12.",
		"Time in each reason since seq 12:",
	} {
		if !strings.Contains(out, s) {
			t.Errorf("why running with seqs 1..11 removed lacks %q:\n%s", s, out)
		}
	}
	h.reset()
	if code := h.run("why", "running", "-o", "json"); code != 0 || !strings.Contains(h.stdout.String(), `"retention":{"removedThrough":11,"replayedFrom":12}`) {
		t.Errorf("why -o json = %d: %s", code, h.stdout)
	}
}

// A failed effect with no failed state of its own (here: a delete the
// driver refused) is named by `rdd why` while it stands.
func TestWhyNamesStandingFailures(t *testing.T) {
	envs := loadEvents(t, "start.ndjson")
	last := envs[len(envs)-1]
	fail, err := events.New(last.Time.Add(time.Second), &events.EffectFailed{Machine: events.MachineVM, Effect: "inspect", Message: "read /h/engine.json: input/output error"})
	if err != nil {
		t.Fatal(err)
	}
	fail.Seq = last.Seq + 1
	envs = append(envs, fail)
	r, err := explain(daemonLog{Envs: envs}, events.CondSettled, fail.Time)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Failures) != 1 || r.Failures[0].Seq != fail.Seq || r.Failures[0].Effect != "inspect" {
		t.Fatalf("why Settled failures %+v, want the inspect failure at seq %d", r.Failures, fail.Seq)
	}
	var b strings.Builder
	if err := r.writeText(&b, fail.Time); err != nil {
		t.Fatal(err)
	}
	if want := "vm inspect failed: read /h/engine.json: input/output error"; !strings.Contains(b.String(), want) {
		t.Errorf("why text does not say %q:\n%s", want, b.String())
	}
	if r, _ := explain(daemonLog{Envs: envs}, events.CondContainerEngineReady, fail.Time); len(r.Failures) != 0 {
		t.Errorf("a vm failure shows on ContainerEngineReady: %+v", r.Failures)
	}
}
