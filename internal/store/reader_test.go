package store_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rdd-project/rdd/internal/events"
	"github.com/rdd-project/rdd/internal/store"
	"github.com/rdd-project/rdd/internal/store/storetest"
)

func TestOpenReader(t *testing.T) {
	const n = 3000 // a few hundred leaf pages under branch pages
	path := newFile(t, n)
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	r1, err := store.OpenReader(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// Readers share the file; the writer waits for them.
	r2, err := store.OpenReader(path, store.Options{Timeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatalf("a second reader: %v", err)
	}
	if _, err := store.Open(path, store.Options{Timeout: 100 * time.Millisecond}); !errors.Is(err, store.ErrLocked) {
		t.Fatalf("Open while readers hold the file: %v, want ErrLocked", err)
	}
	if r1.LastSeq() != n {
		t.Fatalf("LastSeq = %d, want %d", r1.LastSeq(), n)
	}
	want := uint64(1)
	err = r1.Range(0, 0, func(e events.Envelope) error {
		if e.Seq != want {
			t.Fatalf("Range gave seq %d, want %d", e.Seq, want)
		}
		want++
		return nil
	})
	if err != nil || want != n+1 {
		t.Fatalf("Range: %v after %d events", err, want-1)
	}
	for _, seq := range []uint64{1, 1234, n} {
		if e, err := r2.Get(seq); err != nil || e.Seq != seq {
			t.Fatalf("Get(%d) = %d, %v", seq, e.Seq, err)
		}
	}
	if err := r2.Range(n-10, 5, func(events.Envelope) error { return nil }); err != nil {
		t.Fatal(err)
	}
	_, err = r1.Append(storetest.Envelope(n))
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("Append on a reader = %v, want a refusal naming the file", err)
	}
	if err := r1.Check(); err != nil {
		t.Fatalf("Check on a reader: %v", err)
	}
	for _, r := range []*store.Log{r1, r2} {
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if after, err := os.ReadFile(path); err != nil || string(after) != string(before) {
		t.Fatalf("reading changed the file (%v)", err)
	}

	w := openAt(t, path, store.Options{})
	if _, err := store.OpenReader(path, store.Options{Timeout: 100 * time.Millisecond}); !errors.Is(err, store.ErrLocked) {
		t.Fatalf("OpenReader while the writer holds the file: %v, want ErrLocked", err)
	}
	_ = w.Close()

	missing := filepath.Join(t.TempDir(), "events.db")
	if _, err := store.OpenReader(missing, store.Options{}); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("OpenReader of a missing file = %v, want ErrNotExist", err)
	}
	if _, err := os.Stat(missing); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal("OpenReader created the file")
	}
}
