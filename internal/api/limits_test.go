package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/rdd-project/rdd/internal/api"
	"github.com/rdd-project/rdd/internal/api/client"
	"github.com/rdd-project/rdd/internal/events"
)

// rawConn is one hand-driven HTTP/1.1 connection to the socket.
type rawConn struct {
	net.Conn
	br *bufio.Reader
}

// trickle sends on rc the headers of a set request announcing a 100 kB
// body, then a byte of the body every interval, until the server closes
// the connection or stop is closed.
func trickle(t *testing.T, rc *rawConn, every time.Duration, stop <-chan struct{}) {
	t.Helper()
	if _, err := io.WriteString(rc, "POST /v1/spec HTTP/1.1\r\nHost: rdd\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"); err != nil {
		t.Fatal(err)
	}
	go func() {
		tick := time.NewTicker(every)
		defer tick.Stop()
		for range 100000 {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			if _, err := rc.Write([]byte(" ")); err != nil {
				return
			}
		}
	}()
}

func dialRaw(t *testing.T, socket string) *rawConn {
	t.Helper()
	c, err := net.DialTimeout("unix", socket, wait)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(wait))
	return &rawConn{Conn: c, br: bufio.NewReader(c)}
}

// get sends a GET and returns the answer with its body read.
func (c *rawConn) get(t *testing.T, path string, header ...string) (*http.Response, []byte) {
	t.Helper()
	req := "GET " + path + " HTTP/1.1\r\nHost: rdd\r\n" + strings.Join(header, "") + "\r\n"
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatalf("send %s: %v", path, err)
	}
	return c.read(t)
}

func (c *rawConn) read(t *testing.T) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		t.Fatalf("read answer: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read answer body: %v", err)
	}
	return resp, b
}

