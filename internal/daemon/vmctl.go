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

// vmController owns the vm machine and the VM driver. It derives the next
// transition from the snapshot (desired state) and what the driver reports,
// and starts the driver's effects only after the transition is durable.
type vmController struct {
	m      *fsm.Machine
	drv    vm.Driver
	w      *writer
	logger *zap.Logger
	kick   <-chan struct{}

	// noun names the machine in condition messages: "Lima instance" for
	// lima (the reference's exact texts), "Host engine" for host.
	noun string

	exited  <-chan struct{} // the running engine process; nil when none
	retryAt time.Time
	backoff time.Duration
	// startedAt is when the running process was started or adopted;
	// crashBackoff grows while it keeps dying soon after starting, so a
	// crash loop costs a restart every 30 s at most instead of a busy loop.
	startedAt    time.Time
	crashBackoff time.Duration
}

const (
	vmRetryMin = 500 * time.Millisecond
	vmRetryMax = 30 * time.Second
	// vmStopTimeout bounds a graceful stop before the driver kills.
	vmStopTimeout = 30 * time.Second
	// vmStartTimeout bounds one start attempt.
	vmStartTimeout = 90 * time.Second
	// A process that dies within vmStableAfter of starting is crash
	// looping: the next start waits vmCrashBackoffMin, doubling up to vmRetryMax.
	vmStableAfter     = 10 * time.Second
	vmCrashBackoffMin = time.Second
)

func newVMController(w *writer, drv vm.Driver, logger *zap.Logger) *vmController {
	c := &vmController{drv: drv, w: w, logger: logger.With(zap.String("machine", "vm")), kick: w.kick(), noun: "Lima instance"}
	if drv.Name() != "lima" {
		c.noun = "Host engine"
	}
	c.m = fsm.NewVM(w.appendOne)
	return c
}

// recover rebuilds the machine from the replayed snapshot and re-observes the
// driver, recording what it found (design.md principle 6).
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
		return fmt.Errorf("inspect %s machine after restart: %w", c.drv.Name(), err)
	}
	rec := &events.Recovered{Machine: events.MachineVM, Believed: string(believed), Found: string(info.Phase), PID: info.PID, Message: info.Message}
	switch {
	case believed == events.VMRunning && info.Phase == vm.PhaseRunning:
		rec.Message = fmt.Sprintf("re-adopted the running engine process (pid %d)", info.PID)
		c.adopt(info)
	case believed == events.VMRunning:
		rec.Message = fmt.Sprintf("the engine process (pid %d) is gone; it will be started again", st.Facts.PID)
	case believed == events.VMStopped && info.Phase == vm.PhaseRunning,
		believed == events.VMStarting, believed == events.VMStopping,
		believed == events.VMCreating, believed == events.VMDeleting:
		rec.Message = "an operation was in flight when the daemon stopped; reconciling"
	}
	if err := c.w.appendOne(ctx, rec); err != nil {
		return err
	}
	switch {
	case believed == events.VMRunning && info.Phase == vm.PhaseRunning:
		return nil
	case believed == events.VMRunning:
		return c.m.Fire(ctx, fsm.VMCrashed, fsm.Change{Generation: st.ObservedGeneration, Message: rec.Message, Facts: events.ReplaceFacts(st.Facts)})
	case info.Phase != vm.PhaseRunning && (believed == events.VMStopped || believed == events.VMCreateFailed ||
		believed == events.VMStartFailed || believed == events.VMStopFailed):
		return nil
	case c.m.Can(fsm.VMReconcile):
		return c.m.Fire(ctx, fsm.VMReconcile, fsm.Change{Generation: st.ObservedGeneration, Message: rec.Message, Facts: events.ReplaceFacts(st.Facts)})
	}
	return nil
}

func (c *vmController) adopt(info vm.Info) {
	c.exited, c.startedAt = info.Exited, time.Now()
}

// run drives the machine until ctx ends.
func (c *vmController) run(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		c.pass(ctx)
		if !c.retryAt.IsZero() {
			timer.Reset(time.Until(c.retryAt))
		}
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-c.kick:
		case <-c.exited:
			c.onExit(ctx)
		case <-timer.C:
			c.retryAt = time.Time{}
		}
		timer.Stop()
	}
}

