package daemon

import (
	"context"
	"sync"

	"go.uber.org/zap"

	"github.com/rdd-project/rdd/internal/api"
	"github.com/rdd-project/rdd/internal/engine"
	"github.com/rdd-project/rdd/internal/events"
	"github.com/rdd-project/rdd/internal/fsm"
	"github.com/rdd-project/rdd/internal/paths"
	"github.com/rdd-project/rdd/internal/spec"
)

// engineController owns the engine machine, the Docker watcher while the VM
// runs moby, and the Docker context (behavior.md §7.1, §7.4).
type engineController struct {
	m      *fsm.Machine
	w      *writer
	paths  paths.Paths
	getenv func(string) string
	logger *zap.Logger
	kick   <-chan struct{}
	phases chan engine.Phase

	mu      sync.Mutex // guards watcher for the inventory readers
	watcher *engine.Watcher
	cancel  context.CancelFunc
	done    chan struct{}
	// switched is true once the Docker context was published for this
	// watcher (behavior.md §7.4: once per watcher start).
	switched bool
	// contexts publishes and removes the Docker context and runs the
	// current-context probe.
	contexts *engine.ContextManager
}

func newEngineController(w *writer, p paths.Paths, getenv func(string) string, logger *zap.Logger) *engineController {
	c := &engineController{w: w, paths: p, getenv: getenv, logger: logger.With(zap.String("machine", "engine")), kick: w.kick(), phases: make(chan engine.Phase, 16)}
	c.m = fsm.NewEngine(w.appendOne)
	c.contexts = engine.NewContextManager(engine.DockerConfigDir(getenv, p.Home), p.Name, c.dockerHost(), getenv, c.logger, nil)
	return c
}

func (c *engineController) recover(ctx context.Context, snap events.Snapshot) error {
	st := snap.Machine(events.MachineEngine)
	if err := c.m.Restore(st.State); err != nil {
		return err
	}
	if st.State == string(events.EngineStopped) {
		return nil
	}
	// The watcher died with the old daemon. The state stays until the new
	// watcher reports, so a re-adopted engine never shows a false Stopped.
	return c.w.appendOne(ctx, &events.Recovered{Machine: events.MachineEngine, Believed: st.State, Found: "no watcher", Message: "reconnecting to the container engine"})
}

func (c *engineController) run(ctx context.Context) {
	defer c.stopWatcher()
	for {
		c.pass(ctx)
		select {
		case <-ctx.Done():
			return
		case <-c.kick:
		case ph := <-c.phases:
			c.onPhase(ctx, ph)
		}
	}
}

func (c *engineController) dockerHost() string {
	if h := c.getenv("RDD_DOCKER_HOST"); h != "" {
		return h
	}
	return "unix://" + c.paths.DockerSocket
}

// stampGen is the generation the engine and Kubernetes machines may claim:
// never newer than what the VM has evaluated, because their conditions mean
// nothing for a spec the VM has not applied yet (F10).
func stampGen(snap events.Snapshot) int64 {
	g := snap.Generation
	if vg := snap.Machine(events.MachineVM).ObservedGeneration; vg < g {
		return vg
	}
	return g
}

func (c *engineController) pass(ctx context.Context) {
	for i := 0; i < 8 && ctx.Err() == nil; i++ {
		moved, err := c.step(ctx)
		if err != nil {
			if ctx.Err() == nil {
				c.logger.Error("engine step", zap.Error(err))
			}
			return
		}
		if !moved {
			return
		}
	}
}

func (c *engineController) step(ctx context.Context) (bool, error) {
	snap := c.w.Snapshot()
	st := snap.Machine(events.MachineEngine)
	state := events.EngineState(c.m.Current())
	vmRunning := snap.Machine(events.MachineVM).State == string(events.VMRunning)
	exists := snap.Exists && snap.Spec != nil
	moby := exists && snap.Spec.ContainerEngine.Name == spec.EngineMoby
	gen := stampGen(snap)

	switch {
	case exists && vmRunning && !moby:
		if c.stopWatcher() {
			c.removeContext(ctx) // a backend switch removes the context (§7.4)
		}
		if state != events.EngineStopped && state != events.EngineNotApplicable {
			return true, c.m.Fire(ctx, fsm.EngineStop, fsm.Change{Generation: gen, Facts: events.ReplaceFacts(events.Facts{})})
		}
		if state == events.EngineStopped {
			return true, c.m.Fire(ctx, fsm.EngineNotApplicable, fsm.Change{Generation: gen, Facts: events.ReplaceFacts(events.Facts{})})
		}
	case exists && vmRunning && moby:
		if c.watcherRunning() {
			if state == events.EngineConnected && st.ObservedGeneration < gen {
				return true, c.m.Observe(ctx, gen, events.FactsPatch{})
			}
			return false, nil
		}
		c.startWatcher(ctx)
		if c.m.Can(fsm.EngineConnect) {
			return true, c.m.Fire(ctx, fsm.EngineConnect, fsm.Change{Generation: gen, Message: "Connecting to " + c.dockerHost(), Facts: events.ReplaceFacts(events.Facts{})})
		}
		return false, nil
	default:
		wasRunning := c.stopWatcher()
		if wasRunning || state != events.EngineStopped {
			c.removeContext(ctx)
		}
		if state != events.EngineStopped {
			return true, c.m.Fire(ctx, fsm.EngineStop, fsm.Change{Generation: gen, Facts: events.ReplaceFacts(events.Facts{})})
		}
	}
	if exists && st.ObservedGeneration < gen {
		return true, c.m.Observe(ctx, gen, events.FactsPatch{})
	}
	return false, nil
}

