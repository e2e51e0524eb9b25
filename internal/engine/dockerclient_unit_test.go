package engine

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
)

// Tests of dockerClient against httptest servers; the real dockerd is in
// dockerclient_docker_test.go.

const streamTimeout = 10 * time.Second

// serveUnix serves h on a Unix socket in a temp dir and returns its host.
func serveUnix(t *testing.T, h http.Handler) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "d.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	_ = srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	return "unix://" + sock
}

func mustClient(t *testing.T, host string) *dockerClient {
	t.Helper()
	c, err := newDockerClient(host, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestNegotiateAPIVersion(t *testing.T) {
	for _, tc := range []struct{ server, want string }{
		{"1.41", "1.41"},
		{"1.45", "1.45"},
		{"1.47", "1.47"},
		{"1.50", "1.47"},
		{"1.100", "1.47"},
		{"2.0", "1.47"},
		{"1.40", "1.41"},
		{"1.9", "1.41"}, // numeric, not string, order
		{"1.24", "1.41"},
		{"", "1.41"},
		{"1", "1.41"},
		{"1.x", "1.41"},
		{"1.45.1", "1.41"},
		{"-1.50", "1.41"},
	} {
		if got := negotiateAPIVersion(tc.server); got != tc.want {
			t.Errorf("negotiateAPIVersion(%q) = %q, want %q", tc.server, got, tc.want)
		}
	}
}

// pingInfoServer announces version (no header when empty) on /_ping and
// records the path and Host header of the other requests.
func pingInfoServer(version string, paths chan<- string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/_ping" {
			if version != "" {
				w.Header().Set("API-Version", version)
			}
			w.Header().Set("OSType", "linux")
			_, _ = io.WriteString(w, "OK")
			return
		}
		paths <- r.Host + " " + r.URL.Path
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"ServerVersion":"99.0","SystemTime":"2026-01-02T03:04:05.000000006Z"}`)
	})
}

func TestDockerClientNegotiation(t *testing.T) {
	for _, tc := range []struct{ server, want string }{
		{"1.41", "1.41"},
		{"1.50", "1.47"},
		{"1.44", "1.44"},
		{"1.40", "1.41"},
		{"", "1.41"},
	} {
		t.Run("server "+tc.server, func(t *testing.T) {
			paths := make(chan string, 1)
			c := mustClient(t, serveUnix(t, pingInfoServer(tc.server, paths)))
			if v := c.ClientVersion(); v != minAPIVersion {
				t.Fatalf("version before negotiation = %q", v)
			}
			p, err := c.Ping(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if p.APIVersion != tc.server || p.OSType != "linux" {
				t.Fatalf("ping = %+v", p)
			}
			c.NegotiateAPIVersionPing(p)
			if v := c.ClientVersion(); v != tc.want {
				t.Fatalf("ClientVersion = %q, want %q", v, tc.want)
			}
			info, err := c.Info(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if info.ServerVersion != "99.0" {
				t.Fatalf("info = %+v", info)
			}
			if got, want := <-paths, unixHost+" /v"+tc.want+"/info"; got != want {
				t.Fatalf("request %q, want %q", got, want)
			}
		})
	}
}

func TestDockerClientTCP(t *testing.T) {
	paths := make(chan string, 1)
	srv := httptest.NewServer(http.StripPrefix("/base", pingInfoServer("1.50", paths)))
	t.Cleanup(srv.Close)
	addr := srv.Listener.Addr().String()
	c := mustClient(t, "tcp://"+addr+"/base")
	p, err := c.Ping(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	c.NegotiateAPIVersionPing(p)
	if _, err := c.Info(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got, want := <-paths, addr+" /v1.47/info"; got != want {
		t.Fatalf("request %q, want %q", got, want)
	}
}

func TestDockerClientTLS(t *testing.T) {
	srv := httptest.NewTLSServer(pingInfoServer("1.41", nil))
	t.Cleanup(srv.Close)
	tlsCfg := srv.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
	c, err := newDockerClient("tcp://"+srv.Listener.Addr().String(), tlsCfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if p, err := c.Ping(t.Context()); err != nil || p.APIVersion != "1.41" {
		t.Fatalf("ping over TLS = %+v, %v", p, err)
	}
	// Without TLS, the TLS server answers 400 to plain HTTP.
	plain := mustClient(t, "tcp://"+srv.Listener.Addr().String())
	if _, err := plain.Ping(t.Context()); err == nil {
		t.Fatal("plain HTTP ping to a TLS server succeeded")
	}
}

func TestNewDockerClientBadHost(t *testing.T) {
	for _, host := range []string{"", "/var/run/docker.sock", "unix://", "ssh://u@h", "npipe:////./pipe/docker_engine", "tcp://127.0.0.1", "tcp://[::1"} {
		if _, err := newDockerClient(host, nil); err == nil || !strings.Contains(err.Error(), "docker host") {
			t.Errorf("newDockerClient(%q) error = %v", host, err)
		}
	}
}

func TestDockerClientResponseErrors(t *testing.T) {
	for _, tc := range []struct {
		name        string
		status      int
		ctype, body string
		want        string
		class       error
	}{
		{"json message", 404, "application/json", `{"message":"No such image: x:latest"}` + "\n", "daemon returned 404 Not Found: No such image: x:latest", cerrdefs.ErrNotFound},
		{"json without message", 409, "application/json", `{}`, "daemon returned 409 Conflict", cerrdefs.ErrConflict},
		{"text body", 500, "text/plain; charset=utf-8", "boom\n", "daemon returned 500 Internal Server Error: boom", cerrdefs.ErrInternal},
		{"empty body", 502, "", "", "daemon returned 502 Bad Gateway", cerrdefs.ErrInternal},
		{"other 4xx", 418, "application/json", `{"message":"teapot"}`, "daemon returned 418 I'm a teapot: teapot", cerrdefs.ErrInvalidArgument},
		{"redirect", 301, "", "", "daemon returned 301 Moved Permanently", cerrdefs.ErrUnknown},
		{"version too new", 400, "application/json", `{"message":"client version 1.41 is too new. Maximum supported API version is 1.40"}`,
			"daemon returned 400 Bad Request: client version 1.41 is too new. Maximum supported API version is 1.40", cerrdefs.ErrInvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := mustClient(t, serveUnix(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				if tc.ctype != "" {
					w.Header().Set("Content-Type", tc.ctype)
				}
				if tc.status == 301 {
					w.Header().Set("Location", "/elsewhere")
				}
				w.WriteHeader(tc.status)
				_, _ = io.WriteString(w, tc.body)
			})))
			_, err := c.ImageInspect(t.Context(), "x:latest")
			if err == nil || err.Error() != tc.want {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			var ae *apiError
			if !errors.As(err, &ae) || ae.Status != tc.status {
				t.Fatalf("err %#v is not an apiError with status %d", err, tc.status)
			}
			if !errors.Is(err, tc.class) {
				t.Fatalf("errors.Is(%v, %v) = false", err, tc.class)
			}
			// Ping reports the same errors (it reads headers first).
			if _, err := c.Ping(t.Context()); err == nil || err.Error() != tc.want {
				t.Fatalf("ping err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestDockerClientBadJSON(t *testing.T) {
	c := mustClient(t, serveUnix(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, `{"Volumes":[`)
	})))
	_, err := c.VolumeList(t.Context(), volumeListOptions{})
	if err == nil || !strings.HasPrefix(err.Error(), "decode /v1.41/volumes: ") || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("err = %v", err)
	}
}

func TestDockerClientEmptyIDs(t *testing.T) {
	c := mustClient(t, "unix:///nonexistent/docker.sock")
	if _, err := c.ImageInspect(t.Context(), ""); !cerrdefs.IsNotFound(err) {
		t.Errorf("ImageInspect(\"\") = %v", err)
	}
	if _, err := c.VolumeInspect(t.Context(), ""); !cerrdefs.IsInvalidArgument(err) {
		t.Errorf("VolumeInspect(\"\") = %v", err)
	}
}

// TestDockerClientConnectErrors: a failed dial keeps the reason.
func TestDockerClientConnectErrors(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.sock")
	refused := filepath.Join(dir, "refused.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: refused, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false) // keep the file: connecting to it is refused
	_ = ln.Close()

	for _, tc := range []struct {
		sock string
		want error
	}{
		{missing, syscall.ENOENT},
		{refused, syscall.ECONNREFUSED},
	} {
		host := "unix://" + tc.sock
		c := mustClient(t, host)
		_, err := c.Ping(t.Context())
		var ce *connectError
		var op *net.OpError
		if !errors.As(err, &ce) || !errors.As(err, &op) || !errors.Is(err, tc.want) {
			t.Fatalf("ping %s: err = %#v, want a connectError wrapping %v", tc.sock, err, tc.want)
		}
		if !strings.HasPrefix(err.Error(), "cannot connect to the Docker daemon at "+host+": dial unix "+tc.sock+": ") ||
			!strings.HasSuffix(err.Error(), tc.want.Error()) {
			t.Fatalf("ping %s: message %q", tc.sock, err)
		}
	}
}

// streamServer answers /events with the lines it gets on lines, flushing
// each, until lines is closed (the handler returns: a clean end) or the
// client goes away. It sends the request's query on queries.
func streamServer(lines <-chan string, queries chan<- string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasSuffix(r.URL.Path, "/events") {
			http.NotFound(w, r)
			return
		}
		queries <- r.URL.RawQuery
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					return
				}
				_, _ = io.WriteString(w, l)
				w.(http.Flusher).Flush()
			case <-r.Context().Done():
				return
			}
		}
	})
}

// recvMsg waits for the next message; it fails on an error or timeout.
func recvMsg(t *testing.T, msgs <-chan eventMessage, errs <-chan error) eventMessage {
	t.Helper()
	select {
	case m := <-msgs:
		return m
	case err := <-errs:
		t.Fatalf("stream ended: %v", err)
	case <-time.After(streamTimeout):
		t.Fatal("no event")
	}
	return eventMessage{}
}

// recvEnd waits for the stream's error and for errs to be closed.
func recvEnd(t *testing.T, errs <-chan error) error {
	t.Helper()
	deadline := time.After(streamTimeout)
	var got error
	n := 0
	for {
		select {
		case err, ok := <-errs:
			if !ok {
				if n != 1 {
					t.Fatalf("errs closed after %d errors, want 1", n)
				}
				return got
			}
			got = err
			n++
		case <-deadline:
			t.Fatal("error channel not closed")
		}
	}
}

func TestDockerClientEvents(t *testing.T) {
	for _, tc := range []struct {
		name string
		end  func(lines chan<- string, cancel context.CancelFunc)
		want error
	}{
		{"daemon closes the stream", func(lines chan<- string, _ context.CancelFunc) { close(lines) }, io.EOF},
		{"stream breaks mid-message", func(lines chan<- string, _ context.CancelFunc) {
			lines <- `{"Type":"volume","Act`
			close(lines)
		}, io.ErrUnexpectedEOF},
		{"ctx cancelled", func(_ chan<- string, cancel context.CancelFunc) { cancel() }, context.Canceled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lines := make(chan string)
			queries := make(chan string, 1)
			c := mustClient(t, serveUnix(t, streamServer(lines, queries)))
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			msgs, errs := c.Events(ctx, eventsOptions{
				Since:   time.Unix(1767323045, 6),
				Filters: listFilters{"type": {"volume"}},
			})
			if q := <-queries; q != "filters=%7B%22type%22%3A%7B%22volume%22%3Atrue%7D%7D&since=1767323045.000000006" {
				t.Fatalf("query %q", q)
			}
			lines <- `{"Type":"volume","Action":"create","Actor":{"ID":"v1"},"time":1767323046}` + "\n" +
				`{"Type":"volume","Action":"destroy","Actor":{"ID":"v1"},"time":1767323047}`
			for _, want := range []eventAction{actionCreate, actionDestroy} {
				if m := recvMsg(t, msgs, errs); m.Type != eventVolume || m.Action != want || m.Actor.ID != "v1" {
					t.Fatalf("message %+v, want volume %s v1", m, want)
				}
			}
			tc.end(lines, cancel)
			if err := recvEnd(t, errs); !errors.Is(err, tc.want) {
				t.Fatalf("stream ended with %v, want %v", err, tc.want)
			}
		})
	}
}

func TestDockerClientEventsRequestFails(t *testing.T) {
	c := mustClient(t, serveUnix(t, http.NotFoundHandler()))
	_, errs := c.Events(t.Context(), eventsOptions{})
	var ae *apiError
	if err := recvEnd(t, errs); !errors.As(err, &ae) || ae.Status != http.StatusNotFound {
		t.Fatalf("err = %v", err)
	}
}
