package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rdd-project/rdd/internal/api"
	"github.com/rdd-project/rdd/internal/api/apitest"
	"github.com/rdd-project/rdd/internal/api/client"
	"github.com/rdd-project/rdd/internal/events"
)

// wait is how long a test waits for something that should happen at once.
const wait = 10 * time.Second

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	t.Cleanup(cancel)
	return ctx
}

// serve starts a server for a fresh Backend with n events of history.
func serve(t *testing.T, n int, opts api.ServerOptions) (*apitest.Backend, *apitest.Served, *client.Client) {
	t.Helper()
	b := apitest.NewBackend()
	for range n {
		b.Publish()
	}
	if opts.Version == "" {
		opts.Version = "1.2.3-test"
	}
	srv := apitest.Serve(t, b, opts)
	c := client.New(srv.Socket)
	return b, srv, c
}

// do sends a raw request and returns status, headers and body.
func do(t *testing.T, socket, method, target string, body io.Reader) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(testCtx(t), method, "http://rdd"+target, body)
	if err != nil {
		t.Fatal(err)
	}
	hc := apitest.HTTPClient(socket)
	defer hc.CloseIdleConnections()
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

// wantErrorBody checks a JSON error answer.
func wantErrorBody(t *testing.T, status int, body []byte, wantStatus int, wantCode string) api.ErrorBody {
	t.Helper()
	var eb api.ErrorBody
	if err := json.Unmarshal(body, &eb); err != nil {
		t.Fatalf("error body %q is not JSON: %v", body, err)
	}
	if status != wantStatus || eb.Code != wantCode || eb.Error == "" {
		t.Fatalf("got %d %+v, want %d code %s with a message", status, eb, wantStatus, wantCode)
	}
	return eb
}

func TestStatusIsTheSnapshotBytes(t *testing.T) {
	b, srv, c := serve(t, 3, api.ServerOptions{})
	status, h, body := do(t, srv.Socket, "GET", "/v1/status", nil)
	want, _ := json.Marshal(b.Snapshot())
	if status != 200 || !bytes.Equal(body, append(want, '\n')) {
		t.Fatalf("GET /v1/status = %d %s, want 200 %s", status, body, want)
	}
	if got := h.Get(api.HeaderVersion); got != "1.2.3-test" {
		t.Errorf("%s = %q", api.HeaderVersion, got)
	}
	if got := h.Get("Content-Type"); got != api.ContentTypeJSON {
		t.Errorf("Content-Type = %q", got)
	}
	raw, err := c.RawStatus(testCtx(t))
	if err != nil || !bytes.Equal(raw, body) {
		t.Fatalf("RawStatus = %q, %v; want the server's bytes %q", raw, err, body)
	}
	snap, err := c.Status(testCtx(t))
	if err != nil || snap.Seq != 3 {
		t.Fatalf("Status = seq %d, %v; want seq 3", snap.Seq, err)
	}
	h2, err := c.Healthz(testCtx(t))
	if err != nil || h2.Status != "ok" || h2.Version != "1.2.3-test" || h2.PID != os.Getpid() {
		t.Fatalf("Healthz = %+v, %v", h2, err)
	}
}

func TestCurl(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("curl is not installed (apt-get install curl); GET /v1/status over net/http is covered by TestStatusIsTheSnapshotBytes")
	}
	b, srv, _ := serve(t, 2, api.ServerOptions{})
	out, err := exec.CommandContext(testCtx(t), curl, "-sS", "--fail-with-body", "--unix-socket", srv.Socket, "http://rdd/v1/status").Output()
	if err != nil {
		t.Fatalf("curl: %v: %s", err, out)
	}
	want, _ := json.Marshal(b.Snapshot())
	if !bytes.Equal(out, append(want, '\n')) {
		t.Fatalf("curl printed %q, want %q", out, want)
	}
}

