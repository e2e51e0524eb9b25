// Package daemon wires the event log, the projector, the four machines and
// their controllers, and the socket API into the running `rdd daemon`.
//
// Goroutines: the writer (sole owner of appends and the snapshot), one
// controller per subsystem (vm; engine; k3s+kubeconfig), and the API server.
// Each is started and stopped by Run, which returns only after all of them
// have ended.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/rdd-project/rdd/internal/api"
	"github.com/rdd-project/rdd/internal/events"
	"github.com/rdd-project/rdd/internal/paths"
	"github.com/rdd-project/rdd/internal/spec"
	"github.com/rdd-project/rdd/internal/store"
	"github.com/rdd-project/rdd/internal/vm"
	"github.com/rdd-project/rdd/internal/vm/host"
	"github.com/rdd-project/rdd/internal/vm/lima"
)

// Options configure one daemon run.
type Options struct {
	Paths paths.Paths
	// VMDriver is "host", "lima" or "auto" (design.md §4); "" reads
	// RDD_VM_DRIVER, then means auto.
	VMDriver string
	// LogLevel is a zap level name; "" reads RDD_LOG_LEVEL, then means info.
	LogLevel string
	// Version is the rdd version recorded in DaemonStarted.
	Version string
	// Commit and BuildDate describe the build, for GET /v1/healthz.
	Commit, BuildDate string
	// Ready, if non-nil, is closed once the socket serves.
	Ready chan<- struct{}
	// Getenv reads the daemon's environment (frozen at start, F20); nil means os.Getenv.
	Getenv func(string) string
	// Logger, if non-nil, replaces the file logger (tests).
	Logger *zap.Logger
	// Driver, if non-nil, replaces the VM driver chosen by VMDriver (tests).
	Driver vm.Driver
	// RetainEvents, when > 0, keeps that many events before the latest
	// checkpoint and removes older ones (design.md §2). 0 reads
	// RDD_RETAIN_EVENTS; unset keeps every event.
	RetainEvents uint64

	// checkpointEvery overrides defaultCheckpointEvery (tests).
	checkpointEvery int
}

// ErrAlreadyRunning is returned when another daemon holds the instance's event log.
var ErrAlreadyRunning = errors.New("daemon: another rdd daemon is already running for this instance")

// storeOpenTimeout is how long a second daemon waits for the log's lock
// before it gives up (the issue asks for an exit within 1 s).
const storeOpenTimeout = 700 * time.Millisecond

// Run runs the daemon until ctx ends (SIGINT/SIGTERM in `rdd daemon`), then
// shuts down gracefully.
func Run(ctx context.Context, opts Options) error {
	getenv := opts.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	p := opts.Paths
	if _, err := spec.Bundled(); err != nil {
		return fmt.Errorf("the k3s version list built into rdd is unusable: %w", err)
	}
	if err := p.EnsureDirs(); err != nil {
		return err
	}
	logger, closeLogger, err := daemonLogger(opts, getenv)
	if err != nil {
		return err
	}
	defer closeLogger()

	log, err := store.Open(p.EventLog, store.Options{Timeout: storeOpenTimeout, Logger: logger, Instance: p.Name})
	if err != nil {
		if errors.Is(err, store.ErrLocked) {
			return fmt.Errorf("%w: %s is held by another process (see `rdd svc status`)", ErrAlreadyRunning, p.EventLog)
		}
		return err
	}
	defer func() {
		if err := log.Close(); err != nil {
			logger.Error("close event log", zap.Error(err))
		}
	}()
	proj, err := restoreProjector(log)
	if err != nil {
		return err
	}
	drv, reason, err := vmDriver(opts, getenv, logger)
	if err != nil {
		return err
	}
	if c, ok := drv.(interface{ Close() error }); ok {
		defer c.Close()
	}
	retain, err := retention(opts.RetainEvents, getenv)
	if err != nil {
		return err
	}
	if err := writePIDFile(p.PIDFile); err != nil {
		return err
	}
	defer os.Remove(p.PIDFile)

	d := &daemon{paths: p, logger: logger, getenv: getenv}
	wctx, wcancel := context.WithCancel(context.WithoutCancel(ctx))
	d.w = newWriter(log, proj, time.Now, logger.With(zap.String("subsystem", "writer")))
	d.w.retain = retain
	if opts.checkpointEvery > 0 {
		d.w.checkpointEvery = opts.checkpointEvery
	}
	var writerDone sync.WaitGroup
	writerDone.Add(1)
	go func() { defer writerDone.Done(); d.w.run(wctx) }()
	defer func() { wcancel(); writerDone.Wait() }()

	started := &events.DaemonStarted{Version: opts.Version, PID: os.Getpid(), VMDriver: drv.Name(), VMDriverReason: reason}
	if err := d.w.appendOne(ctx, started); err != nil {
		return fmt.Errorf("record daemon start in %s: %w", p.EventLog, err)
	}
	if err := d.recover(ctx, drv); err != nil {
		return err
	}
	return d.serve(ctx, opts)
}

