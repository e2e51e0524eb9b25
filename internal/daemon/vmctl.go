package daemon

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/rdd-project/rdd/internal/events"
	"github.com/rdd-project/rdd/internal/fsm"
	"github.com/rdd-project/rdd/internal/vm"
)

// vmController executes the vm decisions (decideVM): it performs the
// driver's effect a decision names and appends its outcome, success or
// failure, so the log explains every effect (design.md principle 1).
type vmController struct {
	m      *fsm.Machine
	drv    vm.Driver
	w      *writer
	logger *zap.Logger
	loop   *loop
	now    func() time.Time

	// noun names the machine in messages, as the projector's defaults do.
	noun string

	// retryAt delays the next attempt after a failed effect or a crash in a
	// crash loop; failures sets the delay after failed effects.
	retryAt  time.Time
	failures backoff
	// startedAt is when the running process was started or adopted;
	// crashDelay is the delay chosen at the last crash (decideCrash).
	startedAt  time.Time
	crashDelay time.Duration
	// watchToken identifies the current exit watch; a stop or delete
	// bumps it so the exit it causes is not taken for a crash.
	watchToken int
	// booting is true while a boot the driver's Start began goes on; the
	// boot's end comes through the loop's inbox (awaitBoot).
	booting bool
}

const (
	// vmStopTimeout bounds a graceful stop before the driver kills.
	vmStopTimeout = 30 * time.Second
	// vmStartTimeout bounds one start attempt.
	vmStartTimeout = 90 * time.Second
)

func newVMController(w *writer, drv vm.Driver, logger *zap.Logger) *vmController {
	c := &vmController{drv: drv, w: w, logger: logger.With(zap.String("machine", "vm")), noun: events.VMNoun(drv.Name()), now: time.Now}
	c.m = fsm.NewVM(w.appendOne)
	c.loop = newLoop("vm", c, w.kick(), c.logger)
	return c
}

func (c *vmController) run(ctx context.Context) { c.loop.run(ctx) }

func (c *vmController) wakeAt() time.Time {
	if c.booting {
		return time.Time{} // the boot's end wakes the loop; a past retry time must not
	}
	return c.retryAt
}

// input gathers the decision's inputs from the snapshot.
func (c *vmController) input(snap events.Snapshot) vmInput {
	st := snap.Machine(events.MachineVM)
	in := vmInput{
		state: events.VMState(c.m.Current()), exists: snap.Exists && snap.Spec != nil,
		gen: snap.Generation, observed: st.ObservedGeneration, facts: st.Facts,
		noun: c.noun, now: c.now(), retryAt: c.retryAt, booting: c.booting,
	}
	if in.exists {
		cfg := c.config(snap)
		in.running = snap.Spec.Running
		in.hash, in.restartKey = cfg.Hash(), vm.RestartKeyOf(c.drv, cfg)
	}
	return in
}

func (c *vmController) config(snap events.Snapshot) vm.Config {
	return vm.ConfigFor(*snap.Spec, snap.Status.KubernetesPort)
}

func (c *vmController) step(ctx context.Context) (bool, error) {
	snap := c.w.Snapshot()
	in := c.input(snap)
	a := decideVM(in)
	if a.op != vmIdle {
		c.logger.Debug("vm decision", zap.Stringer("op", a.op), zap.String("event", string(a.event)), zap.String("state", string(in.state)),
			zap.Int64("generation", in.gen), zap.Int64("observed", in.observed), zap.Bool("exists", in.exists), zap.Bool("running", in.running),
			zap.String("template-hash", in.facts.TemplateHash), zap.String("want-hash", in.hash), zap.Time("retry-at", in.retryAt))
	}
	switch a.op {
	case vmIdle:
		return false, nil
	case vmFire:
		return true, c.m.Fire(ctx, a.event, a.change)
	case vmObserve:
		return true, c.m.Observe(ctx, a.change.Generation, a.change.Facts)
	case vmCreate:
		return true, c.create(ctx, a.change)
	case vmStart:
		return true, c.start(ctx, c.config(snap), snap.Machine(events.MachineVM).Facts, a.change)
	case vmStop:
		return true, c.stop(ctx, a.change)
	case vmReconcile:
		return true, c.reconcile(ctx, a)
	case vmDelete:
		return true, c.delete(ctx)
	}
	return false, fmt.Errorf("vm decision %s has no executor", a.op)
}

