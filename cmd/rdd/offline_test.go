package main

import (
	"strings"
	"testing"

	"github.com/rdd-project/rdd/internal/events"
	"github.com/rdd-project/rdd/internal/store"
)

// writeLog writes the testdata log name as the harness instance's event log,
// with a checkpoint at seq cp, as a daemon that has stopped leaves it.
func (h *harness) writeLog(name string, cp uint64) []events.Envelope {
	h.t.Helper()
	envs := loadEvents(h.t, name)
	l, err := store.Open(h.e.paths.EventLog, store.Options{NoSync: true, Instance: h.e.paths.Instance})
	if err != nil {
		h.t.Fatal(err)
	}
	defer l.Close()
	if _, err := l.Append(envs...); err != nil {
		h.t.Fatal(err)
	}
	snap, err := events.Replay(envs[:cp])
	if err != nil {
		h.t.Fatal(err)
	}
	data, err := events.MarshalCheckpoint(snap)
	if err != nil {
		h.t.Fatal(err)
	}
	if err := l.SaveCheckpoint(cp, data); err != nil {
		h.t.Fatal(err)
	}
	return envs
}

func TestReadingWithTheDaemonDown(t *testing.T) {
	h := newHarness(t)
	h.writeLog("start.ndjson", 10)
	if code := h.run("replay", "testdata/replay/start.ndjson", "-o", "json"); code != 0 {
		t.Fatalf("replay FILE = %d: %s", code, h.stderr)
	}
	live := h.stdout.String()

	h.reset()
	if code := h.run("status", "-o", "json"); code != 5 {
		t.Fatalf("status -o json with the daemon down = %d, want 5: %s", code, h.stderr)
	}
	if want := `{"daemonRunning":false,` + live[1:]; h.stdout.String() != want {
		t.Errorf("status -o json:\n%s\nwant:\n%s", h.stdout, want)
	}
	if h.stderr.String() != "" {
		t.Errorf("status -o json stderr %q", h.stderr)
	}

	h.reset()
	if code := h.run("status"); code != 5 {
		t.Fatalf("status = %d, want 5: %s", code, h.stderr)
	}
	out := h.stdout.String()
	if !strings.HasPrefix(out, "The rdd daemon of instance t is not running; this is the state its event log records (seq 14).\n") ||
		!strings.Contains(out, "generation:     2 (seq 14)") {
		t.Errorf("status text:\n%s", out)
	}

	h.reset()
	if code := h.run("status", "--at", "8", "-o", "yaml"); code != 5 || !strings.Contains(h.stdout.String(), "daemonRunning: false\n") || !strings.Contains(h.stdout.String(), "seq: 8\n") {
		t.Errorf("status --at 8 -o yaml = %d:\n%s%s", code, h.stdout, h.stderr)
	}

	h.reset()
	if code := h.run("events", "--since", "8", "--limit", "2"); code != 0 {
		t.Fatalf("events = %d: %s", code, h.stderr)
	}
	want := "9      2026-11-26T12:01:00.100Z Transition     vm stopped→starting (start) gen=2\n" +
		"10     2026-11-26T12:01:15.300Z Transition     vm starting→running (started) gen=2 pid=4242\n"
	if h.stdout.String() != want || h.stderr.String() != "Note: the rdd daemon of instance t is not running; listing its event log.\n" {
		t.Errorf("events:\n%s\nstderr %q", h.stdout, h.stderr)
	}
	h.reset()
	if code := h.run("events", "--since", "2026-11-26T12:01:00.1Z", "--limit", "1"); code != 0 || !strings.HasPrefix(h.stdout.String(), "9 ") {
		t.Errorf("events --since TIME = %d: %q", code, h.stdout)
	}
	h.reset()
	if code := h.run("status", "--at", "2026-11-26T12:01:00.1Z", "-o", "json"); code != 5 || !strings.Contains(h.stdout.String(), `"seq":9,`) {
		t.Errorf("status --at TIME = %d: %s", code, h.stdout)
	}
	h.reset()
	if code := h.run("events", "--follow"); code != 1 || !strings.Contains(h.stderr.String(), "--follow needs a running daemon") {
		t.Errorf("events --follow = %d: %q", code, h.stderr)
	}

	h.reset()
	if code := h.run("why", "Settled", "-o", "json"); code != 0 || !strings.Contains(h.stdout.String(), `"daemonRunning":false`) {
		t.Errorf("why -o json = %d: %s%s", code, h.stdout, h.stderr)
	}
	h.reset()
	if code := h.run("why", "Settled"); code != 0 || !strings.HasPrefix(h.stdout.String(), "The rdd daemon of instance t is not running; this is what its event log records.\nSettled=True") {
		t.Errorf("why = %d:\n%s%s", code, h.stdout, h.stderr)
	}

	h.reset()
	if code := h.run("replay", "-o", "json"); code != 0 || h.stdout.String() != live || !strings.Contains(h.stderr.String(), "is not running; replaying its event log") {
		t.Errorf("replay -o json = %d:\n%s\nstderr %q", code, h.stdout, h.stderr)
	}
	if h.daemonStarts != 0 {
		t.Error("reading started the daemon")
	}
}

// A log held by a process that does not answer on the socket (a daemon
// starting or stopping) is an error at once, not a wait.
func TestReadingALockedLogFails(t *testing.T) {
	h := newHarness(t)
	h.writeLog("start.ndjson", 10)
	l, err := store.Open(h.e.paths.EventLog, store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if code := h.run("status"); code != 1 || !strings.Contains(h.stderr.String(), "does not answer on its socket but holds its event log") {
		t.Errorf("status with the log locked = %d: %q", code, h.stderr)
	}
}
