package kube

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/rdd-project/rdd/internal/kube/kubetest"
)

func TestMain(m *testing.M) { os.Exit(kubetest.Main(m)) }

// probeWith writes the shared server's kubeconfig with cred and probes it.
func probeWith(t *testing.T, srv *kubetest.Server, cred kubetest.Credential) ProbeResult {
	t.Helper()
	path := filepath.Join(t.TempDir(), "k3s.yaml")
	if err := srv.WriteKubeconfig(path, cred); err != nil {
		t.Fatal(err)
	}
	res, err := ProbeFile(context.Background(), path, 0)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestProbeRealServer(t *testing.T) {
	srv := kubetest.Shared(t)
	t.Run("healthy with the right certificate", func(t *testing.T) {
		res, err := ProbeFile(context.Background(), srv.Kubeconfig, 0)
		if err != nil {
			t.Fatal(err)
		}
		if res.Class != ProbeHealthy || res.StatusCode != http.StatusOK || res.Decisive() {
			t.Fatalf("%+v", res)
		}
	})
	t.Run("unhealthy with a certificate from another CA", func(t *testing.T) {
		res := probeWith(t, srv, kubetest.CredForeignCA)
		if res.Class != ProbeUnhealthy || res.StatusCode != http.StatusUnauthorized || !res.Decisive() {
			t.Fatalf("%+v", res)
		}
	})
	t.Run("unhealthy without a certificate", func(t *testing.T) {
		res := probeWith(t, srv, kubetest.CredNone)
		if res.Class != ProbeUnhealthy || res.StatusCode != http.StatusUnauthorized {
			t.Fatalf("%+v", res)
		}
	})
}

// TestProbeUnreachableAfterKill uses its own server, since it kills it.
func TestProbeUnreachableAfterKill(t *testing.T) {
	srv := kubetest.New(t)
	rc, err := EndpointFromFile(srv.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	if res := Probe(context.Background(), rc, 0); res.Class != ProbeHealthy {
		t.Fatalf("before kill: %+v", res)
	}
	srv.Kill()
	killed := time.Now()
	res := Probe(context.Background(), rc, 0)
	if res.Class != ProbeUnreachable || !res.Decisive() {
		t.Fatalf("after kill: %+v", res)
	}
	// behavior.md §8.2: a dead server is decided at once, not at the deadline.
	if since := time.Since(killed); since > time.Second {
		t.Fatalf("Unreachable took %s after the kill, want under 1s", since)
	}
}

func TestAnyNodeReady(t *testing.T) {
	srv := kubetest.Shared(t)
	ctx := context.Background()
	if err := srv.DeleteAllNodes(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.DeleteAllNodes(context.Background()) })
	rc, err := EndpointFromFile(srv.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	assertReady := func(want bool) {
		t.Helper()
		got, err := AnyNodeReady(ctx, rc, 0)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Fatalf("AnyNodeReady = %v, want %v", got, want)
		}
	}
	assertReady(false) // no nodes
	for name, status := range map[string]corev1.ConditionStatus{
		"node-false": corev1.ConditionFalse, "node-unknown": corev1.ConditionUnknown,
	} {
		if err := srv.CreateNode(ctx, name, status); err != nil {
			t.Fatal(err)
		}
	}
	assertReady(false)
	if err := srv.CreateNode(ctx, "node-ready", corev1.ConditionTrue); err != nil {
		t.Fatal(err)
	}
	assertReady(true) // one Ready node among NotReady ones suffices
	if err := srv.SetNodeReady(ctx, "node-ready", corev1.ConditionFalse); err != nil {
		t.Fatal(err)
	}
	assertReady(false)

	t.Run("foreign certificate is an error, not false", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "k3s.yaml")
		if err := srv.WriteKubeconfig(path, kubetest.CredForeignCA); err != nil {
			t.Fatal(err)
		}
		rc, err := EndpointFromFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := AnyNodeReady(ctx, rc, 0); err == nil {
			t.Fatal("want an error for 401")
		}
	})
}

func TestCurrentContextAgainstRealServer(t *testing.T) {
	srv := kubetest.Shared(t)
	e := newEnv(t)
	// The user's context reaches the real server without a certificate: 401.
	b, err := srv.KubeconfigBytes(kubetest.CredNone)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, e.userConfig(), b)
	cfg := load(t, e.userConfig())
	cfg.Contexts["mine"], cfg.Clusters["mine"], cfg.AuthInfos["mine"] = cfg.Contexts["default"], cfg.Clusters["default"], cfg.AuthInfos["default"]
	delete(cfg.Contexts, "default")
	cfg.CurrentContext = "mine"
	writeFile(t, e.userConfig(), mustWrite(t, cfg))
	d, changed, err := SwitchCurrentContext(context.Background(), e.pub, 0)
	if err != nil || d.Switch || changed || d.Reason != ReasonAlive {
		t.Fatalf("%+v changed=%v err=%v", d, changed, err)
	}
}

