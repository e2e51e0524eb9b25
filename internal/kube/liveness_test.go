package kube

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/rdd-project/rdd/internal/kube/kubetest"
)

// The liveness watch reports the death of a real API server as a decisive
// loss, and ends quietly when its caller stops it.
func TestWatchLivenessSeesServerDeath(t *testing.T) {
	srv := kubetest.New(t)
	rc, err := EndpointFromFile(srv.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	quiet := make(chan error, 1)
	go func() { quiet <- WatchLiveness(ctx, rc) }()
	cancel()
	select {
	case err := <-quiet:
		if err != nil {
			t.Fatalf("a cancelled watch returned %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a cancelled watch did not return")
	}

	lost := make(chan error, 1)
	go func() { lost <- WatchLiveness(context.Background(), rc) }()
	// Whether the kill lands before or after the watch connects, the loss
	// is decisive: a reset stream or a refused connection.
	if res := Probe(context.Background(), rc, 0); res.Class != ProbeHealthy {
		t.Fatalf("server not healthy before the kill: %+v", res)
	}
	srv.Kill()
	select {
	case err := <-lost:
		var le *LivenessError
		if !errors.As(err, &le) || !errors.Is(err, ErrLivenessLost) || le.Class != ProbeUnreachable {
			t.Fatalf("watch ended with %v, want a decisive liveness loss", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the watch did not notice the API server's death")
	}
}
