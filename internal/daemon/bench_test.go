package daemon

import (
	"context"
	"fmt"
	"os"
	"sort"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/rdd-project/rdd/internal/api"
	"github.com/rdd-project/rdd/internal/events"
	"github.com/rdd-project/rdd/internal/paths"
	"github.com/rdd-project/rdd/internal/store"
)

// buildLog writes n realistic events (spec changes, transitions and
// observations, checkpointed every checkpointEvery like the daemon does) into
// the event log of p.
func buildLog(b *testing.B, p paths.Paths, n int) {
	b.Helper()
	if err := p.EnsureDirs(); err != nil {
		b.Fatal(err)
	}
	log, err := store.Open(p.EventLog, store.Options{NoSync: true, Instance: p.Name})
	if err != nil {
		b.Fatal(err)
	}
	defer log.Close()
	proj := events.NewProjector()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	gen := int64(0)
	var batch []events.Envelope
	flush := func() {
		stored, err := log.Append(batch...)
		if err != nil {
			b.Fatal(err)
		}
		for _, e := range stored {
			if err := proj.Apply(e); err != nil {
				b.Fatal(err)
			}
			if e.Seq%defaultCheckpointEvery == 0 {
				data, _ := events.MarshalCheckpoint(proj.Snapshot())
				if err := log.SaveCheckpoint(e.Seq, data); err != nil {
					b.Fatal(err)
				}
			}
		}
		batch = batch[:0]
	}
	// One spec change in ten; the rest are the machines' observations of it.
	for i := 0; i < n; i++ {
		var pl events.Payload
		switch {
		case i%10 == 0:
			gen++
			sp := events.SpecChanged{Generation: gen, Changed: []string{"running"}}
			sp.Spec.Running = gen%2 == 0
			sp.Spec.ContainerEngine.Name = "moby"
			sp.Spec.Namespace = "default"
			pl = &sp
		case i%10 < 5:
			pl = &events.Observed{Machine: events.MachineVM, Generation: gen}
		default:
			pl = &events.Observed{Machine: events.MachineK3s, Generation: gen}
		}
		e, err := events.New(t0.Add(time.Duration(i)*time.Millisecond), pl)
		if err != nil {
			b.Fatal(err)
		}
		batch = append(batch, e)
		if len(batch) == 10000 {
			flush()
		}
	}
	flush()
	data, _ := events.MarshalCheckpoint(proj.Snapshot())
	if err := log.SaveCheckpoint(proj.Snapshot().Seq, data); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkStartToSocketReady measures Run from its call until the socket
// serves, on a log that already holds 1M events (target ≤ 15 ms).
func BenchmarkStartToSocketReady(b *testing.B) {
	for _, n := range []int{0, 1_000_000} {
		b.Run(fmt.Sprintf("events=%d", n), func(b *testing.B) {
			home, err := os.MkdirTemp("/tmp", "rdd-bs-")
			if err != nil {
				b.Fatal(err)
			}
			defer os.RemoveAll(home)
			p, _ := paths.Resolve("2", home, func(string) string { return "" })
			if n > 0 {
				buildLog(b, p, n)
			}
			drv := &fakeDriver{}
			var starts []time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				ctx, cancel := context.WithCancel(context.Background())
				ready := make(chan struct{})
				done := make(chan error, 1)
				start := time.Now()
				go func() {
					done <- Run(ctx, Options{Paths: p, Driver: drv, Logger: zap.NewNop(), Ready: ready, Version: "bench"})
				}()
				select {
				case <-ready:
				case err := <-done:
					b.Fatal(err)
				}
				starts = append(starts, time.Since(start))
				b.StopTimer()
				cancel()
				if err := <-done; err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
			b.StopTimer()
			sort.Slice(starts, func(i, j int) bool { return starts[i] < starts[j] })
			b.ReportMetric(float64(starts[len(starts)/2].Microseconds())/1000, "ms-median/start")
			b.ReportMetric(float64(starts[len(starts)*99/100].Microseconds())/1000, "ms-p99/start")
		})
	}
}

// BenchmarkDaemonStop measures a graceful stop with the App stopped (target ≤ 100 ms).
func BenchmarkDaemonStop(b *testing.B) {
	home, err := os.MkdirTemp("/tmp", "rdd-bs-")
	if err != nil {
		b.Fatal(err)
	}
	defer os.RemoveAll(home)
	p, _ := paths.Resolve("2", home, func(string) string { return "" })
	drv := &fakeDriver{}
	var total time.Duration
	for i := 0; i < b.N; i++ {
		ctx, cancel := context.WithCancel(context.Background())
		ready := make(chan struct{})
		done := make(chan error, 1)
		go func() {
			done <- Run(ctx, Options{Paths: p, Driver: drv, Logger: zap.NewNop(), Ready: ready, Version: "bench"})
		}()
		<-ready
		start := time.Now()
		cancel()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		total += time.Since(start)
	}
	b.ReportMetric(float64(total.Microseconds())/float64(b.N)/1000, "ms/stop")
}

// BenchmarkWatchLatency measures commit → watcher delivery inside the daemon
// (target p99 ≤ 2 ms), reporting p50 and p99.
func BenchmarkWatchLatency(b *testing.B) {
	log := store.NewMem()
	w := newWriter(log, events.NewProjector(), time.Now, zap.NewNop())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go w.run(ctx)
	if _, err := w.SetSpec(ctx, api.SetRequest{Set: map[string]string{"running": "false"}}, api.Source{}); err != nil {
		b.Fatal(err)
	}
	var mu sync.Mutex
	sent := map[uint64]time.Time{}
	lat := make([]time.Duration, 0, b.N)
	got := make(chan struct{}, 1)
	wctx, wcancel := context.WithCancel(ctx)
	go func() {
		_ = w.Watch(wctx, 0, func(batch []events.Snapshot) error {
			mu.Lock()
			for _, s := range batch {
				if t, ok := sent[s.Seq]; ok {
					lat = append(lat, time.Since(t))
				}
			}
			mu.Unlock()
			select {
			case got <- struct{}{}:
			default:
			}
			return nil
		})
	}()
	<-got
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		seq := w.Snapshot().Seq + 1
		mu.Lock()
		sent[seq] = time.Now()
		mu.Unlock()
		if _, err := w.Append(ctx, &events.Observed{Machine: events.MachineVM, Generation: 1}); err != nil {
			b.Fatal(err)
		}
		<-got
	}
	b.StopTimer()
	wcancel()
	mu.Lock()
	defer mu.Unlock()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	if len(lat) > 0 {
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "µs-p50")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "µs-p99")
	}
}

// BenchmarkSetSpec measures a validated spec change through the writer.
func BenchmarkSetSpec(b *testing.B) {
	log := store.NewMem()
	w := newWriter(log, events.NewProjector(), time.Now, zap.NewNop())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go w.run(ctx)
	vals := []string{"true", "false"}
	for i := 0; i < b.N; i++ {
		if _, err := w.SetSpec(ctx, api.SetRequest{Set: map[string]string{"running": vals[i%2]}}, api.Source{}); err != nil {
			b.Fatal(err)
		}
	}
}
