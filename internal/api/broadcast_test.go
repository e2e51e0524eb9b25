package api_test

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/rdd-project/rdd/internal/api"
	"github.com/rdd-project/rdd/internal/api/apitest"
	"github.com/rdd-project/rdd/internal/api/client"
)

// waitFor polls cond until it holds or wait passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	deadline := time.After(wait)
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("%s: not true within %v", what, wait)
		}
	}
}

// parkedWatch opens a watch on a server whose Backend has history, reads
// its first snapshot, and waits until the stream is parked with the
// broadcast.
func parkedWatch(t *testing.T, srv *apitest.Served, c *client.Client, ctx context.Context, parked int) *client.Watcher {
	t.Helper()
	w, err := c.Watch(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	if _, err := w.Next(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the stream is parked", func() bool { return srv.Server.ParkedForTest() == parked })
	return w
}

// serveWithHistory serves b after one event, so that watch streams have a
// seq to park at.
func serveWithHistory(t *testing.T, b *apitest.Backend, opts api.ServerOptions) (*apitest.Served, *client.Client) {
	t.Helper()
	b.Publish()
	srv := apitest.Serve(t, b, opts)
	waitFor(t, "the broadcast runs", srv.Server.BroadcastingForTest)
	c := client.New(srv.Socket)
	return srv, c
}

// readAll reads from each watcher until seq last, and fails unless each
// gets every seq after from, once and in order.
func readAll(t *testing.T, ws []*client.Watcher, from, last uint64) {
	t.Helper()
	errc := make(chan error, len(ws))
	for _, w := range ws {
		go func() {
			for seq := from; seq < last; {
				s, err := w.Next()
				if err != nil {
					errc <- err
					return
				}
				if s.Seq != seq+1 {
					errc <- fmt.Errorf("seq %d after %d", s.Seq, seq)
					return
				}
				seq = s.Seq
			}
			errc <- nil
		}()
	}
	for range ws {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
}

// publish publishes n snapshots, each once the Backend's buffers are
// nearly empty, so that the fake never cuts a watcher off.
func publish(b *apitest.Backend, n int) {
	for range n {
		for b.Backlog() > 4 {
			runtime.Gosched()
		}
		b.Publish()
	}
}

// parkedWatches serves b with history and opens n watches, all parked.
func parkedWatches(t *testing.T, b *apitest.Backend, n int) (*apitest.Served, []*client.Watcher) {
	t.Helper()
	srv, c := serveWithHistory(t, b, api.ServerOptions{})
	ctx := testCtx(t)
	ws := make([]*client.Watcher, n)
	for i := range ws {
		ws[i] = parkedWatch(t, srv, c, ctx, i+1)
	}
	return srv, ws
}

// Parked streams get every seq once and in order, from the broadcast or,
// handed back, from their own watch.
func TestParkedWatchersSeeEverySeqOnce(t *testing.T) {
	const watchers, total = 20, 400
	b := apitest.NewBackend()
	_, ws := parkedWatches(t, b, watchers)
	go publish(b, total)
	readAll(t, ws, 1, total+1)
}

// When the broadcast falls behind, its streams go back to their own watch
// and park again later: nothing is lost or sent twice.
func TestBroadcastFallingBehindLosesNothing(t *testing.T) {
	const watchers = 5
	b := apitest.NewBackend()
	srv, ws := parkedWatches(t, b, watchers)
	b.CutBroadcast()
	waitFor(t, "the streams are handed back", func() bool { return srv.Server.ParkedForTest() == 0 })
	publish(b, 10)
	readAll(t, ws, 1, 11)
	// A stream parks after a change once the broadcast runs again.
	waitFor(t, "the broadcast runs again", srv.Server.BroadcastingForTest)
	publish(b, 1)
	readAll(t, ws, 11, 12)
	waitFor(t, "the streams park again", func() bool { return srv.Server.ParkedForTest() == watchers })
	publish(b, 10)
	readAll(t, ws, 12, 22)
}

// A parked stream whose reader hangs up frees its slot without a change
// being written to it.
func TestParkedWatcherHangUpFreesItsSlot(t *testing.T) {
	b := apitest.NewBackend()
	srv, c := serveWithHistory(t, b, api.ServerOptions{MaxStreams: 1})
	w := parkedWatch(t, srv, c, testCtx(t), 1)
	w.Close()
	waitFor(t, "the slot is free", func() bool {
		return srv.Server.StreamsForTest() == 0 && srv.Server.ParkedForTest() == 0 && b.Watchers() == 0
	})
	w2, err := c.Watch(testCtx(t), 0)
	if err != nil {
		t.Fatalf("watch after a hang-up: %v", err)
	}
	w2.Close()
}

// A parked stream is cut off as too slow like any other, with the error line.
func TestParkedWatcherIsCutOff(t *testing.T) {
	b := apitest.NewBackend()
	srv, c := serveWithHistory(t, b, api.ServerOptions{})
	w := parkedWatch(t, srv, c, testCtx(t), 1)
	b.CutWatchers()
	if _, err := w.Next(); !client.IsTooSlow(err) {
		t.Fatalf("Next after a cut-off = %v, want TooSlow", err)
	}
}

// A parked stream ends with the shutting-down line when the server stops.
func TestParkedWatcherSeesShutdown(t *testing.T) {
	srv, c := serveWithHistory(t, apitest.NewBackend(), api.ServerOptions{})
	w := parkedWatch(t, srv, c, testCtx(t), 1)
	stopped := make(chan error, 1)
	go func() { stopped <- srv.Stop() }()
	if _, err := w.Next(); !client.IsShuttingDown(err) {
		t.Fatalf("Next during shutdown = %v, want ShuttingDown", err)
	}
	if err := <-stopped; err != nil {
		t.Fatalf("Serve: %v", err)
	}
}

// A reader that stalls while parked is handed back to its own goroutine
// with the rest of the chunk and disconnected after StreamWriteTimeout;
// the other parked reader keeps getting every change.
func TestParkedStalledReaderIsDisconnected(t *testing.T) {
	b := apitest.NewBackend()
	b.WatchBuffer = 1 << 20 // only the server may give up on the stalled reader
	srv, c := serveWithHistory(t, b, api.ServerOptions{StreamWriteTimeout: 100 * time.Millisecond, MaxStreams: 2})
	ctx := testCtx(t)
	parkedWatch(t, srv, c, ctx, 1) // never read again
	reading := parkedWatch(t, srv, c, ctx, 2)
	for srv.Server.StreamsForTest() > 1 {
		want := b.Publish().Seq
		s, err := reading.Next()
		if err != nil || s.Seq != want {
			t.Fatalf("the reading watcher: seq %d, %v; want %d", s.Seq, err, want)
		}
		if ctx.Err() != nil {
			t.Fatal("the stalled reader was not disconnected")
		}
	}
}
