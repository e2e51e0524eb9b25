// Package client is the typed client of the rdd daemon's socket API
// (design.md §6); the CLI talks to the daemon only through it.
//
// It imports internal/api, internal/events and the standard library only,
// and New does no I/O, so a short command such as `rdd status -o json` pays
// for one connection and one request.
//
// A Client is safe for concurrent use.
package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/rdd-project/rdd/internal/api"
	"github.com/rdd-project/rdd/internal/events"
)

// DialTimeout bounds connecting to the socket. A daemon that is up accepts
// at once; waiting longer only delays the "not running" hint.
const DialTimeout = time.Second

// baseURL is the dummy host every request names; the transport dials the socket.
const baseURL = "http://rdd"

// Client talks to one daemon socket.
//
// Before the first byte goes out on a connection, the Client checks who
// listens on it (peer credentials): a socket served by another user's
// process is refused with an *UntrustedSocketError, so that someone who
// replaced the socket never sees a request nor answers one. Root also
// accepts the daemon of the user who owns the socket's directory, because
// the server admits root (a user's daemon serving root's `rdd` is the
// existing behaviour); a daemon of any other uid is refused to root too.
//
// Every request has a connection of its own, dialed, written and read in
// the caller's goroutine (roundTrip). http.Transport would dial and read
// in goroutines of its own; on a short command those hand-offs between
// threads cost more than the daemon takes to answer, and a local socket
// gains nothing from keeping connections alive.
type Client struct {
	socket string
	dialer net.Dialer
	// trustUID replaces the peer policy; tests use it to exercise the
	// refusal without a second user.
	trustUID func(uid int) bool
}

// New returns a Client for the daemon listening on socketPath. It does not
// connect: the first request does.
func New(socketPath string) *Client {
	return &Client{socket: socketPath, dialer: net.Dialer{Timeout: DialTimeout}}
}

// dial connects to the socket and checks who serves it.
func (c *Client) dial(ctx context.Context) (net.Conn, error) {
	conn, err := c.dialer.DialContext(ctx, "unix", c.socket)
	if err != nil {
		if ctx.Err() != nil {
			return nil, err // the caller gave up; the daemon may be fine
		}
		return nil, &ConnectError{Socket: c.socket, Err: err}
	}
	if err := c.checkPeer(conn); err != nil {
		_ = conn.Close()
		return nil, err
	}
	return conn, nil
}

// roundTrip sends req on a connection of its own and reads the answer's
// header. The body reads from the connection, which closing the body (or
// ctx ending) closes.
func (c *Client) roundTrip(ctx context.Context, req *http.Request) (*http.Response, error) {
	conn, err := c.dial(ctx)
	if err != nil {
		return nil, err
	}
	// Closing the connection is what unblocks a read or write when ctx
	// ends; AfterFunc costs no goroutine until then.
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	fail := func(err error) (*http.Response, error) {
		stop()
		_ = conn.Close()
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, ctxErr
		}
		return nil, err
	}
	req.Close = true // the server need not keep the connection for us
	var head bytes.Buffer
	err = req.Write(&head)
	if err == nil {
		_, err = conn.Write(head.Bytes())
	}
	if err != nil {
		return fail(fmt.Errorf("send %s %s to %s: %w", req.Method, req.URL.RequestURI(), c.socket, err))
	}
	resp, err := http.ReadResponse(bufio.NewReaderSize(conn, 16<<10), req)
	if err != nil {
		return fail(fmt.Errorf("read the answer to %s %s from %s: %w", req.Method, req.URL.RequestURI(), c.socket, err))
	}
	resp.Body = &connBody{ReadCloser: resp.Body, conn: conn, stop: stop}
	return resp, nil
}

// connBody closes the connection with the body.
type connBody struct {
	io.ReadCloser
	conn net.Conn
	stop func() bool
}

// Close closes the connection first: closing a body that http.ReadResponse
// made reads it to its end, which for a watch or follow stream is never.
func (b *connBody) Close() error {
	b.stop()
	err := b.conn.Close()
	_ = b.ReadCloser.Close() // fails at once on the closed connection
	return err
}

// checkPeer refuses a connection whose listening process is not trusted.
func (c *Client) checkPeer(conn net.Conn) error {
	uc, ok := conn.(*net.UnixConn)
	if !ok {
		return &UntrustedSocketError{Socket: c.socket, UID: -1, Err: fmt.Errorf("%T is not a Unix socket connection", conn)}
	}
	peer, err := api.PeerCred(uc)
	if err != nil {
		return &UntrustedSocketError{Socket: c.socket, UID: -1, Err: err}
	}
	if c.trusted(peer.UID) {
		return nil
	}
	return &UntrustedSocketError{Socket: c.socket, UID: peer.UID, PID: peer.PID}
}

func (c *Client) trusted(uid int) bool {
	if c.trustUID != nil {
		return c.trustUID(uid)
	}
	euid := os.Geteuid()
	if uid == euid {
		return true
	}
	if euid != 0 {
		return false
	}
	owner, ok := dirOwner(filepath.Dir(c.socket))
	return ok && uid == owner
}

// Socket returns the socket path the Client dials.
func (c *Client) Socket() string { return c.socket }

// Healthz asks whether the daemon serves (GET /v1/healthz).
func (c *Client) Healthz(ctx context.Context) (api.Health, error) {
	var h api.Health
	return h, c.getJSON(ctx, api.PathHealthz, &h)
}

