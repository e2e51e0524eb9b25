package engine

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/volume"

	"github.com/rdd-project/rdd/internal/dockertest"
)

// benchObjects is how many containers and how many volumes the sync
// benchmark creates (bounded: creating them takes a few seconds).
const benchObjects = 200

// BenchmarkFullSync measures one full sync (list all containers, images
// and volumes, replace the inventory) against a real dockerd holding
// benchObjects stopped containers and benchObjects volumes.
func BenchmarkFullSync(b *testing.B) {
	d := dockertest.Start(b)
	ref := dockertest.ImportBusybox(b, d)
	cli := dockertest.Client(b, d)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	// Four workers create the objects.
	jobs := make(chan int)
	errs := make(chan error, benchObjects)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for i := range jobs {
				name := fmt.Sprintf("bench-%03d", i)
				if _, err := dockertest.CreateContainer(ctx, cli, ref, name, "true"); err != nil {
					errs <- err
					continue
				}
				if _, err := cli.VolumeCreate(ctx, volume.CreateOptions{Name: name}); err != nil {
					errs <- err
				}
			}
		})
	}
	for i := range benchObjects {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}

	w := NewWatcher(d.Host, nil, WatcherOptions{})
	api, err := dialDocker(d.Host)
	if err != nil {
		b.Fatal(err)
	}
	defer api.Close()
	b.ResetTimer()
	for b.Loop() {
		if err := w.fullSync(ctx, api); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if c := w.Inventory().Counts(); c.Containers != benchObjects || c.Volumes != benchObjects {
		b.Fatalf("counts %+v", c)
	}
	b.ReportMetric(float64(2*benchObjects+1), "objects/op")
}

// BenchmarkEventToInventory measures the time from a volume create call
// returning to the volume appearing in a connected watcher's inventory.
func BenchmarkEventToInventory(b *testing.B) {
	d := dockertest.Start(b)
	cli := dockertest.Client(b, d)
	connected := make(chan struct{}, 1)
	w := NewWatcher(d.Host, nil, WatcherOptions{OnPhase: func(p Phase) {
		if p.State == PhaseConnected {
			connected <- struct{}{}
		}
	}})
	stop := w.Start(context.Background())
	defer stop()
	select {
	case <-connected:
	case <-time.After(30 * time.Second):
		b.Fatal("not connected")
	}
	ctx := context.Background()
	inv := w.Inventory()
	i := 0
	for b.Loop() {
		name := fmt.Sprintf("ev-%d", i)
		i++
		if _, err := cli.VolumeCreate(ctx, volume.CreateOptions{Name: name}); err != nil {
			b.Fatal(err)
		}
		deadline := time.After(30 * time.Second)
		for {
			ch := inv.Changed()
			if hasVolume(inv, name) {
				break
			}
			select {
			case <-ch:
			case <-deadline:
				b.Fatalf("volume %s never appeared", name)
			}
		}
	}
}
