package events

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/replay")

const replayDir = "../../testdata/replay"

// TestReplayGolden folds every testdata/replay/NAME.ndjson (an exported log,
// one envelope per line) and compares the final snapshot with NAME.json and
// the condition changes, event by event, with NAME.trace. Regenerate both
// with `go test ./internal/events -run TestReplayGolden -update`.
func TestReplayGolden(t *testing.T) {
	t.Parallel()
	logs, err := filepath.Glob(filepath.Join(replayDir, "*.ndjson"))
	if err != nil || len(logs) == 0 {
		t.Fatalf("no replay logs in %s (%v)", replayDir, err)
	}
	for _, path := range logs {
		name := strings.TrimSuffix(filepath.Base(path), ".ndjson")
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			envs := readLog(t, path)
			snapJSON, trace := replayWithTrace(t, envs)
			// The live fold and Replay agree byte for byte.
			s, err := Replay(envs)
			if err != nil {
				t.Fatal(err)
			}
			if compact := mustJSON(t, s); !bytes.Equal(compact, compactJSON(t, snapJSON)) {
				t.Fatal("Replay differs from the traced fold")
			}
			compareGolden(t, filepath.Join(replayDir, name+".json"), snapJSON)
			compareGolden(t, filepath.Join(replayDir, name+".trace"), trace)
		})
	}
}

func readLog(t *testing.T, path string) []Envelope {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var envs []Envelope
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		e, err := Unmarshal(sc.Bytes())
		if err != nil {
			t.Fatalf("%s:%d: %v", path, len(envs)+1, err)
		}
		envs = append(envs, e)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return envs
}

// replayWithTrace folds envs and returns the indented final snapshot and a
// text trace of every condition change.
func replayWithTrace(t *testing.T, envs []Envelope) (snapshot, trace []byte) {
	t.Helper()
	p := NewProjector()
	prev := p.Snapshot()
	var tr bytes.Buffer
	for _, e := range envs {
		if err := p.Apply(e); err != nil {
			t.Fatal(err)
		}
		cur := p.Snapshot()
		fmt.Fprintf(&tr, "#%d %s%s\n", e.Seq, e.Type, describe(t, e))
		for _, ch := range DiffConditions(&prev, &cur) {
			fmt.Fprintf(&tr, "    %-21s %s -> %s\n", ch.Type, condText(ch.Old), condText(ch.New))
		}
		prev = cur
	}
	out, err := json.MarshalIndent(prev, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(out, '\n'), tr.Bytes()
}

func describe(t *testing.T, e Envelope) string {
	pl, err := Decode(e)
	if err != nil {
		t.Fatal(err)
	}
	switch p := pl.(type) {
	case *Transition:
		return fmt.Sprintf(" %s %s -> %s (gen %d)", p.Machine, p.From, p.To, p.Generation)
	case *Observed:
		return fmt.Sprintf(" %s (gen %d)", p.Machine, p.Generation)
	case *SpecChanged:
		return fmt.Sprintf(" generation %d", p.Generation)
	}
	return ""
}

func condText(c *Condition) string {
	if c == nil {
		return "(absent)"
	}
	return fmt.Sprintf("%s/%s g%d %q", c.Status, c.Reason, c.ObservedGeneration, c.Message)
}

func compactJSON(t *testing.T, b []byte) []byte {
	var out bytes.Buffer
	if err := json.Compact(&out, b); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func compareGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (run with -update after checking the change):\n--- got\n%s", path, got)
	}
}
