package engine

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"
)

func fakeWatcher(t *testing.T, f *fakeDocker, opts WatcherOptions) (*Watcher, *phaseLog) {
	t.Helper()
	w, pl, _ := fakeWatcherObserved(t, f, opts)
	return w, pl
}

// fakeWatcherObserved also returns the watcher's logs.
func fakeWatcherObserved(t *testing.T, f *fakeDocker, opts WatcherOptions) (*Watcher, *phaseLog, *observer.ObservedLogs) {
	t.Helper()
	pl := newPhaseLog()
	opts.OnPhase = pl.on
	opts.dial = func(string) (dockerAPI, error) { return f, nil }
	core, logs := observer.New(zapcore.DebugLevel)
	logger := zaptest.NewLogger(t, zaptest.WrapOptions(zap.WrapCore(func(c zapcore.Core) zapcore.Core { return zapcore.NewTee(c, core) })))
	return NewWatcher("unix:///fake/docker.sock", logger, opts), pl, logs
}

func TestDefaultBackoff(t *testing.T) {
	want := []time.Duration{100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000}
	for i, w := range want {
		if got := DefaultBackoff(i); got != w*time.Millisecond {
			t.Errorf("DefaultBackoff(%d) = %s, want %s", i, got, w*time.Millisecond)
		}
	}
	for _, n := range []int{20, 63, 64, 1000, 1 << 30} {
		if got := DefaultBackoff(n); got != BackoffMax {
			t.Errorf("DefaultBackoff(%d) = %s, want %s", n, got, BackoffMax)
		}
	}
}

// TestReconnectBackoffCapped runs a watcher against an engine that never
// answers, in a synctest bubble, and checks the real delays between
// attempts: 100 ms doubling, never above 5 s, even when the Backoff option
// asks for more.
func TestReconnectBackoffCapped(t *testing.T) {
	for _, tc := range []struct {
		name    string
		backoff func(int) time.Duration
	}{
		{"default", nil},
		{"option above cap", func(int) time.Duration { return time.Hour }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := newFakeDocker()
				f.pingErr = errBoom
				w, pl := fakeWatcher(t, f, WatcherOptions{Backoff: tc.backoff})
				ctx, cancel := context.WithCancel(t.Context())
				done := make(chan struct{})
				go func() { _ = w.Run(ctx); close(done) }()

				var at []time.Time
				for range 12 {
					ph := <-pl.ch
					for ph.State != PhaseConnectFailed {
						ph = <-pl.ch
					}
					if ph.RetryIn > BackoffMax {
						t.Fatalf("RetryIn %s above %s", ph.RetryIn, BackoffMax)
					}
					if !strings.HasPrefix(ph.Err.Error(), "failed to ping Docker: ") || !errors.Is(ph.Err, errBoom) {
						t.Fatalf("err = %v", ph.Err)
					}
					at = append(at, time.Now())
				}
				cancel()
				<-done
				for i := 1; i < len(at); i++ {
					gap := at[i].Sub(at[i-1])
					want := BackoffMax
					if tc.backoff == nil {
						want = DefaultBackoff(i - 1)
					}
					if gap != want {
						t.Errorf("gap %d = %s, want %s", i, gap, want)
					}
				}
			})
		})
	}
}

