package daemon

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/rdd-project/rdd/internal/api"
	"github.com/rdd-project/rdd/internal/engine"
	"github.com/rdd-project/rdd/internal/events"
	"github.com/rdd-project/rdd/internal/fsm"
	"github.com/rdd-project/rdd/internal/paths"
	"github.com/rdd-project/rdd/internal/spec"
)

// engineController executes the engine decisions (decideEngine,
// decidePhase): it owns the Docker watcher while the VM runs moby, and the
// Docker context (behavior.md §7.1, §7.4).
type engineController struct {
	m      *fsm.Machine
	w      *writer
	paths  paths.Paths
	getenv func(string) string
	logger *zap.Logger
	loop   *loop

	mu      sync.Mutex // guards watcher and version for the API's readers
	watcher *engine.Watcher
	// version is the engine's own version, as its watcher last connected
	// (moby only); "" while no watcher is connected.
	version string
	cancel  context.CancelFunc
	done    chan struct{}
	// watchToken identifies the current watcher, so a late report of a
	// stopped one is dropped.
	watchToken int
	// activated is true once the Docker context was published (or its
	// publication failed and was recorded) for this watcher (§7.4).
	activated bool
	// contexts publishes and removes the Docker context and runs the
	// current-context probe.
	contexts *engine.ContextManager
}

func newEngineController(w *writer, p paths.Paths, getenv func(string) string, logger *zap.Logger) *engineController {
	c := &engineController{w: w, paths: p, getenv: getenv, logger: logger.With(zap.String("machine", "engine"))}
	c.m = fsm.NewEngine(w.appendOne)
	c.contexts = engine.NewContextManager(engine.DockerConfigDir(getenv, p.Home), p.Name, c.dockerHost(), getenv, c.logger, nil)
	c.loop = newLoop("engine", c, w.kick(), c.logger)
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
	c.loop.run(ctx)
}

// wakeAt: the engine controller waits only for commits and watcher reports.
func (c *engineController) wakeAt() time.Time { return time.Time{} }

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

func (c *engineController) input(snap events.Snapshot) engineInput {
	exists := snap.Exists && snap.Spec != nil
	return engineInput{
		state:  events.EngineState(c.m.Current()),
		exists: exists, vmRunning: snap.Machine(events.MachineVM).State == string(events.VMRunning),
		moby: exists && snap.Spec.ContainerEngine.Name == spec.EngineMoby,
		gen:  stampGen(snap), observed: snap.Machine(events.MachineEngine).ObservedGeneration,
		watching: c.watcherRunning(), activated: c.activated,
	}
}

func (c *engineController) step(ctx context.Context) (bool, error) {
	in := c.input(c.w.Snapshot())
	a := decideEngine(in)
	if a.op != engineIdle {
		c.logger.Debug("engine decision", zap.Stringer("op", a.op), zap.String("event", string(a.event)), zap.String("state", string(in.state)),
			zap.Int64("generation", in.gen), zap.Bool("vm-running", in.vmRunning), zap.Bool("moby", in.moby), zap.Bool("watching", in.watching))
	}
	return c.execute(ctx, a)
}

func (c *engineController) execute(ctx context.Context, a engineAction) (bool, error) {
	switch a.op {
	case engineIdle:
		return false, nil
	case engineFire:
		return true, c.m.Fire(ctx, a.event, a.change)
	case engineObserve:
		return true, c.m.Observe(ctx, a.change.Generation, a.change.Facts)
	case engineWatch:
		c.startWatcher(ctx)
		if a.event == "" {
			return false, nil
		}
		a.change.Message = "Connecting to " + c.dockerHost()
		return true, c.m.Fire(ctx, a.event, a.change)
	case engineUnwatch:
		c.stopWatcher()
		if err := c.contexts.Deactivate(ctx); err != nil {
			if err := c.recordFailure(ctx, "remove docker context", a.change.Generation, err); err != nil {
				return true, err
			}
		}
		if a.event == "" {
			return true, nil
		}
		return true, c.m.Fire(ctx, a.event, a.change)
	case engineActivate:
		c.activated = true
		if err := c.contexts.Activate(ctx); err != nil {
			return true, c.recordFailure(ctx, "publish docker context", stampGen(c.w.Snapshot()), err)
		}
		return false, nil
	}
	return false, fmt.Errorf("engine decision %s has no executor", a.op)
}