func TestStatusAt(t *testing.T) {
	_, srv, c := serve(t, 5, api.ServerOptions{})
	for _, tc := range []struct {
		name string
		at   api.At
		want uint64
	}{
		{"seq", api.At{Seq: 2}, 2},
		{"seq beyond the log is current", api.At{Seq: 99}, 5},
		{"time on an event", api.At{Time: apitest.Epoch.Add(3 * time.Second)}, 3},
		{"time between events", api.At{Time: apitest.Epoch.Add(4*time.Second + time.Millisecond)}, 4},
		{"time with offset", api.At{Time: apitest.Epoch.Add(4 * time.Second).In(time.FixedZone("x", 3600))}, 4},
		{"time before the log", api.At{Time: apitest.Epoch.Add(-time.Hour)}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			snap, err := c.StatusAt(testCtx(t), tc.at)
			if err != nil || snap.Seq != tc.want {
				t.Fatalf("StatusAt(%v) = seq %d, %v; want %d", tc.at, snap.Seq, err, tc.want)
			}
		})
	}
	// A +hh:mm offset must survive the query string.
	status, _, body := do(t, srv.Socket, "GET", "/v1/status?at=2026-11-26T13:00:03%2B01:00", nil)
	if status != 200 || !strings.Contains(string(body), `"seq":3`) {
		t.Fatalf("at with offset = %d %s", status, body)
	}
	for _, q := range []string{"at=0", "at=-1", "at=yesterday", "at=", "at=1&at=2", "at=1&watch=true", "since=3", "watch=maybe", "watch=true&since=x", "bogus=1", "at=%zz"} {
		status, _, body := do(t, srv.Socket, "GET", "/v1/status?"+q, nil)
		wantErrorBody(t, status, body, 400, api.CodeBadRequest)
	}
}

func TestNotFoundAndMethodNotAllowed(t *testing.T) {
	_, srv, _ := serve(t, 0, api.ServerOptions{})
	status, h, body := do(t, srv.Socket, "GET", "/v1/nope", nil)
	wantErrorBody(t, status, body, 404, api.CodeNotFound)
	if h.Get(api.HeaderVersion) == "" {
		t.Error("404 has no version header")
	}
	for _, tc := range []struct{ method, path, allow string }{
		{"POST", "/v1/status", "GET"},
		{"GET", "/v1/spec", "POST"},
		{"PUT", "/v1/app", "DELETE"},
		{"DELETE", "/v1/engine/images", "GET"},
	} {
		status, h, body := do(t, srv.Socket, tc.method, tc.path, nil)
		wantErrorBody(t, status, body, 405, api.CodeMethodNotAllowed)
		if got := h.Get("Allow"); got != tc.allow {
			t.Errorf("%s %s: Allow = %q, want %q", tc.method, tc.path, got, tc.allow)
		}
	}
}

func TestForbiddenPeer(t *testing.T) {
	// We run as root, whom the default policy admits: pretend only uid 4242 may.
	b, srv, c := serve(t, 1, api.ServerOptions{AllowUID: func(uid int) bool { return uid == 4242 }})
	_, err := c.Status(testCtx(t))
	if !client.IsForbidden(err) {
		t.Fatalf("Status = %v, want Forbidden", err)
	}
	var ae *client.APIError
	if !errors.As(err, &ae) || ae.Status != 403 {
		t.Fatalf("error %#v is not a 403 APIError", err)
	}
	if _, err := c.Set(testCtx(t), api.SetRequest{Set: map[string]string{"running": "true"}}); !client.IsForbidden(err) {
		t.Fatalf("Set = %v, want Forbidden", err)
	}
	if len(b.Sets()) != 0 {
		t.Fatal("a forbidden Set reached the Backend")
	}
	status, _, body := do(t, srv.Socket, "GET", "/v1/nope", nil)
	wantErrorBody(t, status, body, 403, api.CodeForbidden)
}

