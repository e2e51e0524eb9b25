package daemon

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rdd-project/rdd/internal/api"
	"github.com/rdd-project/rdd/internal/api/client"
	"github.com/rdd-project/rdd/internal/events"
)

// A bounded load: 30 watchers on their own connections while 10 clients make
// 300 spec changes. Every watcher sees every snapshot, in seq order, with no
// gap, and every acknowledged change is in the log at its generation.
func TestLoadWatchersSeeEveryChange(t *testing.T) {
	td := startDaemon(t, testPaths(t), &fakeDriver{})
	first := td.set("running", "false")
	td.waitFor("settled", settledAt(first.Generation))
	start, err := td.cli.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const watchers, writers, setsEach = 30, 10, 30
	wctx, stopWatchers := context.WithCancel(ctx)
	defer stopWatchers()
	var lasts [watchers]atomic.Uint64
	var wg sync.WaitGroup
	errs := make(chan error, watchers+writers)
	for i := 0; i < watchers; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			cli := client.New(td.paths.Socket)
			w, err := cli.Watch(wctx, start.Seq)
			if err != nil {
				errs <- fmt.Errorf("watcher %d: %w", i, err)
				return
			}
			defer w.Close()
			last := start.Seq
			for {
				s, err := w.Next()
				if err != nil {
					if wctx.Err() == nil {
						errs <- fmt.Errorf("watcher %d after seq %d: %w", i, last, err)
					}
					return
				}
				if s.Seq != last+1 {
					errs <- fmt.Errorf("watcher %d: seq %d after %d", i, s.Seq, last)
					return
				}
				last = s.Seq
				lasts[i].Store(last)
			}
		}(i)
	}

	versions := []string{"1.32.0", "1.33.1", "1.34.2", "1.35.1"}
	var mu sync.Mutex
	acked := map[uint64]int64{} // seq → generation
	var writersWG sync.WaitGroup
	for i := 0; i < writers; i++ {
		writersWG.Add(1)
		go func(i int) {
			defer writersWG.Done()
			cli := client.New(td.paths.Socket)
			for k := 0; k < setsEach; k++ {
				r, err := cli.Set(ctx, api.SetRequest{Set: map[string]string{"kubernetes.version": versions[(i+k)%len(versions)]}})
				if err != nil {
					errs <- fmt.Errorf("writer %d set %d: %w", i, k, err)
					return
				}
				if r.Seq != 0 {
					mu.Lock()
					acked[r.Seq] = r.Generation
					mu.Unlock()
				}
			}
		}(i)
	}
	writersWG.Wait()
	// The controllers react to the last change; wait for them, then for
	// every watcher to reach the seq the daemon got to.
	end, _ := td.cli.Status(ctx)
	final := td.waitFor("settled after the load", settledAt(end.Generation))
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for i := 0; i < watchers; i++ {
		for lasts[i].Load() < final.Seq && ctx.Err() == nil {
			select {
			case <-tick.C:
			case <-ctx.Done():
			}
		}
		if got := lasts[i].Load(); got < final.Seq {
			t.Errorf("watcher %d stopped at seq %d, the daemon is at %d", i, got, final.Seq)
		}
	}
	stopWatchers()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	gens := map[uint64]int64{}
	err = td.cli.Events(context.Background(), api.EventQuery{Since: start.Seq}, func(_ []byte, e events.Envelope) error {
		if e.Type == events.TypeSpecChanged {
			p, err := events.Decode(e)
			if err != nil {
				return err
			}
			gens[e.Seq] = p.(*events.SpecChanged).Generation
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for seq, gen := range acked {
		if gens[seq] != gen {
			t.Errorf("acknowledged generation %d at seq %d; the log has %d there", gen, seq, gens[seq])
		}
	}
	if len(acked) == 0 {
		t.Fatal("no change was acknowledged")
	}
}
