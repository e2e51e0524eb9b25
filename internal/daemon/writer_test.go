package daemon

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/rdd-project/rdd/internal/api"
	"github.com/rdd-project/rdd/internal/events"
	"github.com/rdd-project/rdd/internal/store"
	"github.com/rdd-project/rdd/internal/store/storetest"
)

// flakyLog fails appends while fail is set.
type flakyLog struct {
	*store.Mem
	fail error
}

func (f *flakyLog) Append(envs ...events.Envelope) ([]events.Envelope, error) {
	if f.fail != nil {
		return nil, f.fail
	}
	return f.Mem.Append(envs...)
}

func startWriter(t *testing.T, log eventLog) *writer {
	t.Helper()
	w := newWriter(log, events.NewProjector(), time.Now, zaptest.NewLogger(t))
	ctx, cancel := context.WithCancel(context.Background())
	go w.run(ctx)
	t.Cleanup(func() { cancel(); <-w.done })
	return w
}

func TestFailedAppendLeavesSnapshotAndLogAlone(t *testing.T) {
	log := &flakyLog{Mem: store.NewMem()}
	w := startWriter(t, log)
	ctx := context.Background()
	if _, err := w.SetSpec(ctx, api.SetRequest{Set: map[string]string{"running": "false"}}, api.Source{}); err != nil {
		t.Fatal(err)
	}
	before := w.Snapshot()

	log.fail = errors.New("disk full")
	_, err := w.SetSpec(ctx, api.SetRequest{Set: map[string]string{"running": "true"}}, api.Source{})
	if !errors.Is(err, log.fail) {
		t.Fatalf("set with a failing log: %v, want the append error", err)
	}
	if got := w.Snapshot(); got.Seq != before.Seq || got.Generation != before.Generation || got.Spec.Running {
		t.Fatalf("snapshot moved without an append: seq %d→%d gen %d→%d", before.Seq, got.Seq, before.Generation, got.Generation)
	}

	// Once the log works again, the next change gets the next seq and generation.
	log.fail = nil
	resp, err := w.SetSpec(ctx, api.SetRequest{Set: map[string]string{"running": "true"}}, api.Source{})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Seq != before.Seq+1 || resp.Generation != before.Generation+1 {
		t.Fatalf("after recovery: %+v, want seq %d generation %d", resp, before.Seq+1, before.Generation+1)
	}
	if got := w.Snapshot(); got.Seq != resp.Seq || !got.Spec.Running {
		t.Fatalf("snapshot after recovery: seq %d running %v", got.Seq, got.Spec.Running)
	}
}

func TestRefusedEventFailsAloneAndAppendsNothing(t *testing.T) {
	log := store.NewMem()
	w := startWriter(t, log)
	ctx := context.Background()
	if _, err := w.SetSpec(ctx, api.SetRequest{Set: map[string]string{"running": "false"}}, api.Source{}); err != nil {
		t.Fatal(err)
	}
	last := log.LastSeq()
	bad := &events.Transition{Machine: events.MachineVM, Event: "fly", From: "absent", To: "flying", Generation: 1}
	if _, err := w.Append(ctx, bad); err == nil {
		t.Fatal("the projector accepted a transition to an unknown state")
	}
	if log.LastSeq() != last {
		t.Fatalf("a refused event was appended (last seq %d → %d)", last, log.LastSeq())
	}
	// The writer keeps working, with no gap in seqs.
	envs, err := w.Append(ctx, &events.Observed{Machine: events.MachineVM, Generation: 1})
	if err != nil {
		t.Fatal(err)
	}
	if envs[0].Seq != last+1 || w.Snapshot().Seq != last+1 {
		t.Fatalf("next event got seq %d (snapshot %d), want %d", envs[0].Seq, w.Snapshot().Seq, last+1)
	}
}

// TestWriterTimesNeverDecrease: a wall clock that steps back (NTP, a
// suspended laptop) must not break the time order `status --at` searches;
// the writer stamps such commits with the previous time, also across a
// restart on the same log.
func TestWriterTimesNeverDecrease(t *testing.T) {
	t0 := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	log := store.NewMem()
	var mu sync.Mutex
	readings := []time.Time{t0.Add(10 * time.Second), t0, t0.Add(20 * time.Second), t0.Add(5 * time.Second)}
	clock := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		now := readings[0]
		if len(readings) > 1 {
			readings = readings[1:]
		}
		return now
	}
	start := func() *writer {
		proj, err := restoreProjectorFrom(log)
		if err != nil {
			t.Fatal(err)
		}
		w := newWriter(log, proj, clock, zaptest.NewLogger(t))
		ctx, cancel := context.WithCancel(context.Background())
		go w.run(ctx)
		t.Cleanup(func() { cancel(); <-w.done })
		return w
	}
	w := start()
	ctx := context.Background()
	for _, running := range []string{"true", "false", "true"} {
		if _, err := w.SetSpec(ctx, api.SetRequest{Set: map[string]string{"running": running}}, api.Source{}); err != nil {
			t.Fatal(err)
		}
	}
	// A second writer on the same log (a daemon restart) with the clock at t0+5s.
	w2 := start()
	if _, err := w2.SetSpec(ctx, api.SetRequest{Set: map[string]string{"running": "false"}}, api.Source{}); err != nil {
		t.Fatal(err)
	}
	envs, err := storetest.Collect(log, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := []time.Time{t0.Add(10 * time.Second), t0.Add(10 * time.Second), t0.Add(20 * time.Second), t0.Add(20 * time.Second)}
	if len(envs) != len(want) {
		t.Fatalf("log holds %d events, want %d", len(envs), len(want))
	}
	for i, e := range envs {
		if !e.Time.Equal(want[i]) {
			t.Errorf("event %d stamped %v, want %v", e.Seq, e.Time, want[i])
		}
	}
	// status --at between the first and third commit sees the second.
	snap, err := w2.SnapshotAt(ctx, api.At{Time: t0.Add(15 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	if snap.Seq != 2 || snap.Spec.Running {
		t.Fatalf("SnapshotAt(t0+15s) = seq %d running=%v, want seq 2 running=false", snap.Seq, snap.Spec.Running)
	}
}
