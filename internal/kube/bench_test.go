package kube

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/rdd-project/rdd/internal/kube/kubetest"
)

// benchEnv is newEnv for benchmarks: a home with a 200-context kubeconfig.
func benchEnv(b *testing.B) Publication {
	b.Helper()
	root := b.TempDir()
	home := filepath.Join(root, "home")
	src := filepath.Join(root, "k3s.yaml")
	writeFile(b, src, k3sConfig(b, "https://127.0.0.1:7443", "token-1"))
	writeFile(b, filepath.Join(home, ".kube", "config"), userKubeconfig(b, 200))
	return Publication{
		Name:       testName,
		Source:     src,
		Standalone: filepath.Join(home, ".rd2", "kube.config"),
		Target:     Target{Home: home},
	}
}

// BenchmarkPublish200Changed merges into a 200-context kubeconfig with a
// source that changes every time, so each op parses, rewrites and fsyncs.
func BenchmarkPublish200Changed(b *testing.B) {
	p := benchEnv(b)
	srcs := [][]byte{k3sConfig(b, "https://127.0.0.1:7443", "token-1"), k3sConfig(b, "https://127.0.0.1:7444", "token-2")}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		writeFile(b, p.Source, srcs[i%2])
		b.StartTimer()
		res, err := Publish(context.Background(), p)
		if err != nil || !res.Changed {
			b.Fatalf("%+v %v", res, err)
		}
	}
}

// BenchmarkPublish200Unchanged is the steady state of the 15 s re-probe:
// nothing changed, nothing written.
func BenchmarkPublish200Unchanged(b *testing.B) {
	p := benchEnv(b)
	if _, err := Publish(context.Background(), p); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		res, err := Publish(context.Background(), p)
		if err != nil || res.Changed {
			b.Fatalf("%+v %v", res, err)
		}
	}
}

func BenchmarkProbeHealthy(b *testing.B) {
	srv := kubetest.Shared(b)
	rc, err := EndpointFromFile(srv.Kubeconfig)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if res := Probe(context.Background(), rc, 0); res.Class != ProbeHealthy {
			b.Fatalf("%+v", res)
		}
	}
}

func BenchmarkProbeRefused(b *testing.B) {
	rc := &Endpoint{Host: closedURL(b), Insecure: true}
	for b.Loop() {
		if res := Probe(context.Background(), rc, time.Second); res.Class != ProbeUnreachable {
			b.Fatalf("%+v", res)
		}
	}
}
