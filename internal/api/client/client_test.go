package client_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rdd-project/rdd/internal/api"
	"github.com/rdd-project/rdd/internal/api/apitest"
	"github.com/rdd-project/rdd/internal/api/client"
	"github.com/rdd-project/rdd/internal/events"
)

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func tempSocket(t testing.TB) string {
	dir, err := os.MkdirTemp("/tmp", "rdd-api-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "rdd.sock")
}

func TestDaemonNotRunning(t *testing.T) {
	sock := tempSocket(t)
	_, err := client.New(sock).Status(testCtx(t))
	var ce *client.ConnectError
	if !client.IsDaemonNotRunning(err) || !errors.As(err, &ce) || !errors.Is(err, syscall.ENOENT) {
		t.Fatalf("Status with no socket = %#v, want a ConnectError wrapping ENOENT", err)
	}
	msg := err.Error()
	for _, want := range []string{"cannot connect to the rdd daemon at " + sock, "no such file or directory", "start it with `rdd svc start` (or any of `rdd start|set|run`)"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q lacks %q", msg, want)
		}
	}
	if strings.Count(msg, sock) != 1 {
		t.Errorf("message %q names the socket more than once", msg)
	}

	// A socket file nobody listens on (a daemon that died) is refused.
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	_, err = client.New(sock).RawStatus(testCtx(t))
	if !client.IsDaemonNotRunning(err) || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("Status on a dead socket = %v", err)
	}

	// Giving up is not "the daemon is not running".
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := client.New(sock).Status(ctx); client.IsDaemonNotRunning(err) || !errors.Is(err, context.Canceled) {
		t.Fatalf("Status with a cancelled ctx = %v", err)
	}
}

// rawServer serves h on a fresh socket: a daemon that misbehaves on purpose.
func rawServer(t *testing.T, h http.HandlerFunc) *client.Client {
	sock := tempSocket(t)
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: h}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	c := client.New(sock)
	return c
}

func TestErrorAnswers(t *testing.T) {
	c := rawServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case api.PathSpec:
			w.WriteHeader(422)
			io.WriteString(w, `{"error":"unknown property \"x\"","code":"Rejected"}`)
		case api.PathHealthz:
			http.Error(w, "bad gateway from a proxy", 502)
		default:
			w.WriteHeader(404)
		}
	})
	_, err := c.Set(testCtx(t), api.SetRequest{Set: map[string]string{"x": "1"}})
	var ae *client.APIError
	if !client.IsRejected(err) || !errors.As(err, &ae) || ae.Status != 422 || ae.Message != `unknown property "x"` || err.Error() != ae.Message {
		t.Fatalf("Set = %#v", err)
	}
	_, err = c.Healthz(testCtx(t))
	if !errors.As(err, &ae) || ae.Status != 502 || ae.Code != api.CodeInternal || !strings.Contains(ae.Message, "bad gateway from a proxy") {
		t.Fatalf("Healthz = %#v", err)
	}
	err = c.DeleteApp(testCtx(t))
	if !errors.As(err, &ae) || ae.Status != 404 || ae.Code != api.CodeNotFound || client.IsRejected(err) || client.IsForbidden(err) {
		t.Fatalf("DeleteApp = %#v", err)
	}
}

func TestWatcherReadsAnyLineLength(t *testing.T) {
	long := `{"seq":7,"exists":true,"spec":{"namespace":"` + strings.Repeat("n", 200<<10) + `"}}`
	c := rawServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", api.ContentTypeNDJSON)
		io.WriteString(w, `{"seq":6}`+"\n"+long+"\n"+`{"error":"daemon fell over","code":"Internal"}`+"\n")
	})
	w, err := c.Watch(testCtx(t), 5)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if s, err := w.Next(); err != nil || s.Seq != 6 {
		t.Fatalf("Next = %d, %v", s.Seq, err)
	}
	raw, err := w.NextRaw()
	if err != nil || string(raw) != long {
		t.Fatalf("NextRaw of a %d-byte line = %d bytes, %v", len(long), len(raw), err)
	}
	_, err = w.Next()
	var ae *client.APIError
	if !errors.As(err, &ae) || ae.Code != api.CodeInternal || ae.Message != "daemon fell over" || ae.Status != 0 {
		t.Fatalf("Next at the error line = %#v", err)
	}
}