// daemonLogger is the test's logger, or zap JSON into the daemon log file.
func daemonLogger(opts Options, getenv func(string) string) (*zap.Logger, func(), error) {
	if opts.Logger != nil {
		return opts.Logger, func() {}, nil
	}
	level := opts.LogLevel
	if level == "" {
		level = getenv("RDD_LOG_LEVEL")
	}
	return newFileLogger(opts.Paths.DaemonLog, level, getenv("RDD_KEEP_LOGS") != "")
}

// vmDriver is the test's driver, or the one design.md §4 chooses.
func vmDriver(opts Options, getenv func(string) string, logger *zap.Logger) (vm.Driver, string, error) {
	driverName, reason, err := chooseDriver(opts.VMDriver, getenv)
	if err != nil {
		return nil, "", err
	}
	if opts.Driver != nil {
		return opts.Driver, reason, nil
	}
	switch driverName {
	case "host":
		return host.New(opts.Paths, logger, host.Options{Network: getenv("RDD_HOST_NETWORK")}), reason, nil
	case "lima":
		drv, err := limaDriver(opts.Paths, getenv, logger)
		if err != nil {
			return nil, "", fmt.Errorf("lima driver (%s): %w", reason, err)
		}
		return drv, reason, nil
	}
	return nil, "", fmt.Errorf("vm driver %q is not available in this build; use --vm-driver=host", driverName)
}

// recover builds the controllers and lets each re-observe what the log
// believed before anything new is decided (design.md principle 6).
func (d *daemon) recover(ctx context.Context, drv vm.Driver) error {
	d.vm = newVMController(d.w, drv, d.logger)
	d.engine = newEngineController(d.w, d.paths, d.getenv, d.logger)
	kpaths := d.paths
	if k, ok := drv.(interface{ KubeconfigPath() string }); ok {
		// A VM's k3s writes its kubeconfig where the VM can reach.
		kpaths.K3sConfig = k.KubeconfigPath()
	}
	d.kube = newKubeController(d.w, kpaths, d.getenv, drv, d.logger)
	snap := d.w.Snapshot()
	if err := d.vm.recover(ctx, snap); err != nil {
		return fmt.Errorf("recover vm state: %w", err)
	}
	if err := d.engine.recover(ctx, d.w.Snapshot()); err != nil {
		return fmt.Errorf("recover engine state: %w", err)
	}
	if err := d.kube.recover(ctx, snap); err != nil {
		return fmt.Errorf("recover kubernetes state: %w", err)
	}
	return nil
}

// serve runs the controllers and the socket API until ctx ends or the API
// fails, then shuts down: record it, stop the controllers, stop what runs
// (machines do not survive a graceful stop), then stop serving.
func (d *daemon) serve(ctx context.Context, opts Options) error {
	ln, err := api.Listen(d.paths.Socket)
	if err != nil {
		return err
	}
	srv := api.NewServer(d, d.logger, api.ServerOptions{Version: opts.Version, Commit: opts.Commit, BuildDate: opts.BuildDate,
		Engine: d.engine, Components: d.components})

	cctx, ccancel := context.WithCancel(context.WithoutCancel(ctx))
	var ctlWG sync.WaitGroup
	for _, run := range []func(context.Context){d.vm.run, d.engine.run, d.kube.run} {
		ctlWG.Add(1)
		go func() { defer ctlWG.Done(); run(cctx) }()
	}

	sctx, scancel := context.WithCancel(ctx)
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(sctx, ln) }()
	d.logger.Info("daemon serving", zap.String("socket", d.paths.Socket), zap.String("vm-driver", d.vm.drv.Name()), zap.Uint64("seq", d.w.Snapshot().Seq))
	if opts.Ready != nil {
		close(opts.Ready)
	}

	var runErr error
	served := false // Serve's one answer was taken here
	select {
	case <-ctx.Done():
	case runErr = <-serveErr:
		// Serve ends on its own only by failing, but once ctx ends it may
		// return nil as fast as ctx.Done is seen: either can win.
		served = true
		if runErr != nil {
			d.logger.Error("api server failed", zap.Error(runErr))
		}
	}

	stopCtx := context.WithoutCancel(ctx)
	if err := d.w.appendOne(stopCtx, &events.DaemonStopping{Reason: shutdownReason(ctx, runErr)}); err != nil {
		d.logger.Warn("record daemon stop", zap.Error(err))
	}
	ccancel()
	ctlWG.Wait()
	d.kube.shutdown(stopCtx)
	d.engine.shutdown(stopCtx)
	d.vm.shutdown(stopCtx)
	scancel()
	if !served {
		if err := <-serveErr; err != nil {
			d.logger.Warn("api shutdown", zap.Error(err))
		}
	}
	d.w.checkpoint(d.w.Snapshot())
	d.logger.Info("daemon stopped")
	return runErr
}

