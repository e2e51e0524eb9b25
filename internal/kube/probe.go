package kube

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"syscall"
	"time"
)

// DefaultProbeTimeout is the deadline of one /healthz probe (§8.2).
const DefaultProbeTimeout = 3 * time.Second

// ProbeClass classifies one probe of the cluster (§8.2). Values are stable:
// they may be recorded in events.
type ProbeClass string

// Probe classes.
const (
	// ProbeHealthy: /healthz answered 200.
	ProbeHealthy ProbeClass = "Healthy"
	// ProbeUnhealthy: /healthz answered another status (decisive).
	ProbeUnhealthy ProbeClass = "Unhealthy"
	// ProbeUnreachable: refused, reset, EOF, DNS, TLS or any other transport
	// failure that is not a timeout (decisive).
	ProbeUnreachable ProbeClass = "Unreachable"
	// ProbeAmbiguous: the deadline passed (or ETIMEDOUT); a busy server looks
	// like this, so callers tolerate a short streak.
	ProbeAmbiguous ProbeClass = "Ambiguous"
)

// ProbeResult is the outcome of Probe.
type ProbeResult struct {
	Class ProbeClass
	// StatusCode is the HTTP status, 0 when there was no answer.
	StatusCode int
	// Err is the transport error, or a description of a non-200 answer.
	Err error
	// Elapsed is how long the probe took.
	Elapsed time.Duration
}

// Decisive reports whether the result should flip the cluster to not ready at
// once (Unreachable, Unhealthy), as opposed to Healthy or Ambiguous.
func (r ProbeResult) Decisive() bool {
	return r.Class == ProbeUnhealthy || r.Class == ProbeUnreachable
}

// Probe sends GET <server>/healthz over ep's TLS and credentials with a
// deadline of timeout (0 means DefaultProbeTimeout) and classifies the outcome.
// Every probe opens a fresh connection, so a server that died since the last
// probe is seen at once, not hidden behind a pooled connection. If ctx itself
// ends, the result is Ambiguous with ctx's error.
func Probe(ctx context.Context, ep *Endpoint, timeout time.Duration) ProbeResult {
	hc, u, err := healthzClient(ep)
	if err != nil {
		// Bad TLS material cannot reach the server: decisive, like §8.2's
		// "anything else".
		return ProbeResult{Class: ProbeUnreachable, Err: err}
	}
	return get(ctx, hc, u, timeout)
}

// ProbeFile is Probe for the cluster named by the kubeconfig at path. The
// error is non-nil, and the result empty, when the kubeconfig is missing,
// unparsable or lacks entries (§8.1 "kubeconfig missing or unparsable").
func ProbeFile(ctx context.Context, path string, timeout time.Duration) (ProbeResult, error) {
	ep, err := EndpointFromFile(path)
	if err != nil {
		return ProbeResult{}, err
	}
	return Probe(ctx, ep, timeout), nil
}

// healthzClient builds a one-shot HTTP client from ep (TLS, bearer token,
// basic auth, proxy) and the URL of its /healthz.
func healthzClient(ep *Endpoint) (*http.Client, *url.URL, error) {
	hc, _, err := ep.oneShotClient()
	if err != nil {
		return nil, nil, err
	}
	u, err := ep.resourceURL("healthz")
	if err != nil {
		return nil, nil, err
	}
	return hc, u, nil
}

// get performs the probe request and classifies it.
func get(ctx context.Context, hc *http.Client, u *url.URL, timeout time.Duration) ProbeResult {
	if timeout <= 0 {
		timeout = DefaultProbeTimeout
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return ProbeResult{Class: ProbeUnreachable, Err: err, Elapsed: time.Since(start)}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return ProbeResult{Class: classifyTransport(err), Err: err, Elapsed: time.Since(start)}
	}
	// Drain a little so the answer is complete; the connection is not reused.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	_ = resp.Body.Close()
	r := ProbeResult{StatusCode: resp.StatusCode, Elapsed: time.Since(start)}
	if resp.StatusCode == http.StatusOK {
		r.Class = ProbeHealthy
	} else {
		r.Class = ProbeUnhealthy
		r.Err = fmt.Errorf("GET %s: HTTP %s", u.Redacted(), resp.Status)
	}
	return r
}

// classifyTransport maps a request error to Ambiguous (deadline, ETIMEDOUT,
// or the caller's cancellation) or Unreachable (everything else: refused,
// reset, EOF, DNS, TLS).
func classifyTransport(err error) ProbeClass {
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, context.Canceled),
		errors.Is(err, syscall.ETIMEDOUT),
		errors.As(err, &ne) && ne.Timeout():
		return ProbeAmbiguous
	}
	return ProbeUnreachable
}