// RawStatus returns the current snapshot exactly as the daemon sent it
// (json.Marshal of events.Snapshot plus '\n'), for `rdd status -o json`.
func (c *Client) RawStatus(ctx context.Context) ([]byte, error) {
	return c.get(ctx, api.PathStatus)
}

// RawStatusAt is RawStatus for the snapshot at a point in the past.
func (c *Client) RawStatusAt(ctx context.Context, at api.At) ([]byte, error) {
	s := at.String()
	if s == "" {
		return nil, errors.New("status at: give a seq ≥ 1 or a time")
	}
	return c.get(ctx, api.PathStatus+"?at="+url.QueryEscape(s))
}

// Status returns the current snapshot.
func (c *Client) Status(ctx context.Context) (events.Snapshot, error) {
	return decodeSnapshot(c.RawStatus(ctx))
}

// StatusAt returns the snapshot after the event at.Seq, or after the last
// event at or before at.Time. An at beyond the log is the current snapshot.
func (c *Client) StatusAt(ctx context.Context, at api.At) (events.Snapshot, error) {
	return decodeSnapshot(c.RawStatusAt(ctx, at))
}

func decodeSnapshot(b []byte, err error) (events.Snapshot, error) {
	var s events.Snapshot
	if err != nil {
		return s, err
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return events.Snapshot{}, fmt.Errorf("decode snapshot: %w", err)
	}
	return s, nil
}

// Set sends a spec change (POST /v1/spec). A refused property or value is
// an *APIError for which IsRejected is true; nothing was written then.
func (c *Client) Set(ctx context.Context, req api.SetRequest) (api.SetResponse, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return api.SetResponse{}, fmt.Errorf("encode set request: %w", err)
	}
	resp, err := c.do(ctx, http.MethodPost, api.PathSpec, body)
	if err != nil {
		return api.SetResponse{}, err
	}
	defer resp.Body.Close()
	var out api.SetResponse
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return api.SetResponse{}, fmt.Errorf("decode set answer: %w", err)
	}
	return out, nil
}

// DeleteApp deletes the App (DELETE /v1/app); the daemon stops and cleans
// up first, so give ctx a generous deadline.
func (c *Client) DeleteApp(ctx context.Context) error {
	resp, err := c.do(ctx, http.MethodDelete, api.PathApp, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	return err
}

// Engine returns the engine inventory of kind (one of api.EngineKinds) as
// the JSON array the daemon sent.
func (c *Client) Engine(ctx context.Context, kind string) (json.RawMessage, error) {
	known := false
	for _, k := range api.EngineKinds {
		known = known || k == kind
	}
	if !known {
		return nil, fmt.Errorf("unknown engine inventory %q (want one of %v)", kind, api.EngineKinds)
	}
	b, err := c.get(ctx, api.PathEngine+kind)
	return json.RawMessage(bytes.TrimSuffix(b, []byte("\n"))), err
}

// Events calls fn for each event with seq > q.Since, in order, up to q.Limit
// (GET /v1/events); with q.Follow it then waits for new ones until ctx ends,
// and returns ctx's error. raw is the line the daemon sent (events.Marshal
// of e, without '\n'): the export format. raw is valid only during fn.
// An error fn returns ends the stream and is returned.
func (c *Client) Events(ctx context.Context, q api.EventQuery, fn func(raw []byte, e events.Envelope) error) error {
	path := api.PathEvents + "?since=" + strconv.FormatUint(q.Since, 10)
	if q.Limit > 0 {
		path += "&limit=" + strconv.Itoa(q.Limit)
	}
	if q.Follow {
		path += "&follow=true"
	}
	resp, err := c.do(ctx, http.MethodGet, path, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	lr := newLineReader(resp.Body)
	for {
		line, err := lr.next()
		if errors.Is(err, io.EOF) && !q.Follow {
			return nil
		}
		if err != nil {
			return streamError(ctx, "events", err)
		}
		if err := lineError(line); err != nil {
			return err
		}
		var e events.Envelope
		if err := json.Unmarshal(line, &e); err != nil {
			return fmt.Errorf("decode event: %w", err)
		}
		if err := fn(line, e); err != nil {
			return err
		}
	}
}

// streamError explains why reading a stream failed.
func streamError(ctx context.Context, what string, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return ctxErr
	}
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("%s: the rdd daemon ended the stream: %w", what, err)
}

// get performs a GET and returns the whole body.
func (c *Client) get(ctx context.Context, pathQuery string) ([]byte, error) {
	resp, err := c.do(ctx, http.MethodGet, pathQuery, nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	if n := resp.ContentLength; n > 0 && n < 1<<30 {
		buf.Grow(int(n) + bytes.MinRead) // one read, no regrowth
	}
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		return nil, fmt.Errorf("read %s answer: %w", pathQuery, err)
	}
	return buf.Bytes(), nil
}

func (c *Client) getJSON(ctx context.Context, pathQuery string, v any) error {
	b, err := c.get(ctx, pathQuery)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("decode %s answer: %w", pathQuery, err)
	}
	return nil
}

// do sends one request. A non-2xx answer is returned as an *APIError, a
// failure to connect as a *ConnectError.
func (c *Client) do(ctx context.Context, method, pathQuery string, body []byte) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, baseURL+pathQuery, rd)
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", api.ContentTypeJSON)
	}
	resp, err := c.roundTrip(ctx, req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		defer resp.Body.Close()
		return nil, readAPIError(resp)
	}
	return resp, nil
}