func shutdownReason(ctx context.Context, err error) string {
	if err != nil {
		return "api server failed: " + err.Error()
	}
	if c := context.Cause(ctx); c != nil && !errors.Is(c, context.Canceled) {
		return c.Error()
	}
	return "signal"
}

// restoreProjector loads the latest checkpoint and folds the events after it.
func restoreProjector(log *store.Log) (*events.Projector, error) {
	proj := events.NewProjector()
	cseq, data, ok, err := log.LatestCheckpoint()
	if errors.Is(err, store.ErrCorrupt) {
		// A damaged checkpoint only costs a full replay; the events are
		// checked one by one as they fold.
		ok, cseq, err = false, 0, nil
	}
	if err != nil {
		return nil, err
	}
	if ok {
		snap, err := events.UnmarshalCheckpoint(data)
		if err == nil {
			err = proj.Restore(snap)
		}
		if err != nil {
			// A bad checkpoint only costs a full replay.
			proj = events.NewProjector()
			cseq = 0
		}
	}
	err = log.Range(cseq, 0, func(e events.Envelope) error { return proj.Apply(e) })
	if err != nil {
		return nil, fmt.Errorf("replay the event log: %w", err)
	}
	return proj, nil
}

// chooseDriver applies design.md §4: flag, then RDD_VM_DRIVER, then auto
// (vm.Choose: lima on macOS, and on Linux when not root with QEMU; else host).
func chooseDriver(flag string, getenv func(string) string) (name, reason string, err error) {
	requested, source := flag, "--vm-driver="+flag
	if requested == "" {
		requested, source = getenv("RDD_VM_DRIVER"), "RDD_VM_DRIVER="+getenv("RDD_VM_DRIVER")
	}
	name, reason, err = vm.Choose(requested, runtime.GOOS, os.Geteuid(), vm.QEMUInstalled(runtime.GOARCH, getenv, exec.LookPath))
	if err != nil {
		return "", "", err
	}
	if reason == "requested" {
		reason = source
	}
	return name, reason, nil
}

// limaDriver builds the lima driver from the environment (docs/lima.md).
func limaDriver(p paths.Paths, getenv func(string) string, logger *zap.Logger) (*lima.Driver, error) {
	base, err := lima.FromEnv(getenv, lima.Defaults(p))
	if err != nil {
		return nil, err
	}
	if base.Accel == "" {
		base.Accel = lima.DefaultAccel(runtime.GOOS, kvmUsable())
	}
	helper, err := lima.Locate(getenv, p.CacheDir, base.Arch)
	if err != nil {
		return nil, err
	}
	return lima.New(lima.Options{Helper: helper, LimaHome: p.LimaHome, Base: base, Logger: logger})
}

// kvmUsable says whether this user can open /dev/kvm. Nested
// virtualisation can offer a /dev/kvm that stock kernels do not boot
// under; RDD_VM_ACCEL=tcg is the way out there (docs/lima.md).
func kvmUsable() bool {
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		return false
	}
	_ = f.Close()
	return true
}

// retention resolves the retention policy: the option, else RDD_RETAIN_EVENTS.
func retention(opt uint64, getenv func(string) string) (uint64, error) {
	if opt > 0 {
		return opt, nil
	}
	v := getenv("RDD_RETAIN_EVENTS")
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("invalid RDD_RETAIN_EVENTS %q: want a number of events to keep (0 keeps everything)", v)
	}
	return n, nil
}

func writePIDFile(path string) error {
	if err := os.WriteFile(path, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		return fmt.Errorf("write pid file %s: %w", path, err)
	}
	return nil
}

// daemon implements api.Backend on top of the writer and the controllers.
type daemon struct {
	paths  paths.Paths
	logger *zap.Logger
	getenv func(string) string
	w      *writer
	vm     *vmController
	engine *engineController
	kube   *kubeController
}

var _ api.Backend = (*daemon)(nil)

// components says which engine and k3s run, for `rdd version`: from the
// snapshot in memory and the engine watcher's last connection, so a health
// check stays free of I/O. A component counts as running once its
// condition is True.
func (d *daemon) components() (eng, kube *api.Component) {
	snap := d.w.Snapshot()
	if snap.Spec == nil {
		return nil, nil
	}
	if c, ok := snap.Condition(events.CondContainerEngineReady); ok && c.Status == events.StatusTrue {
		eng = &api.Component{Name: string(snap.Spec.ContainerEngine.Name), Version: d.engine.engineVersion()}
	}
	if c, ok := snap.Condition(events.CondKubernetesReady); ok && c.Status == events.StatusTrue && snap.Spec.Kubernetes.Enabled {
		kube = &api.Component{Name: "k3s", Version: d.kube.tag(snap)}
	}
	return eng, kube
}