func (c *engineController) onPhase(ctx context.Context, ph engine.Phase) {
	if !c.watcherRunning() {
		return // a late report from a watcher already stopped
	}
	snap := c.w.Snapshot()
	gen := stampGen(snap)
	facts := events.Facts{Containers: ph.Counts.Containers, Images: ph.Counts.Images, Volumes: ph.Counts.Volumes}
	state := events.EngineState(c.m.Current())
	var err error
	switch ph.State {
	case engine.PhaseConnected:
		if state == events.EngineConnected {
			err = c.m.Observe(ctx, gen, events.ReplaceFacts(facts))
		} else {
			err = c.m.Fire(ctx, fsm.EngineConnected, fsm.Change{Generation: gen, Message: "Container engine synced", Facts: events.ReplaceFacts(facts)})
		}
		if err == nil && !c.switched {
			c.switched = true
			if err := c.contexts.Activate(ctx); err != nil {
				c.logger.Warn("write docker context", zap.Error(err))
			}
		}
	case engine.PhaseConnectFailed:
		if state != events.EngineConnectFailed && c.m.Can(fsm.EngineConnectFailed) {
			err = c.m.Fire(ctx, fsm.EngineConnectFailed, fsm.Change{Generation: gen, Message: phaseMessage(ph), Facts: events.ReplaceFacts(events.Facts{})})
		}
	case engine.PhaseDisconnected:
		if state == events.EngineConnected {
			err = c.m.Fire(ctx, fsm.EngineDisconnected, fsm.Change{Generation: gen, Message: phaseMessage(ph), Facts: events.ReplaceFacts(events.Facts{})})
		}
	}
	if err != nil && ctx.Err() == nil {
		c.logger.Error("record engine phase", zap.String("phase", string(ph.State)), zap.Error(err))
	}
}

func phaseMessage(ph engine.Phase) string {
	if ph.Err != nil {
		return ph.Err.Error()
	}
	return string(ph.State)
}

func (c *engineController) watcherRunning() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.watcher != nil
}

func (c *engineController) startWatcher(ctx context.Context) {
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	w := engine.NewWatcher(c.dockerHost(), c.logger, engine.WatcherOptions{
		OnPhase: func(ph engine.Phase) {
			select {
			case c.phases <- ph:
			case <-wctx.Done():
			}
		},
	})
	c.mu.Lock()
	c.watcher, c.cancel, c.done, c.switched = w, cancel, done, false
	c.mu.Unlock()
	go func() { defer close(done); w.Run(wctx) }()
}

// stopWatcher cancels the watcher, waits for it, and reports whether one
// was running. The Docker context is the caller's to remove.
func (c *engineController) stopWatcher() bool {
	c.mu.Lock()
	w, cancel, done := c.watcher, c.cancel, c.done
	c.watcher, c.cancel, c.done = nil, nil, nil
	c.mu.Unlock()
	if w == nil {
		return false
	}
	cancel()
	<-done
	// Drop reports the old watcher left behind.
	for {
		select {
		case <-c.phases:
		default:
			return true
		}
	}
}

// removeContext stops a current-context probe still running and removes
// the Docker context.
func (c *engineController) removeContext(ctx context.Context) {
	if err := c.contexts.Deactivate(ctx); err != nil {
		c.logger.Warn("remove docker context", zap.Error(err))
	}
}

// shutdown runs after the controller goroutine ended: the VM is about to
// stop, so record the engine stopping and remove the context.
func (c *engineController) shutdown(ctx context.Context) {
	c.stopWatcher()
	if c.m.Current() == string(events.EngineStopped) {
		return
	}
	c.removeContext(ctx)
	gen := stampGen(c.w.Snapshot())
	if err := c.m.Fire(ctx, fsm.EngineStop, fsm.Change{Generation: gen, Message: "Container engine stopped because the daemon stops", Facts: events.ReplaceFacts(events.Facts{})}); err != nil {
		c.logger.Warn("record engine stop", zap.Error(err))
	}
}

// inventory returns the connected watcher's inventory, or a 409 when the
// engine is not connected.
func (c *engineController) inventory() (*engine.Inventory, error) {
	c.mu.Lock()
	w := c.watcher
	c.mu.Unlock()
	if w == nil {
		return nil, &api.Error{Code: api.CodeConflict, Message: "the container engine is not connected: start the App with `rdd start`"}
	}
	return w.Inventory(), nil
}

// Containers implements api.EngineInventory.
func (c *engineController) Containers(context.Context) (any, error) {
	inv, err := c.inventory()
	if err != nil {
		return nil, err
	}
	return inv.Containers(), nil
}

// Images implements api.EngineInventory.
func (c *engineController) Images(context.Context) (any, error) {
	inv, err := c.inventory()
	if err != nil {
		return nil, err
	}
	return inv.Images(), nil
}

// Volumes implements api.EngineInventory.
func (c *engineController) Volumes(context.Context) (any, error) {
	inv, err := c.inventory()
	if err != nil {
		return nil, err
	}
	return inv.Volumes(), nil
}
