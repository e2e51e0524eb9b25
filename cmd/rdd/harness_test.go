package main

import (
	"bytes"
	"context"
	"os"
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
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
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
	h := &harness{t: t, stdout: &syncBuffer{}, stderr: &syncBuffer{}, env: map[string]string{}}
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
		now:   func() time.Time { return testNow },
		build: buildInfo{Version: "v1.2.3", Commit: "abc123"},
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