// failed schedules the next attempt after a failed effect.
func (c *vmController) failed() { c.retryAt = c.now().Add(c.failures.next()) }

// succeeded clears the retry state after an effect worked.
func (c *vmController) succeeded() { c.retryAt, c.failures = time.Time{}, backoff{} }

// recordFailure appends a failed effect that has no failed state of its
// own (delete, reconcile, adopt): the machine stays, the log says why.
func (c *vmController) recordFailure(ctx context.Context, effect string, gen int64, err error) error {
	c.failed()
	c.logger.Warn("vm effect failed", zap.String("effect", effect), zap.Error(err))
	return c.w.appendOne(ctx, &events.EffectFailed{Machine: events.MachineVM, Effect: effect, Generation: gen, Message: err.Error()})
}

func (c *vmController) create(ctx context.Context, ch fsm.Change) error {
	adopted, err := c.drv.Create(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		c.failed()
		return c.m.Fire(ctx, fsm.VMCreateFailed, fsm.Change{Generation: ch.Generation, Message: err.Error()})
	}
	c.succeeded()
	ch.Message = c.noun + " created successfully"
	if adopted {
		ch.Message = c.noun + " exists"
	}
	return c.m.Fire(ctx, fsm.VMCreated, ch)
}

// start boots the machine; the driver adopts one that already runs (after
// a daemon crash mid-start) rather than booting a second.
func (c *vmController) start(ctx context.Context, cfg vm.Config, facts events.Facts, ch fsm.Change) error {
	sctx, cancel := context.WithTimeout(ctx, vmStartTimeout)
	defer cancel()
	info, err := c.drv.Start(sctx, cfg)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		c.failed()
		return c.m.Fire(ctx, fsm.VMStartFailed, fsm.Change{Generation: ch.Generation, Message: err.Error()})
	}
	if info.Booted != nil {
		c.awaitBoot(ctx, cfg, facts, info, ch)
		return nil
	}
	return c.started(ctx, cfg, facts, info, ch)
}

// awaitBoot hands the end of a boot the driver began to the loop, so the
// loop stays free to decide (a stop, a new configuration) while the VM boots.
func (c *vmController) awaitBoot(ctx context.Context, cfg vm.Config, facts events.Facts, info vm.Info, ch fsm.Change) {
	c.watchToken++
	c.booting = true
	token, booted := c.watchToken, info.Booted
	go func() {
		select {
		case err := <-booted:
			c.loop.post(ctx, func(ctx context.Context) {
				if token != c.watchToken {
					return // a stop or delete came first
				}
				c.booting = false
				if err := c.booted(ctx, cfg, facts, info, ch, err); err != nil {
					c.logger.Error("record the end of the boot", zap.Error(err))
				}
			})
		case <-ctx.Done():
		}
	}()
}

func (c *vmController) booted(ctx context.Context, cfg vm.Config, facts events.Facts, info vm.Info, ch fsm.Change, bootErr error) error {
	if bootErr != nil {
		c.failed()
		return c.m.Fire(ctx, fsm.VMStartFailed, fsm.Change{Generation: ch.Generation, Message: bootErr.Error()})
	}
	return c.started(ctx, cfg, facts, info, ch)
}

