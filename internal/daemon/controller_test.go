package daemon

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/rdd-project/rdd/internal/api"
	"github.com/rdd-project/rdd/internal/events"
	"github.com/rdd-project/rdd/internal/fsm"
	"github.com/rdd-project/rdd/internal/store"
)

// ctlHarness runs the writer and the vm controller on an in-memory log,
// inside a synctest bubble: time is virtual, so delays of seconds cost
// nothing and synctest.Wait says when everything has settled.
type ctlHarness struct {
	t   *testing.T
	log *store.Mem
	w   *writer
	vm  *vmController
	drv *fakeDriver
}

func newCtlHarness(t *testing.T, drv *fakeDriver) (*ctlHarness, context.CancelFunc) {
	log := store.NewMem()
	w := newWriter(log, events.NewProjector(), time.Now, zaptest.NewLogger(t))
	ctx, cancel := context.WithCancel(context.Background())
	go w.run(ctx)
	h := &ctlHarness{t: t, log: log, w: w, drv: drv, vm: newVMController(w, drv, zaptest.NewLogger(t))}
	go h.vm.run(ctx)
	return h, func() { cancel(); synctest.Wait() }
}

func (h *ctlHarness) set(kv ...string) {
	h.t.Helper()
	req := api.SetRequest{Set: map[string]string{}}
	for i := 0; i+1 < len(kv); i += 2 {
		req.Set[kv[i]] = kv[i+1]
	}
	if _, err := h.w.SetSpec(context.Background(), req, api.Source{}); err != nil {
		h.t.Fatal(err)
	}
	synctest.Wait()
}

func (h *ctlHarness) vmState() events.VMState {
	snap := h.w.Snapshot()
	return events.VMState(snap.Machine(events.MachineVM).State)
}