func TestDefaultPeerPolicyAdmitsOwner(t *testing.T) {
	b, _, c := serve(t, 0, api.ServerOptions{})
	if _, err := c.Set(testCtx(t), api.SetRequest{Set: map[string]string{"running": "true"}, Command: "rdd start"}); err != nil {
		t.Fatal(err)
	}
	sets := b.Sets()
	if len(sets) != 1 {
		t.Fatalf("Backend saw %d sets", len(sets))
	}
	if src := sets[0].Src; src.UID != os.Geteuid() || src.PID != os.Getpid() {
		t.Fatalf("Source = %+v, want uid %d pid %d (from SO_PEERCRED)", src, os.Geteuid(), os.Getpid())
	}
}

func TestSet(t *testing.T) {
	b, srv, c := serve(t, 0, api.ServerOptions{})
	resp, err := c.Set(testCtx(t), api.SetRequest{Set: map[string]string{"kubernetes.enabled": "true", "running": "true"}})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Generation != 1 || resp.Seq != 1 || !resp.Created || strings.Join(resp.Changed, ",") != "kubernetes.enabled,running" {
		t.Fatalf("Set = %+v", resp)
	}
	_, err = c.Set(testCtx(t), api.SetRequest{Set: map[string]string{"kubernetes.flavour": "x"}})
	var ae *client.APIError
	if !client.IsRejected(err) || !errors.As(err, &ae) || ae.Status != 422 || !strings.Contains(ae.Message, "kubernetes.flavour") {
		t.Fatalf("Set unknown property = %v, want 422 Rejected naming it", err)
	}
	huge := `{"set":{"running":"` + strings.Repeat("x", api.MaxRequestBytes) + `"}}`
	for name, body := range map[string]string{
		"unknown field":  `{"set":{"running":"true"},"force":true}`,
		"malformed":      `{"set":`,
		"empty":          ``,
		"trailing data":  `{"set":{}} {}`,
		"a number":       `{"set":{"running":1}}`,
		"null":           `{"set":{"running":null}}`,
		"an object":      `{"set":{"running":{"value":true}}}`,
		"larger than 1M": huge,
	} {
		t.Run(name, func(t *testing.T) {
			status, _, rb := do(t, srv.Socket, "POST", "/v1/spec", strings.NewReader(body))
			wantErrorBody(t, status, rb, 400, api.CodeBadRequest)
		})
	}
	// JSON booleans are accepted as well as strings (README: POST /v1/spec).
	status, _, rb := do(t, srv.Socket, "POST", "/v1/spec", strings.NewReader(`{"set":{"running":false,"kubernetes.enabled":"true"}}`))
	if status != 200 {
		t.Fatalf("POST /v1/spec with a JSON boolean = %d: %s", status, rb)
	}
	sets := b.Sets()
	if len(sets) != 2 || sets[1].Req.Set["running"] != "false" || sets[1].Req.Set["kubernetes.enabled"] != "true" {
		t.Fatalf("Backend got %+v", sets)
	}
	if n := len(b.Sets()); n != 2 {
		t.Fatalf("Backend applied %d sets, want 2", n)
	}
	if b.Snapshot().Seq != 2 {
		t.Fatal("a refused set appended")
	}
}

