package daemon

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/rdd-project/rdd/internal/api"
	"github.com/rdd-project/rdd/internal/events"
	"github.com/rdd-project/rdd/internal/store"
)

// rangeCountingLog counts the events its Range delivers.
type rangeCountingLog struct {
	*store.Mem
	ranged atomic.Int64
}

func (l *rangeCountingLog) Range(since uint64, limit int, fn func(events.Envelope) error) error {
	return l.Mem.Range(since, limit, func(e events.Envelope) error {
		l.ranged.Add(1)
		return fn(e)
	})
}

// TestSnapshotAtTimeReadsLittle is issue 10's reproduction: `status --at
// TIME` scanned the whole log (140–256 ms on 52 MB). It now finds the seq by
// the time index and folds from the nearest checkpoint, so the events it
// reads are bounded by the checkpoint spacing, not the log's length, and
// the answer is the snapshot of the last event at or before TIME.
func TestSnapshotAtTimeReadsLittle(t *testing.T) {
	const n, every = 6000, 500
	t0 := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	tick := 0
	clock := func() time.Time { // one second per commit
		mu.Lock()
		defer mu.Unlock()
		tick++
		return t0.Add(time.Duration(tick) * time.Second)
	}
	log := &rangeCountingLog{Mem: store.NewMem()}
	w := newWriter(log, events.NewProjector(), clock, zaptest.NewLogger(t))
	w.checkpointEvery = every
	ctx, cancel := context.WithCancel(context.Background())
	go w.run(ctx)
	t.Cleanup(func() { cancel(); <-w.done })
	if _, err := w.SetSpec(ctx, api.SetRequest{Set: map[string]string{"running": "false"}}, api.Source{}); err != nil {
		t.Fatal(err)
	}
	for log.LastSeq() < n {
		if _, err := w.Append(ctx, &events.Observed{Machine: events.MachineVM, Generation: 1}); err != nil {
			t.Fatal(err)
		}
	}
	// Event seq s was committed at t0+s seconds (one event per commit).
	for _, seq := range []uint64{1, 777, 2500, 4999} {
		log.ranged.Store(0)
		at := t0.Add(time.Duration(seq)*time.Second + 500*time.Millisecond)
		snap, err := w.SnapshotAt(ctx, api.At{Time: at})
		if err != nil {
			t.Fatal(err)
		}
		if snap.Seq != seq {
			t.Errorf("SnapshotAt(t0+%ds+0.5s) = seq %d, want %d", seq, snap.Seq, seq)
		}
		if got := log.ranged.Load(); got > every {
			t.Errorf("SnapshotAt(seq %d by time) read %d events of %d, want at most the checkpoint spacing %d", seq, got, n, every)
		}
	}
	if snap, err := w.SnapshotAt(ctx, api.At{Time: t0}); err != nil || snap.Seq != 0 {
		t.Errorf("SnapshotAt before the first event = seq %d, %v; want the empty snapshot", snap.Seq, err)
	}
}