// payloads returns the decoded events of type T in the log, in order.
func logged[T events.Payload](t *testing.T, log *store.Mem) []T {
	t.Helper()
	var out []T
	err := log.Range(0, 0, func(e events.Envelope) error {
		p, err := events.Decode(e)
		if err != nil {
			return err
		}
		if v, ok := p.(T); ok {
			out = append(out, v)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// A process that keeps dying right after it starts is restarted with a
// growing delay, counted from the recorded crash, and the log says so.
func TestCrashLoopBacksOffInVirtualTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, stop := newCtlHarness(t, &fakeDriver{})
		defer stop()
		h.set("running", "true", "containerEngine.name", "containerd")
		if s := h.vmState(); s != events.VMRunning {
			t.Fatalf("vm is %s after start, want running", s)
		}
		for i, want := range []time.Duration{crashDelayMin, 2 * crashDelayMin, 4 * crashDelayMin} {
			starts := h.drv.callCount("start")
			crashedAt := time.Now()
			if err := h.drv.crash(); err != nil {
				t.Fatal(err)
			}
			synctest.Wait()
			if s := h.vmState(); s != events.VMStarting {
				t.Fatalf("crash %d: vm is %s, want starting while the delay runs", i+1, s)
			}
			advance(want - time.Millisecond)
			synctest.Wait()
			if n := h.drv.callCount("start"); n != starts {
				t.Fatalf("crash %d: restarted before its %s delay", i+1, want)
			}
			advance(time.Millisecond)
			synctest.Wait()
			if n := h.drv.callCount("start"); n != starts+1 {
				t.Fatalf("crash %d: %d starts %s after the crash, want %d", i+1, n, time.Since(crashedAt), starts+1)
			}
		}
		var crashes []*events.Transition
		for _, tr := range logged[*events.Transition](t, h.log) {
			if tr.Event == "crashed" {
				crashes = append(crashes, tr)
			}
		}
		if len(crashes) != 3 {
			t.Fatalf("%d crashes in the log, want 3", len(crashes))
		}
		for i, want := range []string{"1s", "2s", "4s"} {
			if !strings.Contains(crashes[i].Message, "starting it again in "+want) {
				t.Errorf("crash %d message %q does not announce the %s delay", i+1, crashes[i].Message, want)
			}
		}
		// A process that ran for a while is restarted at once.
		advance(vmStableAfter)
		starts := h.drv.callCount("start")
		if err := h.drv.crash(); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if n := h.drv.callCount("start"); n != starts+1 || h.vmState() != events.VMRunning {
			t.Fatalf("a crash after a stable run: %d starts (want %d), vm %s", n, starts+1, h.vmState())
		}
	})
}

// Every failed effect leaves the driver's error in the log, and the
// controller retries with backoff instead of spinning.
func TestFailedEffectsAreLogged(t *testing.T) {
	t.Run("start", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			drv := &fakeDriver{startErr: errors.New("dockerd not found in PATH: install docker.io")}
			h, stop := newCtlHarness(t, drv)
			defer stop()
			h.set("running", "true")
			var failed []*events.Transition
			for _, tr := range logged[*events.Transition](t, h.log) {
				if tr.To == string(events.VMStartFailed) {
					failed = append(failed, tr)
				}
			}
			if len(failed) != 1 || failed[0].Message != drv.startErr.Error() {
				t.Fatalf("startFailed transitions %+v, want one carrying %q", failed, drv.startErr)
			}
			// The retry comes after the backoff, not in a busy loop.
			advance(retryMin)
			synctest.Wait()
			if n := drv.callCount("start"); n != 2 {
				t.Fatalf("%d start attempts after %s, want 2", n, retryMin)
			}
		})
	})
	t.Run("delete", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			drv := &fakeDriver{deleteErr: errors.New("remove /d/engine: device or resource busy")}
			h, stop := newCtlHarness(t, drv)
			defer stop()
			h.set("running", "false")
			if err := h.w.appendOne(context.Background(), &events.AppDeleted{}); err != nil {
				t.Fatal(err)
			}
			synctest.Wait()
			fails := logged[*events.EffectFailed](t, h.log)
			if len(fails) != 1 || fails[0].Effect != "delete" || !strings.Contains(fails[0].Message, drv.deleteErr.Error()) {
				t.Fatalf("effect failures %+v, want one delete failure carrying %q", fails, drv.deleteErr)
			}
			snap := h.w.Snapshot()
			if f := snap.Machine(events.MachineVM).Failure; f == nil || !strings.Contains(f.Message, drv.deleteErr.Error()) {
				t.Fatalf("snapshot failure %+v, want the delete error", f)
			}
			drv.mu.Lock()
			drv.deleteErr = nil
			drv.mu.Unlock()
			advance(retryMin)
			synctest.Wait()
			if s := h.vmState(); s != events.VMAbsent {
				t.Fatalf("vm is %s after the delete could succeed, want absent", s)
			}
			snap = h.w.Snapshot()
			if f := snap.Machine(events.MachineVM).Failure; f != nil {
				t.Errorf("failure %+v outlived the successful delete", f)
			}
		})
	})
	t.Run("reconcile", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			drv := &fakeDriver{}
			h, stop := newCtlHarness(t, drv)
			defer stop()
			h.set("running", "true")
			drv.setInspectErr(errors.New("read /h/engine.json: input/output error"))
			// What a restarted daemon does when the log says an operation was in flight.
			// Fired on the loop's goroutine, which owns the machine.
			fired := make(chan error, 1)
			h.vm.loop.post(context.Background(), func(ctx context.Context) {
				fired <- h.vm.m.Fire(ctx, fsm.VMReconcile, fsm.Change{Generation: 1})
			})
			if err := <-fired; err != nil {
				t.Fatal(err)
			}
			synctest.Wait()
			fails := logged[*events.EffectFailed](t, h.log)
			if len(fails) != 1 || fails[0].Effect != "inspect" || !strings.Contains(fails[0].Message, "input/output error") {
				t.Fatalf("effect failures %+v, want one carrying the inspect error", fails)
			}
			if s := h.vmState(); s != events.VMReconciling {
				t.Fatalf("vm is %s after a failed inspect, want reconciling until the retry", s)
			}
			drv.setInspectErr(nil)
			advance(retryMin)
			synctest.Wait()
			if s := h.vmState(); s != events.VMRunning {
				t.Fatalf("vm is %s once the driver answers again, want running (re-adopted)", s)
			}
		})
	})
	t.Run("inspect at recovery", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			drv := &fakeDriver{}
			h, stop := newCtlHarness(t, drv)
			h.set("running", "true")
			stop()
			drv.setInspectErr(errors.New("read /h/engine.json: input/output error"))
			proj, err := restoreProjectorFrom(h.log)
			if err != nil {
				t.Fatal(err)
			}
			w := newWriter(h.log, proj, time.Now, zaptest.NewLogger(t))
			ctx, cancel := context.WithCancel(context.Background())
			defer func() { cancel(); synctest.Wait() }()
			go w.run(ctx)
			c := newVMController(w, drv, zaptest.NewLogger(t))
			if err := c.recover(ctx, w.Snapshot()); err != nil {
				t.Fatalf("recover must record an inspect failure, not fail the daemon: %v", err)
			}
			fails := logged[*events.EffectFailed](t, h.log)
			if len(fails) != 1 || !strings.Contains(fails[0].Message, "input/output error") {
				t.Fatalf("effect failures %+v, want the inspect error", fails)
			}
		})
	})
}

