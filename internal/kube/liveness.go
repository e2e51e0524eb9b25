package kube

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
)

// livenessWatchSeconds is how long the API server keeps one watch open
// before it ends it cleanly; the watch is then opened again.
const livenessWatchSeconds = 300

// ErrLivenessLost wraps the failure that ended a liveness watch.
var ErrLivenessLost = errors.New("the Kubernetes API server connection was lost")

// WatchLiveness holds one cheap long-lived connection to the API server (a
// watch on the node leases, which a live cluster renews every few seconds)
// so that a decisive failure — the server refusing, resetting or closing the
// connection because its process died — is seen at once instead of at the
// next periodic probe (§8.1 probes every 15 s while ready).
//
// It returns nil when ctx ends, or an error wrapping ErrLivenessLost whose
// class (ClassOf) is Unreachable for a decisive loss and Ambiguous when the
// server stopped answering without closing; a watch the server ends on its
// own schedule is opened again without a report.
func WatchLiveness(ctx context.Context, ep *Endpoint) error {
	hc, u, err := livenessClient(ep)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrLivenessLost, err)
	}
	for {
		err := watchOnce(ctx, hc, u)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return &LivenessError{Class: classifyTransport(err), Err: err}
		}
	}
}

// LivenessError is how a liveness watch ended.
type LivenessError struct {
	Class ProbeClass
	Err   error
}

func (e *LivenessError) Error() string {
	return fmt.Sprintf("%s: %v", ErrLivenessLost, e.Err)
}

func (e *LivenessError) Unwrap() []error { return []error{ErrLivenessLost, e.Err} }

// watchOnce runs one watch until the server ends it (nil) or it fails.
func watchOnce(ctx context.Context, hc *http.Client, u *url.URL) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	// The headers must come back quickly; the body then streams for minutes.
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: HTTP %s", u.Redacted(), resp.Status)
	}
	// A clean end is the server's schedule, or a graceful shutdown: the
	// next watch tells them apart (a stopped server refuses it).
	_, err = io.Copy(io.Discard, resp.Body)
	return err
}

// livenessClient is a client for one streaming request at a time, with a
// dial and header deadline but none on the body.
func livenessClient(ep *Endpoint) (*http.Client, *url.URL, error) {
	hc, tr, err := ep.oneShotClient()
	if err != nil {
		return nil, nil, err
	}
	tr.ResponseHeaderTimeout = DefaultProbeTimeout
	tr.TLSHandshakeTimeout = DefaultProbeTimeout
	u, err := ep.resourceURL("apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases")
	if err != nil {
		return nil, nil, err
	}
	q := url.Values{}
	q.Set("watch", "true")
	q.Set("allowWatchBookmarks", "true")
	q.Set("timeoutSeconds", fmt.Sprint(livenessWatchSeconds))
	u.RawQuery = q.Encode()
	return hc, u, nil
}