// hungServer accepts requests and answers none while the test runs. The
// handler waits for the test's end, not for the request's context: returning
// early would send a 200 that can race the client's deadline.
func hungServer(t *testing.T) *Endpoint {
	t.Helper()
	release := make(chan struct{})
	srv := quietTLSServer(t, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		<-release
	}))
	t.Cleanup(func() { close(release) }) // runs before srv.Close, which waits for handlers
	return &Endpoint{Host: srv.URL, CAData: serverCAData(srv)}
}

func TestProbeHTTPTest(t *testing.T) {
	t.Run("5xx is unhealthy", func(t *testing.T) {
		srv := tlsServer(t, http.StatusServiceUnavailable)
		rc := &Endpoint{Host: srv.URL, CAData: serverCAData(srv)}
		if res := Probe(context.Background(), rc, 0); res.Class != ProbeUnhealthy || res.StatusCode != 503 {
			t.Fatalf("%+v", res)
		}
	})
	t.Run("hung response is ambiguous at the deadline", func(t *testing.T) {
		res := Probe(context.Background(), hungServer(t), 100*time.Millisecond)
		if res.Class != ProbeAmbiguous || res.Decisive() || res.Elapsed < 100*time.Millisecond {
			t.Fatalf("%+v", res)
		}
	})
	t.Run("refused is unreachable", func(t *testing.T) {
		rc := &Endpoint{Host: closedURL(t), Insecure: true}
		if res := Probe(context.Background(), rc, 0); res.Class != ProbeUnreachable {
			t.Fatalf("%+v", res)
		}
	})
}

// TestClassifyTransport covers errors a loopback-only test cannot provoke
// for real (DNS needs a resolver, ETIMEDOUT a routed network).
func TestClassifyTransport(t *testing.T) {
	tests := []struct {
		err  error
		want ProbeClass
	}{
		{&url.Error{Op: "Get", Err: &net.DNSError{Err: "no such host", Name: "x.invalid", IsNotFound: true}}, ProbeUnreachable},
		{&url.Error{Op: "Get", Err: &net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}}, ProbeUnreachable},
		{&url.Error{Op: "Get", Err: &net.OpError{Op: "read", Err: os.NewSyscallError("read", syscall.ECONNRESET)}}, ProbeUnreachable},
		{&url.Error{Op: "Get", Err: io.EOF}, ProbeUnreachable},
		{&url.Error{Op: "Get", Err: &net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ETIMEDOUT)}}, ProbeAmbiguous},
		{fmt.Errorf("wrapped: %w", context.DeadlineExceeded), ProbeAmbiguous},
	}
	for _, tt := range tests {
		if got := classifyTransport(tt.err); got != tt.want {
			t.Errorf("classifyTransport(%v) = %s, want %s", tt.err, got, tt.want)
		}
	}
}

// TestProbeDefaultDeadline pins the 3 s default of behavior.md §8.2: with no
// timeout given, a hung server is cut off at 3 s, not earlier.
func TestProbeDefaultDeadline(t *testing.T) {
	t.Parallel()
	if DefaultProbeTimeout != 3*time.Second {
		t.Fatalf("DefaultProbeTimeout = %s", DefaultProbeTimeout)
	}
	res := Probe(context.Background(), hungServer(t), 0)
	if res.Class != ProbeAmbiguous {
		t.Fatalf("%+v", res)
	}
	if res.Elapsed < DefaultProbeTimeout {
		t.Fatalf("gave up after %s, before the 3s default deadline", res.Elapsed)
	}
	if !errors.Is(res.Err, context.DeadlineExceeded) {
		t.Fatalf("err %v, want deadline exceeded", res.Err)
	}
}

func TestProbeFileErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := ProbeFile(context.Background(), filepath.Join(dir, "missing.yaml"), 0); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing: %v", err)
	}
	bad := filepath.Join(dir, "bad.yaml")
	writeFile(t, bad, []byte("clusters: [oops"))
	var pe *ParseError
	if _, err := ProbeFile(context.Background(), bad, 0); !errors.As(err, &pe) {
		t.Fatalf("malformed: %v", err)
	}
}
