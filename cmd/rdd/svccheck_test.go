package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rdd-project/rdd/internal/api"
	"github.com/rdd-project/rdd/internal/events"
	"github.com/rdd-project/rdd/internal/store"
)

// writeLog creates the harness's event log with n DaemonStarted events and
// the projector's checkpoints at 5 and n.
func writeLog(t *testing.T, h *harness, n int) {
	t.Helper()
	l, err := store.Open(h.e.paths.EventLog, store.Options{NoSync: true, Instance: "t"})
	if err != nil {
		t.Fatal(err)
	}
	proj := events.NewProjector()
	for i := 1; i <= n; i++ {
		e, err := events.New(testNow.Add(time.Duration(i)*time.Second), &events.DaemonStarted{Version: fmt.Sprintf("v%d", i), PID: 1000 + i})
		if err != nil {
			t.Fatal(err)
		}
		out, err := l.Append(e)
		if err != nil {
			t.Fatal(err)
		}
		if err := proj.Apply(out[0]); err != nil {
			t.Fatal(err)
		}
		if i == 5 || i == n {
			cp, err := proj.Checkpoint()
			if err != nil {
				t.Fatal(err)
			}
			if err := l.SaveCheckpoint(uint64(i), cp); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestSvcCheckIntact(t *testing.T) {
	h := newHarness(t)
	writeLog(t, h, 8)
	if code := h.run("svc", "check"); code != 0 {
		t.Fatalf("svc check = %d\nstdout: %s\nstderr: %s", code, h.stdout, h.stderr)
	}
	for _, want := range []string{"events:       1..8", "consistency:  ok", "8 events folded, 2 checkpoints matched", "result:       intact"} {
		if !strings.Contains(h.stdout.String(), want) {
			t.Errorf("report does not say %q:\n%s", want, h.stdout)
		}
	}
}

// TestSvcCheckAndRepairDamaged: a flipped payload byte in event 7 makes svc
// check exit 1 naming event 7; svc repair keeps events 1-6 and the damaged
// file; svc check then passes.
func TestSvcCheckAndRepairDamaged(t *testing.T) {
	h := newHarness(t)
	writeLog(t, h, 8)
	path := h.e.paths.EventLog
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(data, []byte(`"version":"v7"`))
	if i < 0 {
		t.Fatal("event 7 not found in the file")
	}
	data[i+12] ^= 0x01
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if code := h.run("svc", "check"); code != 1 {
		t.Fatalf("svc check of a damaged log = %d, want 1\n%s", code, h.stdout)
	}
	out := h.stdout.String() + h.stderr.String()
	for _, want := range []string{"damaged at event 7", "6 events folded", "rdd svc repair"} {
		if !strings.Contains(out, want) {
			t.Errorf("svc check output does not say %q:\n%s", want, out)
		}
	}
	h.reset()
	if code := h.run("svc", "repair"); code != 0 {
		t.Fatalf("svc repair = %d\n%s%s", code, h.stdout, h.stderr)
	}
	if !strings.Contains(h.stdout.String(), "kept events 1..6 and 1 checkpoints") {
		t.Errorf("svc repair said:\n%s", h.stdout)
	}
	kept, _ := filepath.Glob(path + ".damaged-*")
	if len(kept) != 1 {
		t.Fatalf("damaged copies: %v", kept)
	}
	if b, err := os.ReadFile(kept[0]); err != nil || !bytes.Equal(b, data) {
		t.Errorf("the damaged file was not kept as it was: %v", err)
	}
	h.reset()
	if code := h.run("svc", "check"); code != 0 {
		t.Fatalf("svc check after repair = %d\n%s%s", code, h.stdout, h.stderr)
	}
}

// damagedLogBackend serves Events from a real store.Log, as the daemon does.
type damagedLogBackend struct {
	*fakeBackend
	log *store.Log
}

func (b damagedLogBackend) Events(_ context.Context, q api.EventQuery, fn func(events.Envelope) error) error {
	return b.log.Range(q.Since, q.Limit, fn)
}

// TestEventsExportsUpToTheDamage: with event 5 damaged, `rdd events -o json`
// prints events 1-4 and then fails with the error naming the log and event 5.
func TestEventsExportsUpToTheDamage(t *testing.T) {
	h := newHarness(t)
	writeLog(t, h, 8)
	path := h.e.paths.EventLog
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(data, []byte(`"version":"v5"`))
	if i < 0 {
		t.Fatal("event 5 not found in the file")
	}
	data[i+12] ^= 0x01
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	ln, err := api.Listen(h.e.paths.Socket)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv := api.NewServer(damagedLogBackend{&fakeBackend{}, l}, nil, api.ServerOptions{Version: "test", ShutdownGrace: time.Second})
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-done })

	if code := h.run("events", "-o", "json"); code != 1 {
		t.Fatalf("events = %d, want 1\nstdout: %s\nstderr: %s", code, h.stdout, h.stderr)
	}
	lines := strings.Split(strings.TrimSpace(h.stdout.String()), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[3], `{"seq":4,`) {
		t.Errorf("exported %d lines, want events 1-4:\n%s", len(lines), h.stdout)
	}
	for _, want := range []string{path, "event 5", "rdd svc repair"} {
		if !strings.Contains(h.stderr.String(), want) {
			t.Errorf("stderr does not mention %q:\n%s", want, h.stderr)
		}
	}
}