// recordFailure appends a failed effect; the docker context is best effort,
// so the machine stays where it is and the log says why.
func (c *engineController) recordFailure(ctx context.Context, effect string, gen int64, err error) error {
	c.logger.Warn("engine effect failed", zap.String("effect", effect), zap.Error(err))
	return c.w.appendOne(ctx, &events.EffectFailed{Machine: events.MachineEngine, Effect: effect, Generation: gen, Message: err.Error()})
}

// onPhase records a report of the current watcher.
func (c *engineController) onPhase(ctx context.Context, token int, ph engine.Phase) {
	if token != c.watchToken || !c.watcherRunning() {
		return // a late report from a watcher already stopped
	}
	if ph.EngineVersion != "" {
		c.mu.Lock()
		c.version = ph.EngineVersion
		c.mu.Unlock()
	}
	a := decidePhase(events.EngineState(c.m.Current()), stampGen(c.w.Snapshot()), ph)
	if _, err := c.execute(ctx, a); err != nil && ctx.Err() == nil {
		c.logger.Error("record engine phase", zap.String("phase", string(ph.State)), zap.Error(err))
	}
}

func (c *engineController) watcherRunning() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.watcher != nil
}

func (c *engineController) startWatcher(ctx context.Context) {
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	c.watchToken++
	token := c.watchToken
	w := engine.NewWatcher(c.dockerHost(), c.logger, engine.WatcherOptions{
		OnPhase: func(ph engine.Phase) {
			c.loop.post(wctx, func(ctx context.Context) { c.onPhase(ctx, token, ph) })
		},
	})
	c.mu.Lock()
	c.watcher, c.cancel, c.done = w, cancel, done
	c.mu.Unlock()
	c.activated = false
	go func() { defer close(done); w.Run(wctx) }()
}

// stopWatcher cancels the watcher and waits for it. The Docker context is
// the caller's to remove.
func (c *engineController) stopWatcher() {
	c.mu.Lock()
	w, cancel, done := c.watcher, c.cancel, c.done
	c.watcher, c.cancel, c.done = nil, nil, nil
	c.version = ""
	c.mu.Unlock()
	if w == nil {
		return
	}
	c.watchToken++
	cancel()
	<-done
}

// shutdown runs after the controller goroutine ended: the VM is about to
// stop, so record the engine stopping and remove the context.
func (c *engineController) shutdown(ctx context.Context) {
	c.stopWatcher()
	if c.m.Current() == string(events.EngineStopped) {
		return
	}
	if err := c.contexts.Deactivate(ctx); err != nil {
		c.logger.Warn("remove docker context", zap.Error(err))
	}
	gen := stampGen(c.w.Snapshot())
	if err := c.m.Fire(ctx, fsm.EngineStop, fsm.Change{Generation: gen, Message: "Container engine stopped because the daemon stops"}); err != nil {
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
		return nil, c.notConnected()
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

// notConnected explains why there is no inventory, and what to do.
func (c *engineController) notConnected() error {
	snap := c.w.Snapshot()
	switch {
	case !snap.Exists || snap.Spec == nil:
		return &api.Error{Code: api.CodeConflict, Message: "there is no App yet: create and start it with `rdd start`"}
	case snap.Spec.ContainerEngine.Name != spec.EngineMoby:
		return &api.Error{Code: api.CodeConflict, Message: fmt.Sprintf("the container engine is %s: rdd lists containers, images and volumes of moby only; use `nerdctl --address %s` (or `ctr`), or switch with `rdd set containerEngine.name=moby`", snap.Spec.ContainerEngine.Name, filepath.Join(c.paths.ShortDir, "containerd.sock"))}
	case !snap.Spec.Running:
		return &api.Error{Code: api.CodeConflict, Message: "the App is stopped: start it with `rdd start`"}
	}
	return &api.Error{Code: api.CodeConflict, Message: "the container engine is not connected yet: see `rdd why ContainerEngineReady`"}
}

// engineVersion is the version of the engine the watcher is connected to,
// "" when none is.
func (c *engineController) engineVersion() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.version
}
