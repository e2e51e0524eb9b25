package api_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"runtime"
	"testing"
	"time"

	"github.com/rdd-project/rdd/internal/api"
	"github.com/rdd-project/rdd/internal/api/apitest"
	"github.com/rdd-project/rdd/internal/api/client"
	"github.com/rdd-project/rdd/internal/events"
)

func TestWatchFirstLineIsCurrentThenInOrder(t *testing.T) {
	b, _, c := serve(t, 3, api.ServerOptions{})
	w, err := c.Watch(testCtx(t), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	raw, err := w.NextRaw()
	if err != nil {
		t.Fatal(err)
	}
	want, _ := json.Marshal(b.Snapshot())
	if !bytes.Equal(raw, want) {
		t.Fatalf("first line = %s, want the current snapshot %s", raw, want)
	}
	var published []events.Snapshot
	for range 4 {
		published = append(published, b.Publish())
	}
	for _, p := range published {
		raw, err := w.NextRaw()
		if err != nil {
			t.Fatal(err)
		}
		want, _ := json.Marshal(p)
		if !bytes.Equal(raw, want) {
			t.Fatalf("line = %s, want %s", raw, want)
		}
	}
}

func TestWatchSinceReplaysEachSnapshotAfterSince(t *testing.T) {
	b, _, c := serve(t, 5, api.ServerOptions{})
	w, err := c.Watch(testCtx(t), 2)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for want := uint64(3); want <= 5; want++ {
		s, err := w.Next()
		if err != nil || s.Seq != want {
			t.Fatalf("Next = seq %d, %v; want %d", s.Seq, err, want)
		}
	}
	b.Publish()
	if s, err := w.Next(); err != nil || s.Seq != 6 {
		t.Fatalf("Next = seq %d, %v; want 6", s.Seq, err)
	}
	// Resuming at the head sends nothing until the next change.
	w2, err := c.Watch(testCtx(t), 6)
	if err != nil {
		t.Fatal(err)
	}
	defer w2.Close()
	b.Publish()
	if s, err := w2.Next(); err != nil || s.Seq != 7 {
		t.Fatalf("Next at head = seq %d, %v; want 7", s.Seq, err)
	}
}

// TestWatchResumeMissesNothing reconnects a watch every few snapshots (and
// whenever it is cut off as too slow) while a writer appends as fast as it
// can: the reader must still see every seq exactly once, in order.
func TestWatchResumeMissesNothing(t *testing.T) {
	const total = 300
	b := apitest.NewBackend()
	b.WatchBuffer = 8 // small, so that the reader is also cut off now and then
	srv := apitest.Serve(t, b, api.ServerOptions{})
	c := client.New(srv.Socket)
	ctx := testCtx(t)

	w, err := c.Watch(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	first, err := w.Next()
	if err != nil || first.Seq != 0 {
		t.Fatalf("first = %d, %v", first.Seq, err)
	}
	go func() {
		for range total {
			b.Publish()
		}
	}()
	last, reconnects, cuts := uint64(0), 0, 0
	for last < total {
		s, err := w.Next()
		if err == nil {
			if s.Seq != last+1 {
				t.Fatalf("after seq %d got %d", last, s.Seq)
			}
			last = s.Seq
			if last%17 != 0 {
				continue
			}
			w.Close() // resume on purpose
		} else if client.IsTooSlow(err) {
			cuts++
		} else {
			t.Fatalf("Next after seq %d: %v", last, err)
		}
		reconnects++
		if w, err = c.Watch(ctx, last); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	t.Logf("%d reconnects, %d of them after a cut-off", reconnects, cuts)
}

func TestWatchTooSlowEndsWithErrorLine(t *testing.T) {
	b, _, c := serve(t, 1, api.ServerOptions{})
	w, err := c.Watch(testCtx(t), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.Next(); err != nil {
		t.Fatal(err)
	}
	b.CutWatchers()
	_, err = w.Next()
	var ae *client.APIError
	if !client.IsTooSlow(err) || !errors.As(err, &ae) || ae.Status != 0 || ae.Message == "" {
		t.Fatalf("Next after a cut-off = %#v, want a TooSlow APIError", err)
	}
	if _, err2 := w.Next(); !errors.Is(err2, err) {
		t.Fatalf("the error is not sticky: %v", err2)
	}
}

func TestWatchCancelEndsHandler(t *testing.T) {
	b := apitest.NewBackend()
	b.WatchEnded = make(chan error, 1)
	srv := apitest.Serve(t, b, api.ServerOptions{})
	c := client.New(srv.Socket)
	ctx, cancel := context.WithCancel(testCtx(t))
	w, err := c.Watch(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Next(); err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case err := <-b.WatchEnded:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Backend.Watch ended with %v", err)
		}
	case <-time.After(wait):
		t.Fatal("the handler kept watching after the client went away")
	}
	if _, err := w.Next(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Next after cancel = %v", err)
	}
	if n := b.Watchers(); n != 0 {
		t.Fatalf("%d watchers left", n)
	}
}

// TestWatchStalledReaderIsDisconnected: a reader that stops reading must not
// keep its stream (its slot, and the Backend's Watch or the broadcast's
// attention) forever: the server gives up on it after StreamWriteTimeout.
func TestWatchStalledReaderIsDisconnected(t *testing.T) {
	b := apitest.NewBackend()
	srv := apitest.Serve(t, b, api.ServerOptions{StreamWriteTimeout: 100 * time.Millisecond})
	c := client.New(srv.Socket)
	w, err := c.Watch(testCtx(t), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	deadline := time.After(wait)
	// Fill the socket buffers until the server gives up on us.
	for srv.Server.StreamsForTest() > 0 || b.Watchers() > 0 {
		select {
		case <-deadline:
			t.Fatal("a stalled reader kept the watch open")
		default:
		}
		if b.Backlog() == 0 { // one at a time, so the Backend never cuts us off
			b.Publish()
		} else {
			runtime.Gosched()
		}
	}
}

func TestWatchEndsOnShutdown(t *testing.T) {
	_, srv, c := serve(t, 1, api.ServerOptions{})
	w, err := c.Watch(testCtx(t), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.Next(); err != nil {
		t.Fatal(err)
	}
	stopped := make(chan error, 1)
	go func() { stopped <- srv.Stop() }()
	if _, err := w.Next(); !client.IsShuttingDown(err) {
		t.Fatalf("Next during shutdown = %v, want ShuttingDown", err)
	}
	if err := <-stopped; err != nil {
		t.Fatalf("Serve: %v", err)
	}
}

func collectEvents(t *testing.T, c *client.Client, q api.EventQuery) []uint64 {
	t.Helper()
	var seqs []uint64
	err := c.Events(testCtx(t), q, func(raw []byte, e events.Envelope) error {
		want, _ := events.Marshal(e)
		if !bytes.Equal(raw, want) {
			t.Errorf("raw line %s != events.Marshal %s", raw, want)
		}
		seqs = append(seqs, e.Seq)
		return nil
	})
	if err != nil {
		t.Fatalf("Events(%+v): %v", q, err)
	}
	return seqs
}

func TestEvents(t *testing.T) {
	_, srv, c := serve(t, 10, api.ServerOptions{})
	for _, tc := range []struct {
		q    api.EventQuery
		want []uint64
	}{
		{api.EventQuery{}, []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}},
		{api.EventQuery{Since: 7}, []uint64{8, 9, 10}},
		{api.EventQuery{Since: 3, Limit: 2}, []uint64{4, 5}},
		{api.EventQuery{Since: 10}, nil},
		{api.EventQuery{Since: 99, Limit: 5}, nil},
	} {
		got := collectEvents(t, c, tc.q)
		if len(got) != len(tc.want) {
			t.Errorf("Events(%+v) = %v, want %v", tc.q, got, tc.want)
			continue
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("Events(%+v) = %v, want %v", tc.q, got, tc.want)
				break
			}
		}
	}
	for _, q := range []string{"since=-1", "limit=x", "follow=maybe", "limit=99999999999", "since=1&since=2", "watch=true"} {
		status, _, body := do(t, srv.Socket, "GET", "/v1/events?"+q, nil)
		wantErrorBody(t, status, body, 400, api.CodeBadRequest)
	}
	status, h, body := do(t, srv.Socket, "GET", "/v1/events?since=9", nil)
	if status != 200 || h.Get("Content-Type") != api.ContentTypeNDJSON || bytes.Count(body, []byte("\n")) != 1 {
		t.Fatalf("GET /v1/events?since=9 = %d %q %q", status, h.Get("Content-Type"), body)
	}
	stop := errors.New("enough")
	n := 0
	err := c.Events(testCtx(t), api.EventQuery{}, func([]byte, events.Envelope) error {
		n++
		if n == 4 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || n != 4 {
		t.Fatalf("Events stopped by fn = %v after %d", err, n)
	}
}

func TestEventsFollow(t *testing.T) {
	b, srv, c := serve(t, 10, api.ServerOptions{})
	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel()
	var seqs []uint64
	err := c.Events(ctx, api.EventQuery{Since: 8, Follow: true}, func(_ []byte, e events.Envelope) error {
		seqs = append(seqs, e.Seq)
		switch e.Seq {
		case 10: // caught up: new events must follow
			b.Publish()
			b.Publish()
		case 12:
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Events(follow) = %v, want context.Canceled", err)
	}
	if len(seqs) != 4 || seqs[0] != 9 || seqs[3] != 12 {
		t.Fatalf("followed %v, want 9..12", seqs)
	}
	// Following from the head answers at once (the header is flushed before
	// any event exists), then delivers the next event.
	ctx2, cancel2 := context.WithCancel(testCtx(t))
	defer cancel2()
	req, _ := http.NewRequestWithContext(ctx2, "GET", "http://rdd/v1/events?since=12&follow=true", nil)
	resp, err := apitest.HTTPClient(srv.Socket).Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("follow from the head: %v", err)
	}
	defer resp.Body.Close()
	b.Publish()
	line, err := bufio.NewReader(resp.Body).ReadBytes('\n')
	if err != nil || !bytes.HasPrefix(line, []byte(`{"seq":13,`)) {
		t.Fatalf("followed line %q, %v; want seq 13", line, err)
	}
}

func TestEventsFollowEndsOnShutdown(t *testing.T) {
	_, srv, c := serve(t, 2, api.ServerOptions{})
	errc := make(chan error, 1)
	caughtUp := make(chan struct{})
	go func() {
		errc <- c.Events(testCtx(t), api.EventQuery{Follow: true}, func(_ []byte, e events.Envelope) error {
			if e.Seq == 2 {
				close(caughtUp)
			}
			return nil
		})
	}()
	<-caughtUp
	if err := srv.Stop(); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if err := <-errc; !client.IsShuttingDown(err) {
		t.Fatalf("Events(follow) during shutdown = %v, want ShuttingDown", err)
	}
}

// compactedBackend answers like a daemon whose retention policy removed the
// events up to through: a read from below it is a Conflict naming the seq to
// ask again from, before the stream starts or, when the log was compacted
// while it was read, as the stream's last line.
type compactedBackend struct {
	*apitest.Backend
	through uint64
}

func (b *compactedBackend) Events(ctx context.Context, q api.EventQuery, fn func(events.Envelope) error) error {
	gone := &api.Error{Code: api.CodeConflict, Message: "events up to seq 5 were removed by the retention policy", ResumeSeq: b.through}
	if q.Since < b.through && !q.Follow {
		return gone
	}
	err := b.Backend.Events(ctx, api.EventQuery{Since: max(q.Since, b.through), Limit: 1}, fn)
	if err != nil {
		return err
	}
	return gone
}

func TestConflictCarriesResumeSeq(t *testing.T) {
	b := apitest.NewBackend()
	for range 8 {
		b.Publish()
	}
	srv := apitest.Serve(t, &compactedBackend{Backend: b, through: 5}, api.ServerOptions{Version: "test"})
	c := client.New(srv.Socket)

	status, _, body := do(t, srv.Socket, "GET", "/v1/events?since=2", nil)
	if eb := wantErrorBody(t, status, body, 409, api.CodeConflict); eb.ResumeSeq != 5 {
		t.Fatalf("409 body %s: resumeSeq %d, want 5", body, eb.ResumeSeq)
	}
	if !bytes.Contains(body, []byte(`"resumeSeq":5`)) {
		t.Fatalf("409 body %s lacks the resumeSeq field", body)
	}
	err := c.Events(testCtx(t), api.EventQuery{Since: 2}, func([]byte, events.Envelope) error { return nil })
	if seq, ok := client.ResumeSeq(err); !ok || seq != 5 {
		t.Fatalf("client.ResumeSeq(%v) = %d, %v; want 5", err, seq, ok)
	}

	// After the 200: the last line carries it.
	n := 0
	err = c.Events(testCtx(t), api.EventQuery{Since: 2, Follow: true}, func([]byte, events.Envelope) error { n++; return nil })
	if seq, ok := client.ResumeSeq(err); n != 1 || !ok || seq != 5 {
		t.Fatalf("follow: %d events then %v (resume %d, %v); want 1 event then resumeSeq 5", n, err, seq, ok)
	}

	// Errors that carry no resume seq do not pretend to.
	status, _, body = do(t, srv.Socket, "GET", "/v1/events?since=x", nil)
	wantErrorBody(t, status, body, 400, api.CodeBadRequest)
	if bytes.Contains(body, []byte("resumeSeq")) {
		t.Fatalf("400 body %s has a resumeSeq", body)
	}
}
