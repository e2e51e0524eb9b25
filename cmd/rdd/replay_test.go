package main

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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
	r, err := explain(envs, events.CondRunning, now)
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