// Issue 10 (4): connections that sent their headers and then trickled a body
// were never timed out. Each trickler here sends a byte every 10 ms, forever
// unless cut: the server must answer 408 within the body deadline and close,
// while healthz keeps answering.
func TestTricklingBodyIsCut(t *testing.T) {
	const deadline = 300 * time.Millisecond
	const tricklers = 8
	_, srv, c := serve(t, 1, api.ServerOptions{BodyReadTimeout: deadline, MaxConns: tricklers + 2})
	type result struct {
		status  int
		body    []byte
		elapsed time.Duration
		err     error
	}
	results := make(chan result, tricklers)
	stop := make(chan struct{})
	defer close(stop)
	for range tricklers {
		rc := dialRaw(t, srv.Socket)
		start := time.Now()
		trickle(t, rc, 10*time.Millisecond, stop)
		go func() {
			resp, err := http.ReadResponse(rc.br, nil)
			if err != nil {
				results <- result{err: err}
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			// The server closes after a cut body; with our trickle unread,
			// a Unix socket reports that as a reset.
			_, eof := rc.br.ReadByte()
			if !errors.Is(eof, io.EOF) && !errors.Is(eof, syscall.ECONNRESET) {
				err = fmt.Errorf("connection still open after the 408: %v", eof)
			}
			results <- result{status: resp.StatusCode, body: b, elapsed: time.Since(start), err: err}
		}()
	}
	for i := range 3 { // while they trickle
		if _, err := c.Healthz(testCtx(t)); err != nil {
			t.Fatalf("healthz %d while %d connections trickle: %v", i, tricklers, err)
		}
	}
	for range tricklers {
		r := <-results
		if r.err != nil {
			t.Fatal(r.err)
		}
		eb := wantErrorBody(t, r.status, r.body, http.StatusRequestTimeout, api.CodeRequestTimeout)
		if !strings.Contains(eb.Error, "did not arrive within 300ms") {
			t.Errorf("408 message %q does not say what the limit is", eb.Error)
		}
		if r.elapsed < deadline || r.elapsed > deadline+3*time.Second {
			t.Errorf("trickler cut after %v, want just after %v", r.elapsed, deadline)
		}
	}
	if _, err := c.Healthz(testCtx(t)); err != nil {
		t.Fatalf("healthz after the cut: %v", err)
	}
}

// A body that arrives in time lifts the deadline: a set whose backend takes
// longer than the body deadline still answers (net/http's background read
// must not hit the deadline and cancel the request).
func TestSlowHandlerOutlivesBodyDeadline(t *testing.T) {
	const deadline = 100 * time.Millisecond
	b, _, c := serve(t, 1, api.ServerOptions{BodyReadTimeout: deadline})
	b.SetHook = func(ctx context.Context, _ api.SetRequest) error {
		timer := time.NewTimer(3 * deadline) // work that takes longer than the body deadline
		defer timer.Stop()
		select {
		case <-ctx.Done():
			return fmt.Errorf("request cancelled after its body arrived: %w", context.Cause(ctx))
		case <-timer.C:
			return nil
		}
	}
	if _, err := c.Set(testCtx(t), api.SetRequest{Set: map[string]string{"running": "true"}}); err != nil {
		t.Fatal(err)
	}
}

// Issue 10 (4): 21,000 connections took the daemon to its fd limit. Past
// MaxConns a connection is answered 503 with a JSON error, and the
// connections within the cap keep working. (Health checks have a reserve
// past the cap: TestHealthzReserveIsBounded.)
func TestConnectionCapAnswers503(t *testing.T) {
	const maxConns = 4
	_, srv, _ := serve(t, 1, api.ServerOptions{MaxConns: maxConns})
	held := make([]*rawConn, maxConns)
	for i := range held {
		held[i] = dialRaw(t, srv.Socket)
		if resp, _ := held[i].get(t, api.PathHealthz); resp.StatusCode != 200 {
			t.Fatalf("connection %d within the cap: %s", i, resp.Status)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, maxConns+10)
	for i := range maxConns + 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.DialTimeout("unix", srv.Socket, wait)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(wait))
			if _, err := io.WriteString(c, "GET /v1/status HTTP/1.1\r\nHost: rdd\r\n\r\n"); err != nil {
				errs <- fmt.Errorf("over-cap connection %d: send: %w", i, err)
				return
			}
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				errs <- fmt.Errorf("over-cap connection %d: %w", i, err)
				return
			}
			defer resp.Body.Close()
			var eb api.ErrorBody
			if err := json.NewDecoder(resp.Body).Decode(&eb); err != nil || resp.StatusCode != 503 || eb.Code != api.CodeUnavailable || !strings.Contains(eb.Error, "4 connections open") || !resp.Close {
				errs <- fmt.Errorf("over-cap connection %d: %s %+v (%v), want 503 Unavailable naming the cap, then close", i, resp.Status, eb, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	_, err := client.New(srv.Socket).Status(testCtx(t))
	if !client.IsUnavailable(err) {
		t.Fatalf("client over the cap: %v, want IsUnavailable", err)
	}
	// Within the cap the daemon still answers at once.
	for i, rc := range held {
		if resp, _ := rc.get(t, api.PathHealthz); resp.StatusCode != 200 {
			t.Fatalf("held connection %d at the cap: %s", i, resp.Status)
		}
	}
	// A connection that ends frees its slot before the client sees the end.
	if resp, _ := held[0].get(t, api.PathHealthz, "Connection: close\r\n"); resp.StatusCode != 200 {
		t.Fatal(resp.Status)
	}
	if _, err := held[0].br.ReadByte(); !errors.Is(err, io.EOF) {
		t.Fatalf("after Connection: close: %v, want EOF", err)
	}
	c := client.New(srv.Socket)
	if _, err := c.Healthz(testCtx(t)); err != nil {
		t.Fatalf("healthz once a slot is free: %v", err)
	}
}

// Past MaxConns+MaxStreams connections, whatever they would carry, the
// listener itself answers 503 and closes: the descriptors stay bounded.
func TestConnectionTotalCapAnswers503(t *testing.T) {
	_, srv, _ := serve(t, 1, api.ServerOptions{MaxConns: 1, MaxStreams: 1})
	plain := dialRaw(t, srv.Socket)
	if resp, _ := plain.get(t, api.PathHealthz); resp.StatusCode != 200 {
		t.Fatal(resp.Status)
	}
	w, err := client.New(srv.Socket).Watch(testCtx(t), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for i := range 10 {
		rc := dialRaw(t, srv.Socket)
		resp, body := rc.get(t, api.PathHealthz)
		eb := wantErrorBody(t, resp.StatusCode, body, 503, api.CodeUnavailable)
		if !strings.Contains(eb.Error, "2 connections and streams open") || !resp.Close || resp.Header.Get(api.HeaderVersion) == "" {
			t.Fatalf("connection %d past the total: %+v close=%v", i, eb, resp.Close)
		}
	}
	if resp, _ := plain.get(t, api.PathHealthz); resp.StatusCode != 200 {
		t.Fatalf("the admitted connection at the total cap: %s", resp.Status)
	}
	if _, err := w.Next(); err != nil {
		t.Fatalf("the admitted watch at the total cap: %v", err)
	}
}

// Watch streams have their own cap, apart from the connection cap: streams
// up to MaxStreams leave the connection slots free, one more is answered
// 503, and an ended stream frees its slot.
func TestStreamCapAnswers503(t *testing.T) {
	const maxStreams = 3
	b, srv, c := serve(t, 1, api.ServerOptions{MaxStreams: maxStreams, MaxConns: 2})
	var ws []*client.Watcher
	for i := range maxStreams {
		w, err := client.New(srv.Socket).Watch(testCtx(t), 0)
		if err != nil {
			t.Fatalf("watch %d: %v", i, err)
		}
		defer w.Close()
		if _, err := w.Next(); err != nil {
			t.Fatal(err)
		}
		ws = append(ws, w)
	}
	if _, err := c.Healthz(testCtx(t)); err != nil {
		t.Fatalf("healthz with %d streams open and MaxConns 2: %v", maxStreams, err)
	}
	x := client.New(srv.Socket) // one connection, kept alive across the refusals
	_, err := x.Watch(testCtx(t), 0)
	if !client.IsUnavailable(err) || !strings.Contains(err.Error(), "3 watch and follow streams") {
		t.Fatalf("watch over the cap = %v, want 503 Unavailable naming the cap", err)
	}
	err = x.Events(testCtx(t), api.EventQuery{Follow: true}, func([]byte, events.Envelope) error { return nil })
	if !client.IsUnavailable(err) {
		t.Fatalf("follow over the cap = %v, want 503 Unavailable", err)
	}
	if err := x.Events(testCtx(t), api.EventQuery{}, func([]byte, events.Envelope) error { return nil }); err != nil {
		t.Fatalf("events without follow is no stream: %v", err)
	}
	// A stream's slot is free before its last line is sent.
	b.CutWatchers()
	if _, err := ws[0].Next(); !client.IsTooSlow(err) {
		t.Fatalf("cut watcher: %v", err)
	}
	w, err := x.Watch(testCtx(t), 0)
	if err != nil {
		t.Fatalf("watch after one was cut: %v", err)
	}
	w.Close()
}

// Issue 10 (4): the client-supplied command (up to 1 MB) was stored in every
// event. It is cut to MaxCommandBytes, at a character boundary, and marked.
func TestLongCommandIsCutAndMarked(t *testing.T) {
	b, _, c := serve(t, 0, api.ServerOptions{})
	long := "rdd set running=true # " + strings.Repeat("é", 32<<10)
	if _, err := c.Set(testCtx(t), api.SetRequest{Set: map[string]string{"running": "true"}, Command: long}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Set(testCtx(t), api.SetRequest{Set: map[string]string{"running": "true"}, Command: "rdd set running=true"}); err != nil {
		t.Fatal(err)
	}
	sets := b.Sets()
	got := sets[0].Req.Command
	mark := fmt.Sprintf(" …[cut: %d bytes]", len(long))
	if len(got) > api.MaxCommandBytes || len(got) < api.MaxCommandBytes-len(mark)-utf8.UTFMax || !utf8.ValidString(got) || !strings.HasSuffix(got, mark) || !strings.HasPrefix(long, strings.TrimSuffix(got, mark)) {
		t.Fatalf("stored command: %d bytes, valid UTF-8 %v, ends %q; want ≤ %d bytes, a prefix of the original, marked %q",
			len(got), utf8.ValidString(got), got[max(0, len(got)-40):], api.MaxCommandBytes, mark)
	}
	if sets[1].Req.Command != "rdd set running=true" {
		t.Fatalf("a short command changed: %q", sets[1].Req.Command)
	}
}

// Issue 10 (4): duplicate JSON keys were accepted, the last one winning, and
// encoding/json matches field names regardless of case.
func TestDuplicateAndCaseVariantKeysAre400(t *testing.T) {
	b, srv, _ := serve(t, 0, api.ServerOptions{})
	for _, tc := range []struct{ body, want string }{
		{`{"set":{"running":"true"},"set":{"running":"false"}}`, `duplicate key "set" in the request body`},
		{`{"set":{"running":"true","running":"false"}}`, `duplicate key "running" in "set" of the request body`},
		{`{"set":{"running":"true"},"SET":{"running":"false"}}`, `keys "set" and "SET" in the request body differ only in case`},
		{`{"Set":{"running":"true"}}`, `unknown key "Set" in the request body: keys are case-sensitive, did you mean "set"?`},
		{`{"set":{"running":"true"},"dryrun":true}`, `did you mean "dryRun"?`},
		{`{"set":{"kubernetes.enabled":"true","Kubernetes.Enabled":"false"}}`, `keys "kubernetes.enabled" and "Kubernetes.Enabled" in "set" of the request body differ only in case`},
		{`{"set":{"k":"1","\u212a":"2"}}`, `differ only in case`}, // the Kelvin sign folds to k
	} {
		status, _, body := do(t, srv.Socket, "POST", api.PathSpec, strings.NewReader(tc.body))
		eb := wantErrorBody(t, status, body, 400, api.CodeBadRequest)
		if !strings.Contains(eb.Error, tc.want) {
			t.Errorf("%s: %q, want it to contain %q", tc.body, eb.Error, tc.want)
		}
	}
	if n := len(b.Sets()); n != 0 {
		t.Fatalf("%d refused bodies reached the backend", n)
	}
	status, _, body := do(t, srv.Socket, "POST", api.PathSpec, strings.NewReader(`{"set":{"running":"true","kubernetes.enabled":"true"},"dryRun":true,"command":"rdd set"}`))
	if status != 200 {
		t.Fatalf("a body without duplicates: %d %s", status, body)
	}
}
