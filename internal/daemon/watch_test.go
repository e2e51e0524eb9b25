package daemon

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/rdd-project/rdd/internal/api"
	"github.com/rdd-project/rdd/internal/events"
	"github.com/rdd-project/rdd/internal/store"
)

// appendN commits n events one request at a time.
func appendN(t *testing.T, w *writer, n int) {
	t.Helper()
	for range n {
		if _, err := w.Append(context.Background(), &events.Observed{Machine: events.MachineVM, Generation: 1}); err != nil {
			t.Fatal(err)
		}
	}
}

// watchAsync runs w.Watch in a goroutine. Its fn passes each batch to
// batches and then waits for a value on proceed, so the test decides when
// the watcher reads on; Watch's error arrives on the returned channel.
func watchAsync(t *testing.T, w *writer, since uint64) (batches chan []events.Snapshot, proceed chan struct{}, done chan error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	batches, proceed, done = make(chan []events.Snapshot), make(chan struct{}), make(chan error, 1)
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		done <- w.Watch(ctx, since, func(b []events.Snapshot) error {
			select {
			case batches <- append([]events.Snapshot(nil), b...):
			case <-ctx.Done():
				return ctx.Err()
			}
			select {
			case <-proceed:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()
	t.Cleanup(func() { cancel(); <-exited })
	return batches, proceed, done
}

func recv[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatal("nothing arrived within 10s")
	}
	panic("unreachable")
}

// A watcher that lags gets what it missed in batches, every seq once and
// in order, none larger than maxWatchBatch.
func TestWatchLaggingWatcherGetsEverySeqInBatches(t *testing.T) {
	w := startWriter(t, store.NewMem())
	appendN(t, w, 1)
	batches, proceed, _ := watchAsync(t, w, 0)
	first := recv(t, batches)
	if len(first) != 1 || first[0].Seq != 1 {
		t.Fatalf("first batch %v, want the current snapshot (seq 1)", seqs(first))
	}
	const burst = 3*maxWatchBatch + 5
	appendN(t, w, burst) // the watcher is held in fn meanwhile
	proceed <- struct{}{}
	next, largest := uint64(2), 0
	for next <= 1+burst {
		b := recv(t, batches)
		largest = max(largest, len(b))
		for _, s := range b {
			if s.Seq != next {
				t.Fatalf("seq %d after %d", s.Seq, next-1)
			}
			next++
		}
		proceed <- struct{}{}
	}
	if largest != maxWatchBatch {
		t.Fatalf("largest batch %d, want %d (the lag exceeds it)", largest, maxWatchBatch)
	}
}

// The ring is the bounded buffer: a watcher further behind than ringSize is
// cut off instead of holding the writer back.
func TestWatchTooFarBehindIsCutOff(t *testing.T) {
	w := startWriter(t, store.NewMem())
	appendN(t, w, 1)
	batches, proceed, done := watchAsync(t, w, 0)
	recv(t, batches)
	appendN(t, w, ringSize+1)
	proceed <- struct{}{}
	if err := recv(t, done); !errors.Is(err, api.ErrWatcherTooSlow) {
		t.Fatalf("Watch = %v, want ErrWatcherTooSlow", err)
	}
}

// A resume from before the ring is folded from the log, then continues
// from the ring without a gap.
func TestWatchResumeBeforeTheRing(t *testing.T) {
	w := startWriter(t, store.NewMem())
	appendN(t, w, ringSize+10)
	batches, proceed, _ := watchAsync(t, w, 3)
	next := uint64(4)
	for next <= ringSize+10 {
		for _, s := range recv(t, batches) {
			if s.Seq != next {
				t.Fatalf("seq %d after %d", s.Seq, next-1)
			}
			next++
		}
		proceed <- struct{}{}
	}
	appendN(t, w, 1)
	if b := recv(t, batches); len(b) != 1 || b[0].Seq != next {
		t.Fatalf("after the backlog: %v, want [%d]", seqs(b), next)
	}
}

func TestWatchEndsWhenTheWriterStops(t *testing.T) {
	w := newWriter(store.NewMem(), events.NewProjector(), time.Now, zaptest.NewLogger(t))
	ctx, cancel := context.WithCancel(context.Background())
	go w.run(ctx)
	batches, proceed, done := watchAsync(t, w, 0)
	recv(t, batches)
	proceed <- struct{}{}
	cancel()
	<-w.done
	if err := recv(t, done); !errors.Is(err, errWriterStopped) {
		t.Fatalf("Watch = %v, want errWriterStopped", err)
	}
}

func seqs(b []events.Snapshot) []uint64 {
	out := make([]uint64, len(b))
	for i, s := range b {
		out[i] = s.Seq
	}
	return out
}

// WatchReady collects a batch only after ready returns: what committed
// while the watcher waited for its write turn goes out in that one batch.
func TestWatchReadyCollectsAfterReady(t *testing.T) {
	w := startWriter(t, store.NewMem())
	appendN(t, w, 1)
	ctx, cancel := context.WithCancel(context.Background())
	readyCalled, letGo := make(chan struct{}), make(chan struct{})
	batches := make(chan []events.Snapshot, 4)
	done := make(chan error, 1)
	go func() {
		done <- w.WatchReady(ctx, 0, func() error {
			readyCalled <- struct{}{}
			<-letGo
			return nil
		}, func(b []events.Snapshot) error {
			batches <- append([]events.Snapshot(nil), b...)
			return nil
		})
	}()
	defer func() { cancel(); <-done }()
	if first := recv(t, batches); len(first) != 1 || first[0].Seq != 1 {
		t.Fatalf("first batch %v, want the current snapshot without ready", seqs(first))
	}
	appendN(t, w, 1)
	recv(t, readyCalled) // an update follows: the watcher asks for its turn
	appendN(t, w, 3)     // more commit while it waits
	letGo <- struct{}{}
	if b := recv(t, batches); len(b) != 4 || b[0].Seq != 2 || b[3].Seq != 5 {
		t.Fatalf("batch after ready %v, want seqs 2-5 in one", seqs(b))
	}
}
