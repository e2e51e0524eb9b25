package api

import (
	"encoding/json"
	"fmt"
	"sync"

	"github.com/rdd-project/rdd/internal/events"
)

// sharedLines holds the encoding of the snapshots most recently sent on
// watch streams. Every watcher is sent the same snapshot after a change, and
// encoding it once per watcher made the change reach the last of 1,000
// watchers only after 1,000 encodings (issue 10); now the first watcher to
// send it encodes it and the others write the same bytes.
//
// A committed seq names exactly one snapshot (replay == live), so seq keys
// the entry; the generation is compared too, which costs nothing and keeps a
// Backend that breaks that rule from sending a stale line.
type sharedLines struct {
	mu   sync.Mutex
	ring [sharedLinesSize]*sharedLine
	next int
}

// sharedLinesSize covers watchers that lag a few updates behind each other
// (a change commits about five events in a burst, and the last of 1,000
// watchers writes the burst's first line after its last was encoded); one
// further behind re-encodes, which costs time, never correctness.
const sharedLinesSize = 32

type sharedLine struct {
	seq  uint64
	gen  int64
	once sync.Once
	line []byte // JSON + '\n'; never modified once set
	err  error
}

// line returns snap encoded as json.Marshal does, plus '\n'. The result is
// shared: callers must not modify it.
func (c *sharedLines) line(snap *events.Snapshot) ([]byte, error) {
	c.mu.Lock()
	var e *sharedLine
	for _, x := range c.ring {
		if x != nil && x.seq == snap.Seq && x.gen == snap.Generation {
			e = x
			break
		}
	}
	if e == nil {
		e = &sharedLine{seq: snap.Seq, gen: snap.Generation}
		c.ring[c.next] = e
		c.next = (c.next + 1) % sharedLinesSize
	}
	c.mu.Unlock()
	e.once.Do(func() {
		b, err := json.Marshal(snap)
		if err != nil {
			e.err = fmt.Errorf("encode snapshot at seq %d: %w", snap.Seq, err)
			return
		}
		e.line = append(b, '\n')
	})
	return e.line, e.err
}
