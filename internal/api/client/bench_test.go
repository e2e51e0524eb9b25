package client_test

import (
	"slices"
	"testing"
	"time"

	"github.com/rdd-project/rdd/internal/api"
	"github.com/rdd-project/rdd/internal/api/apitest"
	"github.com/rdd-project/rdd/internal/api/client"
)

// benchServer serves a Backend whose snapshots are the size of a real one.
func benchServer(b *testing.B) (*apitest.Backend, *client.Client) {
	be := apitest.NewBackendFrom(apitest.Sample())
	for range 5 {
		be.Publish()
	}
	srv := apitest.Serve(b, be, api.ServerOptions{Version: "bench"})
	c := client.New(srv.Socket)
	return be, c
}

// BenchmarkStatus is one Status round trip (request, snapshot encode,
// transfer, decode) over a kept-alive connection.
func BenchmarkStatus(b *testing.B) {
	_, c := benchServer(b)
	ctx := testCtx(b)
	raw, err := c.RawStatus(ctx)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Status(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRawStatusCold is what `rdd status -o json` does: a new Client,
// a new connection, one RawStatus.
func BenchmarkRawStatusCold(b *testing.B) {
	_, c0 := benchServer(b)
	ctx := testCtx(b)
	b.ReportAllocs()
	for b.Loop() {
		c := client.New(c0.Socket())
		if _, err := c.RawStatus(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWatchLatency measures the time from the Backend publishing a
// change to the client's Next returning it, and reports its p50 and p99.
func BenchmarkWatchLatency(b *testing.B) {
	be, c := benchServer(b)
	ctx := testCtx(b)
	w, err := c.Watch(ctx, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	if _, err := w.Next(); err != nil {
		b.Fatal(err)
	}
	var lat []time.Duration
	b.ReportAllocs()
	for b.Loop() {
		start := time.Now()
		want := be.Publish().Seq
		s, err := w.Next()
		lat = append(lat, time.Since(start))
		if err != nil || s.Seq != want {
			b.Fatalf("Next = %d, %v; want %d", s.Seq, err, want)
		}
	}
	slices.Sort(lat)
	q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Nanoseconds()) / 1e3 }
	b.ReportMetric(q(0.50), "p50-µs")
	b.ReportMetric(q(0.99), "p99-µs")
}