func TestStreamsThatEndEarly(t *testing.T) {
	c := rawServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", api.ContentTypeNDJSON)
		if r.URL.Query().Get("follow") == "true" {
			io.WriteString(w, `{"seq":1,"time":"2026-11-26T12:00:01Z","type":"AppDeleted","v":1,"data":{}}`+"\n")
			return // a follow must not end without a reason
		}
		io.WriteString(w, `{"seq":1}`+"\n"+`{"seq":2,"trunc`) // cut mid-line
	})
	w, err := c.Watch(testCtx(t), 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Next(); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Next(); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("Next on a truncated line = %v", err)
	}
	n := 0
	err = c.Events(testCtx(t), api.EventQuery{Follow: true}, func(raw []byte, e events.Envelope) error {
		n++
		return nil
	})
	if n != 1 || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("Events(follow) that the daemon ends = %d events, %v", n, err)
	}
	if err := c.Events(testCtx(t), api.EventQuery{}, func([]byte, events.Envelope) error { return nil }); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("Events cut mid-line = %v", err)
	}
}

// Closing a watch, or ending a follow's ctx, must return at once although
// the daemon keeps the stream open: the CLI closes watches when a wait
// ends, and a close that read the stream to its end never returned.
func TestClosingAnEndlessStreamReturns(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	c := rawServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", api.ContentTypeNDJSON)
		if r.URL.Query().Get("follow") == "true" {
			io.WriteString(w, `{"seq":1,"time":"2026-11-26T12:00:01Z","type":"AppDeleted","v":1,"data":{}}`+"\n")
		} else {
			io.WriteString(w, `{"seq":1}`+"\n")
		}
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	closed := make(chan error, 1)
	go func() {
		w, err := c.Watch(testCtx(t), 0)
		if err != nil {
			closed <- err
			return
		}
		if _, err := w.Next(); err != nil {
			closed <- err
			return
		}
		closed <- w.Close()
	}()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("watch: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("closing a watch the daemon keeps open did not return")
	}

	ctx, cancel := context.WithCancel(testCtx(t))
	go func() {
		closed <- c.Events(ctx, api.EventQuery{Follow: true}, func([]byte, events.Envelope) error {
			cancel()
			return nil
		})
	}()
	select {
	case err := <-closed:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("follow ended by its ctx = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ending a follow's ctx did not end it")
	}
}

// countingListener counts accepted connections.
type countingListener struct {
	net.Listener
	n atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

// Each request has a connection of its own, closed with its answer, so a
// command holds none of the daemon's capped connection slots once answered;
// a proxy set in the environment must not apply to the socket.
func TestClientConnectionPerRequest(t *testing.T) {
	t.Setenv("HTTP_PROXY", "http://127.0.0.1:1") // must not apply to the socket
	t.Setenv("http_proxy", "http://127.0.0.1:1")
	sock := tempSocket(t)
	ln, err := api.Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	cl := &countingListener{Listener: ln}
	srv := api.NewServer(apitest.NewBackend(), nil, api.ServerOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, cl) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	c := client.New(sock)
	for range 10 {
		if _, err := c.RawStatus(testCtx(t)); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Set(testCtx(t), api.SetRequest{Set: map[string]string{"running": "true"}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Engine(testCtx(t), api.EngineImages); err == nil {
		t.Fatal("Engine without an inventory succeeded")
	}
	if n := cl.n.Load(); n != 21 {
		t.Fatalf("21 requests used %d connections, want one each", n)
	}
}