// onExit handles the engine process dying on its own.
func (c *vmController) onExit(ctx context.Context) {
	c.exited = nil
	if c.m.Current() != string(events.VMRunning) {
		return
	}
	snap := c.w.Snapshot()
	st := snap.Machine(events.MachineVM)
	pid := st.Facts.PID
	msg := fmt.Sprintf("the engine process (pid %d) exited unexpectedly; starting it again", pid)
	if up := time.Since(c.startedAt); up < vmStableAfter {
		if c.crashBackoff == 0 {
			c.crashBackoff = vmCrashBackoffMin
		} else if c.crashBackoff *= 2; c.crashBackoff > vmRetryMax {
			c.crashBackoff = vmRetryMax
		}
		msg = fmt.Sprintf("the engine process (pid %d) exited %s after it started; starting it again in %s", pid, up.Round(time.Millisecond), c.crashBackoff)
	} else {
		c.crashBackoff = 0
	}
	c.logger.Warn("engine process exited", zap.Int("pid", pid))
	if err := c.m.Fire(ctx, fsm.VMCrashed, fsm.Change{Generation: st.ObservedGeneration, Message: msg, Facts: events.ReplaceFacts(st.Facts)}); err != nil {
		c.logger.Error("record crash", zap.Error(err))
	}
	// The delay counts from the recorded crash, as the message says.
	if c.crashBackoff > 0 {
		c.retryAt = time.Now().Add(c.crashBackoff)
	}
}

func (c *vmController) scheduleRetry() {
	if c.backoff == 0 {
		c.backoff = vmRetryMin
	} else if c.backoff *= 2; c.backoff > vmRetryMax {
		c.backoff = vmRetryMax
	}
	c.retryAt = time.Now().Add(c.backoff)
}

func (c *vmController) retryDue() bool {
	return c.retryAt.IsZero() || !time.Now().Before(c.retryAt)
}

// pass performs transitions until the machine rests; each effect runs after
// the transition that announces it is in the log.
func (c *vmController) pass(ctx context.Context) {
	for i := 0; i < 16 && ctx.Err() == nil; i++ {
		moved, err := c.step(ctx)
		if err != nil {
			if ctx.Err() == nil {
				c.logger.Error("vm step", zap.Error(err))
				c.scheduleRetry()
			}
			return
		}
		if !moved {
			return
		}
	}
}