// TestConnectOrder checks that the cursor comes from the daemon's clock and
// is taken before the full sync, and that the stream starts from it.
func TestConnectOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeDocker()
		f.addContainer("c1", "one", "exited")
		f.setImage("sha256:i1", "a:1", "b:2")
		w, pl := fakeWatcher(t, f, WatcherOptions{})
		stop := w.Start(t.Context())
		ph := <-pl.ch
		if ph.State != PhaseConnecting {
			t.Fatalf("first phase %s", ph.State)
		}
		ph = <-pl.ch
		if ph.State != PhaseConnected || ph.Counts != (Counts{Containers: 1, Images: 2}) || ph.EngineVersion != "20.10.24" {
			t.Fatalf("phase %+v", ph)
		}
		synctest.Wait()
		want := []string{"Ping", "Info", "ContainerList", "ImageList", "VolumeList", "Events since=" + formatSince(f.sysTime)}
		if got := f.Calls(); !slices.Equal(got, want) {
			t.Fatalf("calls\n got %q\nwant %q", got, want)
		}
		if formatSince(f.sysTime) != "1767323045.000000006" {
			t.Fatalf("formatSince = %s", formatSince(f.sysTime))
		}
		stop()
		if got := f.Calls(); got[len(got)-1] != "Close" {
			t.Fatalf("client not closed last: %q", got)
		}
		select {
		case <-f.StreamEnded():
		default:
			t.Fatal("event goroutine still running after Run returned")
		}
		if c := w.Inventory().Counts(); c != (Counts{}) {
			t.Fatalf("inventory not emptied when Run returned: %+v", c)
		}
	})
}

func TestCursorFallback(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeDocker()
		f.infoErr = errBoom
		host := time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)
		w, pl := fakeWatcher(t, f, WatcherOptions{Now: func() time.Time { return host }})
		stop := w.Start(t.Context())
		defer stop()
		if _, err := pl.next(PhaseConnected, time.Minute); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		want := "Events since=" + formatSince(host.Add(-2*time.Minute))
		if got := f.Calls(); got[len(got)-1] != want {
			t.Fatalf("last call %q, want %q", got[len(got)-1], want)
		}
	})
}

func TestConnectFailedSyncMessage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeDocker()
		f.listErr = errBoom
		w, pl := fakeWatcher(t, f, WatcherOptions{})
		stop := w.Start(t.Context())
		defer stop()
		ph, err := pl.next(PhaseConnectFailed, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(ph.Err.Error(), "failed to perform initial sync: list containers: ") || !errors.Is(ph.Err, errBoom) {
			t.Fatalf("err = %v", ph.Err)
		}
		f.set(func(f *fakeDocker) { f.listErr = nil })
		if _, err := pl.next(PhaseConnected, time.Minute); err != nil {
			t.Fatal(err)
		}
	})
}

// TestEventsAndPanic streams events through the fake: a panicking handler
// is recovered and the next event still applies; a stream error gives
// Disconnected, then a reconnect with a fresh sync.
func TestEventsAndPanic(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeDocker()
		w, pl, logs := fakeWatcherObserved(t, f, WatcherOptions{})
		stop := w.Start(t.Context())
		defer stop()
		if _, err := pl.next(PhaseConnected, time.Minute); err != nil {
			t.Fatal(err)
		}
		inv := w.Inventory()

		f.addContainer("c1", "one", "running")
		f.set(func(f *fakeDocker) { f.panicOnRefresh = true })
		f.events <- eventMessage{Type: eventContainer, Action: actionStart, Actor: eventActor{ID: "c1"}}
		synctest.Wait() // the event has been handled (the watcher blocks on the next one)
		f.set(func(f *fakeDocker) { f.panicOnRefresh = false })
		f.set(func(f *fakeDocker) { f.volumes["v1"] = volumeResponse{Name: "v1", Driver: "local"} })
		f.events <- eventMessage{Type: eventVolume, Action: actionCreate, Actor: eventActor{ID: "v1"}}
		synctest.Wait()
		if got := inv.Volumes(); len(got) != 1 || got[0].Name != "v1" {
			t.Fatalf("volumes after panic: %+v", got)
		}
		if n := len(inv.Containers()); n != 0 {
			t.Fatalf("containers = %d, the panicking event should have been dropped", n)
		}
		if p := logs.FilterMessage("panic while handling a docker event").All(); len(p) != 1 || p[0].ContextMap()["panic"] != "fake: refresh panics" {
			t.Fatalf("panic log entries: %+v", p)
		}

		f.streamErr <- errBoom
		ph, err := pl.next(PhaseDisconnected, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if !errors.Is(ph.Err, errBoom) || ph.RetryIn != BackoffInitial {
			t.Fatalf("disconnected phase %+v", ph)
		}
		ph, err = pl.next(PhaseConnected, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if ph.Counts.Containers != 1 {
			t.Fatalf("fresh sync did not pick up c1: %+v", ph.Counts)
		}
	})
}