func TestDeleteApp(t *testing.T) {
	b, _, c := serve(t, 0, api.ServerOptions{})
	var ae *client.APIError
	if err := c.DeleteApp(testCtx(t)); !errors.As(err, &ae) || ae.Status != 404 {
		t.Fatalf("DeleteApp with no App = %v, want 404", err)
	}
	if _, err := c.Set(testCtx(t), api.SetRequest{Set: map[string]string{"running": "true"}}); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteApp(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	if s := b.Snapshot(); s.Exists || s.Seq != 2 {
		t.Fatalf("after delete: %+v", s)
	}
	if d := b.Deletes(); len(d) != 2 || d[1].UID != os.Geteuid() {
		t.Fatalf("Deletes = %+v", d)
	}
}

func TestEngineInventory(t *testing.T) {
	inv := &apitest.Inventory{ContainerList: []map[string]string{{"id": "c1"}}, ImageList: []string(nil)}
	_, srv, c := serve(t, 0, api.ServerOptions{Engine: inv})
	for kind, want := range map[string]string{"containers": `[{"id":"c1"}]`, "images": `[]`, "volumes": `[]`} {
		got, err := c.Engine(testCtx(t), kind)
		if err != nil || string(got) != want {
			t.Errorf("Engine(%s) = %s, %v; want %s", kind, got, err, want)
		}
	}
	if _, err := c.Engine(testCtx(t), "networks"); err == nil {
		t.Error("Engine(networks) succeeded")
	}
	inv.Err = api.Errorf(api.CodeConflict, "the container engine is not connected")
	status, _, body := do(t, srv.Socket, "GET", "/v1/engine/volumes", nil)
	wantErrorBody(t, status, body, 409, api.CodeConflict)
	inv.Err = errors.New("boom")
	status, _, body = do(t, srv.Socket, "GET", "/v1/engine/volumes", nil)
	wantErrorBody(t, status, body, 500, api.CodeInternal)

	_, srv2, _ := serve(t, 0, api.ServerOptions{})
	status, _, body = do(t, srv2.Socket, "GET", "/v1/engine/containers", nil)
	wantErrorBody(t, status, body, 404, api.CodeNotFound)
}

func TestListenSocketMode(t *testing.T) {
	old := syscall.Umask(0) // the most permissive umask: Listen must still give 0600
	defer syscall.Umask(old)
	dir := tempDir(t)
	sock := filepath.Join(dir, "sub", "rdd.sock")
	ln, err := api.Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	fi, err := os.Lstat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Type() != fs.ModeSocket || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode = %v, want socket 0600", fi.Mode())
	}
	di, err := os.Stat(filepath.Dir(sock))
	if err != nil || di.Mode().Perm() != 0o700 {
		t.Fatalf("created socket dir mode = %v, %v; want 0700", di.Mode(), err)
	}
	ln.Close()
	if _, err := os.Lstat(sock); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("socket file left after Close: %v", err)
	}
}

func TestListenReplacesStaleSocket(t *testing.T) {
	sock := filepath.Join(tempDir(t), "rdd.sock")
	dead, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	dead.SetUnlinkOnClose(false)
	dead.Close() // a daemon that died: the file stays, nobody answers
	if _, err := os.Lstat(sock); err != nil {
		t.Fatal(err)
	}
	ln, err := api.Listen(sock)
	if err != nil {
		t.Fatalf("Listen over a stale socket: %v", err)
	}
	defer ln.Close()
	go func() { // prove the new listener is the one that answers
		if c, err := ln.Accept(); err == nil {
			c.Close()
		}
	}()
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}

func TestListenRefusesLiveSocket(t *testing.T) {
	_, srv, c := serve(t, 1, api.ServerOptions{})
	_, err := api.Listen(srv.Socket)
	if !errors.Is(err, api.ErrSocketInUse) || !strings.Contains(err.Error(), "another rdd daemon") {
		t.Fatalf("Listen on a live socket = %v, want ErrSocketInUse", err)
	}
	if _, err := c.Status(testCtx(t)); err != nil {
		t.Fatalf("the live daemon was disturbed: %v", err)
	}
}

func TestListenLeavesNonSocketAlone(t *testing.T) {
	p := filepath.Join(tempDir(t), "rdd.sock")
	if err := os.WriteFile(p, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := api.Listen(p); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Fatalf("Listen over a regular file = %v", err)
	}
	if b, _ := os.ReadFile(p); string(b) != "keep me" {
		t.Fatal("Listen clobbered a regular file")
	}
}

// Issue 10 (3): a socket directory that is a symbolic link is refused, and
// its target keeps its mode.
func TestListenRefusesSymlinkedDir(t *testing.T) {
	dir := tempDir(t)
	target := filepath.Join(dir, "shared")
	if err := os.Mkdir(target, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(target, 0o777|fs.ModeSticky); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, ".rd2")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if ln, err := api.Listen(filepath.Join(link, "rdd.sock")); err == nil || !strings.Contains(err.Error(), "symbolic link") {
		if ln != nil {
			ln.Close()
		}
		t.Fatalf("Listen in a symlinked directory = %v", err)
	}
	if fi, _ := os.Stat(target); fi.Mode().Perm() != 0o777 {
		t.Fatalf("the link's target became %v", fi.Mode())
	}
	if _, err := os.Lstat(filepath.Join(target, "rdd.sock")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a socket was created through the link: %v", err)
	}
}

