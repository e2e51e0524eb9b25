package daemon

import (
	"context"
	"os"
	"sort"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/rdd-project/rdd/internal/api"
	"github.com/rdd-project/rdd/internal/api/client"
	"github.com/rdd-project/rdd/internal/paths"
)

// BenchmarkStatusAtTime1M measures GET /v1/status?at=TIME end to end (the
// socket, the time index, the fold from the nearest checkpoint, encoding)
// on a daemon whose log holds one million events, one per millisecond.
// Each iteration asks for a different time spread over the whole log.
func BenchmarkStatusAtTime1M(b *testing.B) {
	const n = 1_000_000
	home, err := os.MkdirTemp("/tmp", "rdd-bs-")
	if err != nil {
		b.Fatal(err)
	}
	defer os.RemoveAll(home)
	p, _ := paths.Resolve("2", home, func(string) string { return "" })
	buildLog(b, p, n)
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{Paths: p, Driver: &fakeDriver{}, Logger: zap.NewNop(), Ready: ready, Version: "bench"})
	}()
	select {
	case <-ready:
	case err := <-done:
		b.Fatal(err)
	}
	defer func() {
		cancel()
		if err := <-done; err != nil {
			b.Error(err)
		}
	}()
	c := client.New(p.Socket)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) // buildLog's first event
	var lat []time.Duration
	i := 0
	for b.Loop() {
		k := (i * 381_967) % n
		at := t0.Add(time.Duration(k)*time.Millisecond + time.Microsecond)
		start := time.Now()
		s, err := c.StatusAt(ctx, api.At{Time: at})
		lat = append(lat, time.Since(start))
		if err != nil || s.Seq != uint64(k+1) {
			b.Fatalf("status at %v = seq %d, %v; want %d", at, s.Seq, err, k+1)
		}
		i++
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "ms-p50")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "ms-p99")
}