// TestPeriodicResync: a change the stream never reported is picked up by
// the next periodic full sync (F21).
func TestPeriodicResync(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeDocker()
		w, pl := fakeWatcher(t, f, WatcherOptions{})
		stop := w.Start(t.Context())
		defer stop()
		if _, err := pl.next(PhaseConnected, time.Minute); err != nil {
			t.Fatal(err)
		}
		f.addContainer("c1", "silent", "created")
		<-time.After(DefaultResyncInterval - time.Second) // fake time: the bubble advances it at once
		synctest.Wait()
		if n := len(w.Inventory().Containers()); n != 0 {
			t.Fatalf("resynced too early: %d containers", n)
		}
		<-time.After(time.Second)
		synctest.Wait()
		if got := w.Inventory().Containers(); len(got) != 1 || got[0].Name != "silent" {
			t.Fatalf("after resync: %+v", got)
		}
	})
}

// TestImageEvents covers tags moving between images, untag to dangling,
// and delete.
func TestImageEvents(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeDocker()
		f.setImage("sha256:a", "app:latest", "app:1")
		w, pl := fakeWatcher(t, f, WatcherOptions{})
		stop := w.Start(t.Context())
		defer stop()
		if _, err := pl.next(PhaseConnected, time.Minute); err != nil {
			t.Fatal(err)
		}
		send := func(a eventAction, id string) {
			f.events <- eventMessage{Type: eventImage, Action: a, Actor: eventActor{ID: id}}
			synctest.Wait()
		}
		tags := func() []string {
			var out []string
			for _, im := range w.Inventory().Images() {
				out = append(out, im.RepoTag+"="+im.ID)
			}
			return out
		}
		// app:latest moves to b; Docker sends a tag event for b only.
		f.setImage("sha256:b", "app:latest")
		f.setImage("sha256:a", "app:1")
		send(actionTag, "sha256:b")
		if got, want := tags(), []string{"app:1=sha256:a", "app:latest=sha256:b"}; !slices.Equal(got, want) {
			t.Fatalf("after tag: %q, want %q", got, want)
		}
		// a loses its last tag: one dangling entry.
		f.setImage("sha256:a")
		send(actionUntag, "sha256:a")
		if got, want := tags(), []string{"app:latest=sha256:b", "=sha256:a"}; !slices.Equal(got, want) {
			t.Fatalf("after untag: %q, want %q", got, want)
		}
		// pull names the reference, not the id.
		f.setImage("sha256:c", "busybox:1")
		send(actionPull, "busybox:1")
		// delete of a removes it; an event for an image already gone removes too.
		f.set(func(f *fakeDocker) { delete(f.images, "sha256:a"); delete(f.images, "sha256:b") })
		send(actionDelete, "sha256:a")
		send(actionUntag, "sha256:b")
		if got, want := tags(), []string{"busybox:1=sha256:c"}; !slices.Equal(got, want) {
			t.Fatalf("after delete: %q, want %q", got, want)
		}
	})
}

func TestRunTwice(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeDocker()
		w, pl := fakeWatcher(t, f, WatcherOptions{})
		stop := w.Start(t.Context())
		if _, err := pl.next(PhaseConnected, time.Minute); err != nil {
			t.Fatal(err)
		}
		if err := w.Run(t.Context()); !errors.Is(err, ErrAlreadyRunning) {
			t.Fatalf("second Run: %v", err)
		}
		stop()
		// After stop the watcher can run again.
		stop = w.Start(t.Context())
		if _, err := pl.next(PhaseConnected, time.Minute); err != nil {
			t.Fatal(err)
		}
		stop()
	})
}