func (c *vmController) started(ctx context.Context, cfg vm.Config, facts events.Facts, info vm.Info, ch fsm.Change) error {
	c.succeeded()
	ch.Facts.PID = events.Int(info.PID)
	ch.Facts.RestartCount = events.Int(facts.RestartCount + 1)
	ch.Message = fmt.Sprintf("%s engine is running (pid %d)", cfg.Engine, info.PID)
	if info.Booted != nil && info.Message != "" {
		ch.Message = info.Message // a booted VM is what runs, not only its engine
	}
	if err := c.m.Fire(ctx, fsm.VMStarted, ch); err != nil {
		return err
	}
	c.watchExit(ctx, info)
	return nil
}

func (c *vmController) stop(ctx context.Context, ch fsm.Change) error {
	c.watchToken++
	c.booting = false
	if err := c.stopDriver(ctx); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		c.failed()
		return c.m.Fire(ctx, fsm.VMStopFailed, fsm.Change{Generation: ch.Generation, Message: err.Error()})
	}
	c.succeeded()
	ch.Facts.PID = events.Int(0)
	return c.m.Fire(ctx, fsm.VMStopped, ch)
}

// stopDriver stops the machine, gracefully for at most vmStopTimeout.
func (c *vmController) stopDriver(ctx context.Context) error {
	sctx, cancel := context.WithTimeout(ctx, vmStopTimeout)
	defer cancel()
	return c.drv.Stop(sctx)
}

// reconcile settles a machine whose state the log cannot tell (after a
// daemon crash, or a create the App no longer wants) on what the driver shows.
func (c *vmController) reconcile(ctx context.Context, a vmAction) error {
	gen := a.change.Generation
	info, err := c.drv.Inspect(ctx)
	if err != nil {
		return c.recordFailure(ctx, "inspect", gen, fmt.Errorf("inspect the %s machine: %w", c.drv.Name(), err))
	}
	if info.Phase == vm.PhaseRunning && a.running {
		c.succeeded()
		patch := events.FactsPatch{PID: events.Int(info.PID), TemplateHash: events.Str(info.TemplateHash)}
		if info.RestartKey != "" {
			patch.RestartKey = events.Str(info.RestartKey)
		}
		// Running becomes True/Started again (behavior.md §6.1).
		snap := c.w.Snapshot()
		patch.RestartCount = events.Int(snap.Machine(events.MachineVM).Facts.RestartCount + 1)
		if err := c.m.Fire(ctx, fsm.VMStarted, fsm.Change{Generation: gen, Message: fmt.Sprintf("re-adopted the running engine process (pid %d)", info.PID), Facts: patch}); err != nil {
			return err
		}
		c.watchExit(ctx, info)
		return nil
	}
	msg := c.noun + " is stopped"
	if info.Phase == vm.PhaseRunning || info.Phase == vm.PhaseBroken {
		// A half-started or unwanted machine is cleaned up at once; the
		// next decision starts it again if it should run.
		if err := c.stopDriver(ctx); err != nil {
			return c.recordFailure(ctx, "stop", gen, fmt.Errorf("stop the %s machine found %s: %w", c.drv.Name(), info.Phase, err))
		}
		if info.Phase == vm.PhaseBroken {
			msg = fmt.Sprintf("%s was half there (%s) and was cleaned up", c.noun, info.Message)
		}
	}
	c.succeeded()
	return c.m.Fire(ctx, fsm.VMStopped, fsm.Change{Generation: gen, Message: msg, Facts: events.FactsPatch{PID: events.Int(0)}})
}

func (c *vmController) delete(ctx context.Context) error {
	c.watchToken++
	c.booting = false
	if err := c.drv.Delete(ctx); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return c.recordFailure(ctx, "delete", 0, fmt.Errorf("delete the %s machine: %w", c.drv.Name(), err))
	}
	c.succeeded()
	return c.m.Fire(ctx, fsm.VMDeleted, fsm.Change{Facts: events.FactsPatch{PID: events.Int(0), TemplateHash: events.Str(""), RestartKey: events.Str("")}})
}

