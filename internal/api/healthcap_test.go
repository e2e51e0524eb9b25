package api_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rdd-project/rdd/internal/api"
)

// Issue 10 (4), measured: the plain-connection cap is full of connections
// that sent their headers and trickle a body (each holds its slot until
// BodyReadTimeout), and meanwhile GET /v1/healthz, on a new connection each
// time as a CLI or a monitor opens one, must still answer 200: "is the
// daemon alive" is what `rdd svc status` and the implicit start ask, and a
// daemon busy with slow clients is alive. The latency is only logged (run
// with -v); a timed assertion would flake on a loaded machine.
func TestHealthzAtConnCapWithSlowBodies(t *testing.T) {
	_, srv, _ := serve(t, 1, api.ServerOptions{}) // the daemon's defaults
	const probes = 300

	idle := measureHealthz(t, srv.Socket, probes)

	stop := make(chan struct{})
	defer close(stop)
	for range api.DefaultMaxConns {
		rc := dialRaw(t, srv.Socket)
		_ = rc.SetDeadline(time.Time{})
		trickle(t, rc, 50*time.Millisecond, stop) // far slower than any real client
	}
	// Measure only once every trickler holds its slot. (A probe request
	// would itself take a slot for a moment and could get one refused.)
	deadline := time.After(wait)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for srv.Server.PlainConnsForTest() < api.DefaultMaxConns {
		select {
		case <-deadline:
			t.Fatalf("%d trickling connections never filled the plain-connection cap (%d slots held)", api.DefaultMaxConns, srv.Server.PlainConnsForTest())
		case <-tick.C:
		}
	}
	if status, _ := oneRequest(t, srv.Socket, api.PathStatus); status != http.StatusServiceUnavailable {
		t.Fatalf("GET /v1/status with the cap full: %d, want 503", status)
	}
	began := time.Now()
	full := measureHealthz(t, srv.Socket, probes)
	if took := time.Since(began); took > api.DefaultBodyReadTimeout {
		t.Logf("measuring took %v, longer than the body deadline: some tricklers were cut meanwhile", took)
	}
	t.Logf("healthz, %d probes on new connections: idle daemon %s; %d slow-body connections holding the cap %s",
		probes, idle, api.DefaultMaxConns, full)
	if full.codes[http.StatusOK] != probes {
		t.Errorf("healthz at the connection cap answered %v, want %d × 200", full.codes, probes)
	}
}

type healthzFigures struct {
	p50, p99, max time.Duration
	codes         map[int]int
}

func (f healthzFigures) String() string {
	return fmt.Sprintf("p50 %v p99 %v max %v, answers %v", f.p50, f.p99, f.max, f.codes)
}

// measureHealthz sends n GET /v1/healthz one after another, each on a new
// connection, and returns the latencies (dial to full answer) and statuses.
func measureHealthz(t *testing.T, socket string, n int) healthzFigures {
	t.Helper()
	lat := make([]time.Duration, 0, n)
	f := healthzFigures{codes: map[int]int{}}
	for range n {
		start := time.Now()
		status, _ := oneRequest(t, socket, api.PathHealthz)
		lat = append(lat, time.Since(start))
		f.codes[status]++
	}
	slices.Sort(lat)
	f.p50, f.p99, f.max = lat[n/2], lat[n*99/100], lat[n-1]
	for _, d := range []*time.Duration{&f.p50, &f.p99, &f.max} {
		*d = d.Round(time.Microsecond)
	}
	return f
}

// oneRequest sends GET path on a new connection that the server closes
// after its answer, and waits for that close, so that the connection's slot
// is free again when it returns.
func oneRequest(t *testing.T, socket, path string) (int, []byte) {
	t.Helper()
	rc := dialRaw(t, socket)
	defer rc.Close()
	resp, body := rc.get(t, path, "Connection: close\r\n")
	if _, err := rc.br.ReadByte(); !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("GET %s: connection not closed after the answer: %v", path, err)
	}
	return resp.StatusCode, body
}

// The healthz reserve past MaxConns is bounded: HealthzReserve connections
// kept open after a health check hold it, one more health check is
// answered 503, and a reserve connection asking for anything else needs a
// plain slot like any other.
func TestHealthzReserveIsBounded(t *testing.T) {
	_, srv, _ := serve(t, 1, api.ServerOptions{MaxConns: 1})
	plain := dialRaw(t, srv.Socket)
	if resp, _ := plain.get(t, api.PathStatus); resp.StatusCode != http.StatusOK {
		t.Fatalf("status within the cap: %s", resp.Status)
	}
	reserve := make([]*rawConn, api.HealthzReserve)
	for i := range reserve {
		reserve[i] = dialRaw(t, srv.Socket)
		if resp, _ := reserve[i].get(t, api.PathHealthz); resp.StatusCode != http.StatusOK {
			t.Fatalf("health check %d past the plain cap: %s, want 200 from the reserve", i, resp.Status)
		}
	}
	resp, body := dialRaw(t, srv.Socket).get(t, api.PathHealthz)
	if eb := wantErrorBody(t, resp.StatusCode, body, http.StatusServiceUnavailable, api.CodeUnavailable); !strings.Contains(eb.Error, "1 connections open") {
		t.Errorf("health check past the reserve: %+v", eb)
	}
	resp, body = reserve[0].get(t, api.PathStatus)
	wantErrorBody(t, resp.StatusCode, body, http.StatusServiceUnavailable, api.CodeUnavailable)
	if resp, _ := reserve[1].get(t, api.PathHealthz); resp.StatusCode != http.StatusOK {
		t.Errorf("second health check on a reserve connection: %s", resp.Status)
	}
	// A freed plain slot serves a reserve connection's other requests.
	if resp, _ := plain.get(t, api.PathStatus, "Connection: close\r\n"); resp.StatusCode != http.StatusOK {
		t.Fatal(resp.Status)
	}
	if _, err := plain.br.ReadByte(); !errors.Is(err, io.EOF) {
		t.Fatalf("after Connection: close: %v, want EOF", err)
	}
	if resp, _ := reserve[1].get(t, api.PathStatus); resp.StatusCode != http.StatusOK {
		t.Errorf("status on a reserve connection once a plain slot is free: %s", resp.Status)
	}
}
