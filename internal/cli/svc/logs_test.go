package svc

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rdd-project/rdd/internal/logfile"
)

// waitWriter collects writes and signals when its content contains a string.
type waitWriter struct {
	mu      sync.Mutex
	b       strings.Builder
	changed chan struct{}
}

func newWaitWriter() *waitWriter { return &waitWriter{changed: make(chan struct{}, 1)} }

func (w *waitWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.b.Write(p)
	select {
	case w.changed <- struct{}{}:
	default:
	}
	return len(p), nil
}

func (w *waitWriter) waitFor(t *testing.T, s string) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		w.mu.Lock()
		got := w.b.String()
		w.mu.Unlock()
		if strings.Contains(got, s) {
			return
		}
		select {
		case <-w.changed:
		case <-deadline:
			t.Fatalf("output %q never contained %q", got, s)
		}
	}
}

func TestFollow(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rdd.log")
	if err := os.WriteFile(path, []byte("one\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := newWaitWriter()
	done := make(chan error, 1)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	go func() {
		done <- FollowLines(ctx, path, 0, tick.C, func(line []byte) error {
			_, err := w.Write(append(line, '\n'))
			return err
		})
	}()
	w.waitFor(t, "one\n")

	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	// A line counts once its newline is written.
	f.WriteString("tw")
	f.WriteString("o\n")
	f.Close()
	w.waitFor(t, "one\ntwo\n")

	// Rotation: the old file moves away and a new one starts.
	if err := logfile.Rotate(path, false); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("three\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	w.waitFor(t, "two\nthree\n")

	cancel()
	if err := <-done; err != nil {
		t.Fatalf("FollowLines = %v", err)
	}
}