// restoreProjectorFrom folds a whole in-memory log.
func restoreProjectorFrom(log *store.Mem) (*events.Projector, error) {
	p := events.NewProjector()
	return p, log.Range(0, 0, func(e events.Envelope) error { return p.Apply(e) })
}

// advance moves a synctest bubble's virtual clock by d: it returns at once in
// real time, once every goroutine of the bubble is blocked.
func advance(d time.Duration) { <-time.After(d) }

// A VM boots for minutes: Running stays False/Starting until the boot ends,
// a stop during the boot does not wait for it, and a failed boot is a
// recorded startFailed that is retried.
func TestVMBootIsAwaitedWithoutBlockingTheLoop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, stop := newCtlHarness(t, &fakeDriver{boots: true})
		defer stop()
		h.set("running", "true")
		if s := h.vmState(); s != events.VMStarting {
			t.Fatalf("vm is %s while it boots, want starting", s)
		}
		h.drv.finishBoot(nil)
		synctest.Wait()
		if s := h.vmState(); s != events.VMRunning {
			t.Fatalf("vm is %s after the boot, want running", s)
		}
		snap := h.w.Snapshot()
		if n := snap.Machine(events.MachineVM).Facts.RestartCount; n != 1 {
			t.Fatalf("restart count %d after the first boot, want 1", n)
		}

		// A stop while the next boot runs: stopped at once; the boot's late
		// end changes nothing.
		h.set("running", "false")
		h.set("running", "true")
		if s := h.vmState(); s != events.VMStarting {
			t.Fatalf("vm is %s during the second boot, want starting", s)
		}
		h.set("running", "false")
		if s := h.vmState(); s != events.VMStopped {
			t.Fatalf("vm is %s after a stop during the boot, want stopped", s)
		}

		// A failed boot is recorded and retried.
		h.set("running", "true")
		h.drv.finishBoot(errors.New("the guest never became ready"))
		synctest.Wait()
		var failed *events.Transition
		for _, tr := range logged[*events.Transition](t, h.log) {
			if tr.Event == string(fsm.VMStartFailed) {
				failed = tr
			}
		}
		if failed == nil || !strings.Contains(failed.Message, "never became ready") {
			t.Fatalf("the failed boot is not in the log with its reason: %+v", failed)
		}
		advance(retryMax)
		synctest.Wait()
		if s := h.vmState(); s != events.VMStarting {
			t.Fatalf("vm is %s after the retry delay, want starting again", s)
		}
	})
}
