package api_test

import (
	"io"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/rdd-project/rdd/internal/api"
	"github.com/rdd-project/rdd/internal/api/apitest"
	"github.com/rdd-project/rdd/internal/api/client"
)

// Watch writes take turns (a few at a time); readers that stopped reading
// must not keep a turn while their write waits, or every other watcher
// would wait for their StreamWriteTimeout.
func TestStalledWatchersDoNotHoldUpOthers(t *testing.T) {
	b := apitest.NewBackendFrom(apitest.Sample())
	b.WatchBuffer = 4096 // the fake must not cut the stalled ones off first
	srv := apitest.Serve(t, b, api.ServerOptions{StreamWriteTimeout: time.Minute})
	for range 2*runtime.GOMAXPROCS(0) + 1 {
		c, err := net.DialTimeout("unix", srv.Socket, wait)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := io.WriteString(c, "GET /v1/status?watch=true HTTP/1.1\r\nHost: rdd\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
	}
	c := client.New(srv.Socket)
	w, err := c.Watch(testCtx(t), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.Next(); err != nil {
		t.Fatal(err)
	}
	// About 1 MB for each stalled reader: far beyond a socket's buffers.
	for range 600 {
		want := b.Publish().Seq
		s, err := w.Next()
		if err != nil {
			t.Fatalf("waiting for seq %d: %v", want, err)
		}
		if s.Seq != want {
			t.Fatalf("seq %d, want %d", s.Seq, want)
		}
	}
}

// A watcher that hangs up frees its stream slot without waiting for a
// change to be written to it.
func TestWatchHangUpFreesItsSlot(t *testing.T) {
	b := apitest.NewBackend()
	b.WatchEnded = make(chan error, 1)
	srv := apitest.Serve(t, b, api.ServerOptions{MaxStreams: 1})
	c := client.New(srv.Socket)
	w, err := c.Watch(testCtx(t), 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Next(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	select {
	case <-b.WatchEnded:
	case <-time.After(wait):
		t.Fatal("the watch went on after its reader hung up")
	}
	// The slot is released right after Watch returns: retry the few
	// times a 503 may come first.
	ctx := testCtx(t)
	for {
		w, err := c.Watch(ctx, 0)
		if err == nil {
			w.Close()
			return
		}
		if !client.IsUnavailable(err) {
			t.Fatalf("watch after a hang-up: %v", err)
		}
	}
}
