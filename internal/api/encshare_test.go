package api

import (
	"bytes"
	"encoding/json"
	"sync"
	"testing"

	"github.com/rdd-project/rdd/internal/events"
)

// Many watchers sending the same snapshot share one encoding, byte for byte
// json.Marshal's; another seq or generation gets its own.
func TestSharedLinesEncodeOncePerSnapshot(t *testing.T) {
	var c sharedLines
	snap := events.Snapshot{Exists: true, Seq: 7, Generation: 2}
	want, _ := json.Marshal(snap)
	want = append(want, '\n')
	lines := make([][]byte, 64)
	var wg sync.WaitGroup
	for i := range lines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := snap // each watcher has its own copy, as Watch gives it
			b, err := c.line(&s)
			if err != nil {
				t.Error(err)
			}
			lines[i] = b
		}()
	}
	wg.Wait()
	for i, b := range lines {
		if !bytes.Equal(b, want) || &b[0] != &lines[0][0] {
			t.Fatalf("watcher %d got %q (shared: %v), want the one encoding %q", i, b, &b[0] == &lines[0][0], want)
		}
	}
	other := snap
	other.Generation = 3
	b, _ := c.line(&other)
	if bytes.Equal(b, want) {
		t.Fatal("a snapshot of another generation got the cached line")
	}
	for seq := uint64(100); seq < 100+2*sharedLinesSize; seq++ { // evict everything
		s := snap
		s.Seq = seq
		if b, err := c.line(&s); err != nil || len(b) == 0 {
			t.Fatalf("seq %d: %q, %v", seq, b, err)
		}
	}
	if b, _ := c.line(&snap); !bytes.Equal(b, want) {
		t.Fatalf("re-encoded after eviction: %q", b)
	}
}