// watchExit watches the process a start or an adoption found, and hands
// its exit to the loop as a crash unless a stop or delete came first.
func (c *vmController) watchExit(ctx context.Context, info vm.Info) {
	c.watchToken++
	c.startedAt = c.now()
	token, exited := c.watchToken, info.Exited
	if exited == nil {
		return
	}
	go func() {
		select {
		case <-exited:
			c.loop.post(ctx, func(ctx context.Context) { c.onExit(ctx, token) })
		case <-ctx.Done():
		}
	}()
}

// onExit records the engine process dying on its own and schedules the
// restart (decideCrash); the decision loop then starts it again.
func (c *vmController) onExit(ctx context.Context, token int) {
	if token != c.watchToken || c.m.Current() != string(events.VMRunning) {
		return
	}
	snap := c.w.Snapshot()
	st := snap.Machine(events.MachineVM)
	msg, delay := decideCrash(st.Facts.PID, c.now().Sub(c.startedAt), c.crashDelay)
	c.crashDelay = delay
	c.logger.Warn("engine process exited", zap.Int("pid", st.Facts.PID), zap.Duration("restart-in", delay))
	if err := c.m.Fire(ctx, fsm.VMCrashed, fsm.Change{Generation: st.ObservedGeneration, Message: msg}); err != nil {
		c.logger.Error("record crash", zap.Error(err))
		return
	}
	// The delay counts from the recorded crash, as the message says.
	c.retryAt = time.Time{}
	if delay > 0 {
		c.retryAt = c.now().Add(delay)
	}
}

// recover rebuilds the machine from the replayed snapshot and re-observes the
// driver, recording what it found (design.md principle 6). A driver that
// cannot be inspected is recorded and reconciled later, not fatal.
func (c *vmController) recover(ctx context.Context, snap events.Snapshot) error {
	st := snap.Machine(events.MachineVM)
	if err := c.m.Restore(st.State); err != nil {
		return err
	}
	believed := events.VMState(st.State)
	if believed == events.VMAbsent {
		return nil
	}
	info, err := c.drv.Inspect(ctx)
	if err != nil {
		err = fmt.Errorf("inspect the %s machine after a daemon restart: %w", c.drv.Name(), err)
		if rerr := c.recordFailure(ctx, "inspect", st.ObservedGeneration, err); rerr != nil {
			return rerr
		}
		info = vm.Info{Phase: vm.PhaseBroken, Message: err.Error()}
	}
	r := decideRecovery(believed, info.Phase, st.Facts.PID, info.PID)
	switch {
	case r.message == "":
		r.message = info.Message
	case info.Phase != vm.PhaseRunning && info.Message != "":
		// What the driver found and cleaned up is the useful part.
		r.message += ": " + info.Message
	}
	rec := &events.Recovered{Machine: events.MachineVM, Believed: string(believed), Found: string(info.Phase), PID: info.PID, Message: r.message}
	if err := c.w.appendOne(ctx, rec); err != nil {
		return err
	}
	if r.adopt {
		c.watchExit(ctx, info)
	}
	if r.event == "" || !c.m.Can(r.event) {
		return nil
	}
	return c.m.Fire(ctx, r.event, fsm.Change{Generation: st.ObservedGeneration, Message: r.message})
}

// shutdown stops a running machine on a graceful daemon stop (behavior.md
// §6.5: machines do not survive a graceful stop; they do survive a crash).
func (c *vmController) shutdown(ctx context.Context) {
	snap := c.w.Snapshot()
	st := snap.Machine(events.MachineVM)
	switch events.VMState(c.m.Current()) {
	case events.VMRunning, events.VMStarting:
		if err := c.m.Fire(ctx, fsm.VMStop, fsm.Change{Generation: st.ObservedGeneration, Message: "Stopping because the daemon stops"}); err != nil {
			c.logger.Error("record stop at shutdown", zap.Error(err))
			return
		}
		if err := c.stop(ctx, fsm.Change{Generation: st.ObservedGeneration, Message: c.noun + " stopped successfully"}); err != nil {
			c.logger.Error("stop at shutdown", zap.Error(err))
		}
	}
}