func (d *daemon) Snapshot() events.Snapshot { return d.w.Snapshot() }

func (d *daemon) SnapshotAt(ctx context.Context, at api.At) (events.Snapshot, error) {
	return d.w.SnapshotAt(ctx, at)
}

func (d *daemon) Watch(ctx context.Context, since uint64, fn func([]events.Snapshot) error) error {
	return d.w.Watch(ctx, since, fn)
}

func (d *daemon) WatchReady(ctx context.Context, since uint64, ready func() error, fn func([]events.Snapshot) error) error {
	return d.w.WatchReady(ctx, since, ready, fn)
}

func (d *daemon) Events(ctx context.Context, q api.EventQuery, fn func(events.Envelope) error) error {
	return d.w.Events(ctx, q, fn)
}

func (d *daemon) SetSpec(ctx context.Context, req api.SetRequest, src api.Source) (api.SetResponse, error) {
	// Read before the write: a later snapshot may already show the
	// machine stopping for this very change.
	before := d.w.Snapshot()
	resp, err := d.w.SetSpec(ctx, req, src)
	if err == nil {
		resp.Restart, resp.Containers = d.restarts(before, resp)
	}
	return resp, err
}

// restarts reports whether resp, applied to the state before, restarts a
// running machine, and how many containers the engine held: the driver's
// restart key (vm.RestartKeyOf) of the old and new configuration differ,
// the machine runs and the new spec keeps it running (a stop is no restart).
func (d *daemon) restarts(before events.Snapshot, resp api.SetResponse) (bool, int) {
	next, ok := resp.Spec.(spec.Spec)
	if !ok || !before.Exists || before.Spec == nil || !before.Spec.Running || !next.Running ||
		before.Machine(events.MachineVM).State != string(events.VMRunning) {
		return false, 0
	}
	port := before.Status.KubernetesPort
	oldKey := vm.RestartKeyOf(d.vm.drv, vm.ConfigFor(*before.Spec, port))
	newKey := vm.RestartKeyOf(d.vm.drv, vm.ConfigFor(next, port))
	if oldKey == newKey {
		return false, 0
	}
	return true, before.Machines[events.MachineEngine].Facts.Containers
}

// DeleteApp stops the App, waits until it has settled stopped, records the
// deletion and waits for the machine to be removed (F15: full cleanup first).
func (d *daemon) DeleteApp(ctx context.Context, src api.Source) error {
	snap := d.w.Snapshot()
	if !snap.Exists {
		return nil
	}
	if snap.Spec != nil && snap.Spec.Running {
		resp, err := d.w.SetSpec(ctx, api.SetRequest{Set: map[string]string{"running": "false"}, Command: "delete"}, src)
		if err != nil {
			return fmt.Errorf("stop before delete: %w", err)
		}
		if err := d.waitFor(ctx, func(s events.Snapshot) bool {
			c, ok := s.Condition(events.CondSettled)
			return ok && c.Status == events.StatusTrue && c.ObservedGeneration >= resp.Generation
		}); err != nil {
			return fmt.Errorf("wait for the App to stop before deleting it: %w", err)
		}
	}
	envs, err := d.w.Append(ctx, &events.AppDeleted{Source: events.Source{UID: src.UID, PID: src.PID}})
	if err != nil {
		return err
	}
	deletedSeq := envs[0].Seq
	var failure *events.Failure
	err = d.waitFor(ctx, func(s events.Snapshot) bool {
		vm := s.Machine(events.MachineVM)
		if f := vm.Failure; f != nil && f.Seq > deletedSeq {
			failure = f
			return true
		}
		return vm.State == string(events.VMAbsent)
	})
	if err == nil && failure != nil {
		return &api.Error{Code: api.CodeConflict, Message: fmt.Sprintf(
			"the App is deleted, but its %s machine could not be removed: %s (%s failed, seq %d); rdd keeps retrying in the background: fix the cause, then check `rdd status` or `rdd events`",
			d.vm.drv.Name(), failure.Message, failure.Effect, failure.Seq)}
	}
	return err
}

func (d *daemon) waitFor(ctx context.Context, ok func(events.Snapshot) bool) error {
	stop := errors.New("done")
	err := d.w.Watch(ctx, 0, func(batch []events.Snapshot) error {
		for _, s := range batch {
			if ok(s) {
				return stop
			}
		}
		return nil
	})
	if errors.Is(err, stop) {
		return nil
	}
	return err
}
