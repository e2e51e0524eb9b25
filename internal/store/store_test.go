package store_test

import (
	"errors"
	"path/filepath"
	"testing"

	"go.uber.org/zap/zaptest"

	"github.com/rdd-project/rdd/internal/store"
	"github.com/rdd-project/rdd/internal/store/storetest"
)

// openTemp opens a new log under t.TempDir(); its cleanup checks the whole
// file (bbolt Check plus a strict decode of every event) and closes it.
func openTemp(t *testing.T) *store.Log {
	t.Helper()
	return openAt(t, filepath.Join(t.TempDir(), "events.db"), store.Options{NoSync: true})
}

// openAt opens path, registering the same check-then-close cleanup.
func openAt(t *testing.T, path string, opts store.Options) *store.Log {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = zaptest.NewLogger(t)
	}
	l, err := store.Open(path, opts)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() {
		if err := l.Check(); err != nil && !errors.Is(err, store.ErrClosed) {
			t.Errorf("Check: %v", err)
		}
		if err := l.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return l
}

func TestLogConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.EventLog { return openTemp(t) })
}

// TestLogConformanceSmallChunks runs the suite with Range and Compact split
// into transactions of 3 events, so chunk boundaries fall everywhere.
func TestLogConformanceSmallChunks(t *testing.T) {
	store.SetChunks(t, 3, 3)
	storetest.Run(t, func(t *testing.T) store.EventLog { return openTemp(t) })
}

func TestMemConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.EventLog {
		m := store.NewMem()
		t.Cleanup(func() { _ = m.Close() })
		return m
	})
}

func TestMemConformanceSmallChunks(t *testing.T) {
	store.SetChunks(t, 3, 3)
	storetest.Run(t, func(t *testing.T) store.EventLog {
		m := store.NewMem()
		t.Cleanup(func() { _ = m.Close() })
		return m
	})
}
