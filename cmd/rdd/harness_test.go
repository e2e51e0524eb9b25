package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rdd-project/rdd/internal/paths"
)

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a child
// process's output copiers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
	// wrote is closed and replaced at every write, for waitFor.
	wrote chan struct{}
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.wrote != nil {
		close(s.wrote)
		s.wrote = nil
	}
	return s.b.Write(p)
}

// waitFor blocks until the buffer contains sub.
func (s *syncBuffer) waitFor(t *testing.T, sub string) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		s.mu.Lock()
		if strings.Contains(s.b.String(), sub) {
			s.mu.Unlock()
			return
		}
		if s.wrote == nil {
			s.wrote = make(chan struct{})
		}
		wrote := s.wrote
		s.mu.Unlock()
		select {
		case <-wrote:
		case <-deadline:
			t.Fatalf("never printed %q; got:\n%s", sub, s.String())
		}
	}
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// harness runs rdd commands in-process against a temporary home.
type harness struct {
	t              *testing.T
	e              *env
	stdout, stderr *syncBuffer
	env            map[string]string
	// daemonStarts counts implicit daemon starts.
	daemonStarts int
	// ticks and deadline drive the heartbeats and the --timeout of waits;
	// clock is what env.now returns.
	ticks, deadline chan time.Time
	clockMu         sync.Mutex
	clock           time.Time
}

// setClock moves the harness's clock.
func (h *harness) setClock(t time.Time) {
	h.clockMu.Lock()
	defer h.clockMu.Unlock()
	h.clock = t
}

// testNow is the clock of every harness.
var testNow = time.Date(2026, 11, 26, 12, 30, 0, 0, time.UTC)

func newHarness(t *testing.T) *harness {
	t.Helper()
	// Not t.TempDir: its long names would push the socket path over the
	// 104-byte limit.
	home, err := os.MkdirTemp("", "rddcli")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(home) })
	h := &harness{t: t, stdout: &syncBuffer{}, stderr: &syncBuffer{}, env: map[string]string{},
		ticks: make(chan time.Time), deadline: make(chan time.Time), clock: testNow}
	getenv := func(k string) string { return h.env[k] }
	p, err := paths.Resolve("t", home, getenv)
	if err != nil {
		t.Fatal(err)
	}
	h.e = &env{
		paths:  p,
		stdin:  bytes.NewReader(nil),
		stdout: h.stdout,
		stderr: h.stderr,
		getenv: getenv,
		environ: func() []string {
			return []string{"PATH=/usr/bin:/bin", "DOCKER_HOST=tcp://elsewhere:2375", "HOME=" + home}
		},
		now: func() time.Time {
			h.clockMu.Lock()
			defer h.clockMu.Unlock()
			return h.clock
		},
		newTicker: func(time.Duration) (<-chan time.Time, func()) { return h.ticks, func() {} },
		newTimer:  func(time.Duration) (<-chan time.Time, func()) { return h.deadline, func() {} },
		build:     buildInfo{Version: "v1.2.3", Commit: "abc123"},
		resolve:   func(s string) (paths.Paths, error) { return paths.Resolve(s, home, getenv) },
		startDaemon: func(context.Context) error {
			h.daemonStarts++
			return nil
		},
	}
	return h
}

// run executes one command line and returns its exit code.
func (h *harness) run(args ...string) int {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	return execute(ctx, h.e, args, nil)
}

// reset clears the captured output.
func (h *harness) reset() {
	h.stdout.mu.Lock()
	h.stdout.b.Reset()
	h.stdout.mu.Unlock()
	h.stderr.mu.Lock()
	h.stderr.b.Reset()
	h.stderr.mu.Unlock()
}
