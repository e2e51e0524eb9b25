//go:build unix

package engine

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/rdd-project/rdd/internal/userfile"
)

// within fails the test when fn has not returned after d, so a blocking
// open fails the test instead of hanging it.
func within(t *testing.T, d time.Duration, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); fn() }()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("still blocked after %v: a blocking read of a FIFO", d)
	}
}

// TestDockerConfigFIFO is issue 10's reproduction: a FIFO at
// $DOCKER_CONFIG/config.json hung `rdd stop` for good. Every path that reads
// it now fails at once with an error naming the file, and the context
// directories are still removed.
func TestDockerConfigFIFO(t *testing.T) {
	cfg := t.TempDir()
	path := filepath.Join(cfg, "config.json")
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	wantErr := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, userfile.ErrNotRegular) || !strings.Contains(err.Error(), path) {
			t.Errorf("%s with a FIFO config.json: %v, want an error naming %s as not a regular file", what, err, path)
		}
	}
	var err error
	within(t, 5*time.Second, func() { _, err = readDockerConfig(cfg) })
	wantErr("readDockerConfig", err)

	within(t, 5*time.Second, func() {
		_, err = switchCurrentContext(context.Background(), cfg, ctxName, envOf(nil), "unix:///nonexistent.sock")
	})
	wantErr("switchCurrentContext", err)

	probed := make(chan error, 1)
	m := NewContextManager(cfg, ctxName, "unix:///x.sock", envOf(nil), zaptest.NewLogger(t), func(_ bool, err error) { probed <- err })
	within(t, 5*time.Second, func() {
		if err := m.Activate(context.Background()); err != nil {
			t.Errorf("Activate: %v", err)
		}
		wantErr("the current-context probe", <-probed)
		err = m.Deactivate(context.Background())
	})
	wantErr("Deactivate", err)
	if _, err := os.Stat(ContextMetaDir(cfg, ctxName)); !errors.Is(err, os.ErrNotExist) {
		t.Error("the context directory was left behind")
	}
	if st, err := os.Lstat(path); err != nil || st.Mode()&os.ModeNamedPipe == 0 {
		t.Errorf("the FIFO was replaced: %v %v", st.Mode(), err)
	}
}

// TestContextManagerStopBounded: Deactivate waits for a running probe only
// as long as its ctx allows.
func TestContextManagerStopBounded(t *testing.T) {
	m := NewContextManager(t.TempDir(), ctxName, "unix:///x.sock", envOf(nil), zaptest.NewLogger(t), func(bool, error) {})
	stuck := make(chan struct{})
	t.Cleanup(func() { close(stuck) })
	m.cancel, m.done = func() {}, stuck // a probe that ignores cancellation
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	var err error
	within(t, 5*time.Second, func() { err = m.Deactivate(ctx) })
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "probe") {
		t.Fatalf("Deactivate with a stuck probe: %v, want the deadline, naming the probe", err)
	}
}