// step takes at most one decision. moved reports whether anything was appended.
func (c *vmController) step(ctx context.Context) (moved bool, err error) {
	snap := c.w.Snapshot()
	st := snap.Machine(events.MachineVM)
	state := events.VMState(c.m.Current())
	facts := st.Facts
	gen := snap.Generation

	if !snap.Exists || snap.Spec == nil {
		switch state {
		case events.VMAbsent:
			return false, nil
		case events.VMRunning, events.VMStarting:
			return true, c.m.Fire(ctx, fsm.VMStop, fsm.Change{Generation: st.ObservedGeneration, Message: "Stopping before the App is deleted", Facts: events.ReplaceFacts(facts)})
		case events.VMStopping:
			return true, c.stop(ctx, st.ObservedGeneration, facts, c.noun+" stopped successfully")
		case events.VMDeleting:
			return true, c.delete(ctx, facts)
		case events.VMReconciling:
			return true, c.reconcile(ctx, st.ObservedGeneration, false, facts)
		default:
			if c.m.Can(fsm.VMDelete) {
				return true, c.m.Fire(ctx, fsm.VMDelete, fsm.Change{Generation: st.ObservedGeneration, Facts: events.ReplaceFacts(facts)})
			}
			return false, nil
		}
	}

	desired := snap.Spec.Running
	cfg := vm.ConfigFor(*snap.Spec, snap.Status.KubernetesPort)
	hash := cfg.Hash()

	switch state {
	case events.VMAbsent:
		return true, c.m.Fire(ctx, fsm.VMCreate, fsm.Change{Generation: gen, Facts: events.ReplaceFacts(events.Facts{})})
	case events.VMCreateFailed:
		if !c.retryDue() {
			return false, nil
		}
		return true, c.m.Fire(ctx, fsm.VMCreate, fsm.Change{Generation: gen, Facts: events.ReplaceFacts(events.Facts{})})
	case events.VMCreating:
		adopted, err := c.drv.Create(ctx)
		if err != nil {
			c.scheduleRetry()
			return true, c.m.Fire(ctx, fsm.VMCreateFailed, fsm.Change{Generation: gen, Message: err.Error(), Facts: events.ReplaceFacts(events.Facts{})})
		}
		c.backoff = 0
		msg := c.noun + " created successfully"
		if adopted {
			msg = c.noun + " exists"
		}
		return true, c.m.Fire(ctx, fsm.VMCreated, fsm.Change{Generation: gen, Message: msg, Facts: events.ReplaceFacts(events.Facts{TemplateHash: hash, RestartCount: facts.RestartCount})})
	case events.VMStopped:
		if desired {
			return true, c.m.Fire(ctx, fsm.VMStart, fsm.Change{Generation: gen, Message: c.noun + " is starting", Facts: events.ReplaceFacts(withHash(facts, hash))})
		}
		// A stopped machine takes a new configuration at once, without a boot.
		if facts.TemplateHash != hash || st.ObservedGeneration < gen {
			f := withHash(facts, hash)
			return true, c.m.Observe(ctx, gen, events.ReplaceFacts(f))
		}
		return false, nil
	case events.VMStarting:
		if !c.retryDue() {
			return false, nil // crash-loop backoff; the run loop's timer resumes
		}
		return true, c.start(ctx, gen, cfg, facts)
	case events.VMRunning:
		if !desired {
			return true, c.m.Fire(ctx, fsm.VMStop, fsm.Change{Generation: gen, Message: c.noun + " is stopping", Facts: events.ReplaceFacts(facts)})
		}
		if facts.TemplateHash != hash {
			// Restart for a configuration change: keep the old hash until the
			// new start, so Settled says ApplyingTemplate throughout (F12).
			return true, c.m.Fire(ctx, fsm.VMStop, fsm.Change{Generation: gen, Message: "Stopping to apply the configuration change", Facts: events.ReplaceFacts(facts)})
		}
		if st.ObservedGeneration < gen {
			return true, c.m.Observe(ctx, gen, events.FactsPatch{})
		}
		return false, nil
	case events.VMStopping:
		msg := c.noun + " stopped successfully"
		if desired && facts.TemplateHash != hash {
			msg = "Stopped for restart"
		}
		return true, c.stop(ctx, gen, facts, msg)
	case events.VMStartFailed:
		if !desired {
			return true, c.m.Fire(ctx, fsm.VMStop, fsm.Change{Generation: gen, Facts: events.ReplaceFacts(facts)})
		}
		if st.ObservedGeneration < gen || c.retryDue() {
			return true, c.m.Fire(ctx, fsm.VMStart, fsm.Change{Generation: gen, Message: c.noun + " is starting", Facts: events.ReplaceFacts(withHash(facts, hash))})
		}
		return false, nil
	case events.VMStopFailed:
		if st.ObservedGeneration < gen || c.retryDue() {
			if desired {
				return true, c.m.Fire(ctx, fsm.VMStart, fsm.Change{Generation: gen, Message: c.noun + " is starting", Facts: events.ReplaceFacts(withHash(facts, hash))})
			}
			return true, c.m.Fire(ctx, fsm.VMStop, fsm.Change{Generation: gen, Facts: events.ReplaceFacts(facts)})
		}
		return false, nil
	case events.VMReconciling:
		return true, c.reconcile(ctx, gen, desired, facts)
	case events.VMDeleting:
		return true, c.delete(ctx, facts)
	}
	return false, nil
}

func withHash(f events.Facts, hash string) events.Facts {
	f.TemplateHash = hash
	return f
}