func tempDir(t *testing.T) string {
	dir, err := os.MkdirTemp("/tmp", "rdd-api-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func TestShutdownLetsInflightRequestFinish(t *testing.T) {
	b, srv, c := serve(t, 0, api.ServerOptions{})
	entered, release := make(chan struct{}), make(chan struct{})
	b.SetHook = func(ctx context.Context, _ api.SetRequest) error {
		close(entered)
		<-release
		return ctx.Err() // the request context must still be live
	}
	setErr := make(chan error, 1)
	go func() {
		_, err := c.Set(testCtx(t), api.SetRequest{Set: map[string]string{"running": "true"}})
		setErr <- err
	}()
	<-entered
	stopErr := make(chan error, 1)
	go func() { stopErr <- srv.Stop() }()
	// New connections are refused once shutdown began (the socket is gone).
	probe := client.New(srv.Socket)
	for {
		if _, err := probe.Healthz(testCtx(t)); client.IsDaemonNotRunning(err) {
			break
		}
		select {
		case <-stopErr:
			t.Fatal("Serve returned while a request was in flight")
		default:
		}
	}
	close(release)
	if err := <-setErr; err != nil {
		t.Fatalf("in-flight Set failed during shutdown: %v", err)
	}
	if err := <-stopErr; err != nil {
		t.Fatalf("Serve: %v", err)
	}
}

func TestShutdownGraceIsBounded(t *testing.T) {
	b, srv, c := serve(t, 0, api.ServerOptions{ShutdownGrace: 50 * time.Millisecond})
	entered := make(chan struct{})
	b.SetHook = func(ctx context.Context, _ api.SetRequest) error {
		close(entered)
		<-ctx.Done() // a handler that only stops when told to
		return ctx.Err()
	}
	setErr := make(chan error, 1)
	go func() {
		_, err := c.Set(testCtx(t), api.SetRequest{Set: map[string]string{"running": "true"}})
		setErr <- err
	}()
	<-entered
	start := time.Now()
	if err := srv.Stop(); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Serve took %v to return with a grace of 50ms", d)
	}
	if err := <-setErr; err == nil {
		t.Fatal("the stuck Set succeeded")
	}
}

func TestConcurrentClients(t *testing.T) {
	b, srv, _ := serve(t, 5, api.ServerOptions{Engine: &apitest.Inventory{}})
	const clients = 20
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- oneClient(testCtx(t), client.New(srv.Socket), i)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if got := len(b.Sets()); got != clients {
		t.Fatalf("Backend saw %d sets, want %d", got, clients)
	}
}

func oneClient(ctx context.Context, c *client.Client, i int) error {
	w, err := c.Watch(ctx, 0)
	if err != nil {
		return err
	}
	defer w.Close()
	first, err := w.Next()
	if err != nil {
		return err
	}
	for range 5 {
		if _, err := c.Status(ctx); err != nil {
			return err
		}
	}
	resp, err := c.Set(ctx, api.SetRequest{Set: map[string]string{"running": "true"}})
	if err != nil {
		return err
	}
	n := 0
	if err := c.Events(ctx, api.EventQuery{Limit: 3}, func([]byte, events.Envelope) error { n++; return nil }); err != nil || n != 3 {
		return errors.Join(err, errors.New("events: wrong count"))
	}
	if _, err := c.Engine(ctx, api.EngineImages); err != nil {
		return err
	}
	for { // the watch sees our own set, in order
		s, err := w.Next()
		if err != nil {
			return err
		}
		if s.Seq <= first.Seq {
			return errors.New("watch went backwards")
		}
		if s.Seq >= resp.Seq {
			return nil
		}
	}
}