func (c *vmController) start(ctx context.Context, gen int64, cfg vm.Config, facts events.Facts) error {
	// Starting may be re-entered after a daemon crash: adopt what runs.
	if info, err := c.drv.Inspect(ctx); err == nil && info.Phase == vm.PhaseRunning && info.TemplateHash == cfg.Hash() {
		return c.started(ctx, gen, cfg, facts, info)
	}
	sctx, cancel := context.WithTimeout(ctx, vmStartTimeout)
	defer cancel()
	info, err := c.drv.Start(sctx, cfg)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		c.scheduleRetry()
		return c.m.Fire(ctx, fsm.VMStartFailed, fsm.Change{Generation: gen, Message: err.Error(), Facts: events.ReplaceFacts(facts)})
	}
	return c.started(ctx, gen, cfg, facts, info)
}

func (c *vmController) started(ctx context.Context, gen int64, cfg vm.Config, facts events.Facts, info vm.Info) error {
	c.backoff, c.retryAt = 0, time.Time{}
	f := facts
	f.PID = info.PID
	f.TemplateHash = cfg.Hash()
	f.RestartCount++
	c.adopt(info)
	return c.m.Fire(ctx, fsm.VMStarted, fsm.Change{Generation: gen, Message: fmt.Sprintf("%s engine is running (pid %d)", cfg.Engine, info.PID), Facts: events.ReplaceFacts(f)})
}

func (c *vmController) stop(ctx context.Context, gen int64, facts events.Facts, msg string) error {
	c.exited = nil
	sctx, cancel := context.WithTimeout(ctx, vmStopTimeout)
	defer cancel()
	f := facts
	f.PID = 0
	if err := c.drv.Stop(sctx); err != nil {
		c.scheduleRetry()
		return c.m.Fire(ctx, fsm.VMStopFailed, fsm.Change{Generation: gen, Message: err.Error(), Facts: events.ReplaceFacts(facts)})
	}
	return c.m.Fire(ctx, fsm.VMStopped, fsm.Change{Generation: gen, Message: msg, Facts: events.ReplaceFacts(f)})
}

func (c *vmController) reconcile(ctx context.Context, gen int64, desired bool, facts events.Facts) error {
	info, err := c.drv.Inspect(ctx)
	if err != nil {
		return err
	}
	if info.Phase == vm.PhaseRunning {
		if desired {
			f := facts
			f.PID, f.TemplateHash = info.PID, info.TemplateHash
			f.RestartCount++ // Running becomes True/Started again (behavior.md §6.1)
			c.adopt(info)
			return c.m.Fire(ctx, fsm.VMStarted, fsm.Change{Generation: gen, Message: fmt.Sprintf("re-adopted the running engine process (pid %d)", info.PID), Facts: events.ReplaceFacts(f)})
		}
		sctx, cancel := context.WithTimeout(ctx, vmStopTimeout)
		defer cancel()
		if err := c.drv.Stop(sctx); err != nil {
			return err
		}
	}
	f := facts
	f.PID = 0
	return c.m.Fire(ctx, fsm.VMStopped, fsm.Change{Generation: gen, Message: c.noun + " is stopped", Facts: events.ReplaceFacts(f)})
}

func (c *vmController) delete(ctx context.Context, facts events.Facts) error {
	c.exited = nil
	if err := c.drv.Delete(ctx); err != nil {
		return fmt.Errorf("delete the %s machine: %w", c.drv.Name(), err)
	}
	return c.m.Fire(ctx, fsm.VMDeleted, fsm.Change{Facts: events.ReplaceFacts(events.Facts{})})
}

// shutdown stops a running machine on a graceful daemon stop (behavior.md
// §6.5: machines do not survive a graceful stop; they do survive a crash).
func (c *vmController) shutdown(ctx context.Context) {
	snap := c.w.Snapshot()
	st := snap.Machine(events.MachineVM)
	switch events.VMState(c.m.Current()) {
	case events.VMRunning, events.VMStarting:
		if err := c.m.Fire(ctx, fsm.VMStop, fsm.Change{Generation: st.ObservedGeneration, Message: "Stopping because the daemon stops", Facts: events.ReplaceFacts(st.Facts)}); err != nil {
			c.logger.Error("record stop at shutdown", zap.Error(err))
			return
		}
		if err := c.stop(ctx, st.ObservedGeneration, st.Facts, c.noun+" stopped successfully"); err != nil {
			c.logger.Error("stop at shutdown", zap.Error(err))
		}
	}
}
