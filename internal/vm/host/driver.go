package host

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/rdd-project/rdd/internal/paths"
	"github.com/rdd-project/rdd/internal/spec"
	"github.com/rdd-project/rdd/internal/vm"
)

// Default timeouts, used when the ctx given to Start or Stop has no deadline.
const (
	DefaultStartTimeout = 60 * time.Second
	DefaultStopTimeout  = 30 * time.Second
)

// probeTimeout bounds one socket probe of the start wait.
const probeTimeout = 2 * time.Second

// inspectProbeTimeout bounds how long Inspect keeps probing a socket that
// does not answer before it calls the machine broken. It is generous: a
// broken machine gets force-stopped, so a busy dockerd must not look broken.
const inspectProbeTimeout = 5 * time.Second

// killWait bounds how long Stop waits for processes to vanish after SIGKILL.
const killWait = 10 * time.Second

// Sentinel errors of the host driver.
var (
	// ErrClosed is returned by every method called after Close.
	ErrClosed = errors.New("host: driver is closed")
	// ErrOtherConfig is returned by Start when the machine already runs with
	// another configuration; the caller must Stop it first.
	ErrOtherConfig = errors.New("host: engine already runs with another configuration")
)

// Options tune the driver. The zero value is the production setting.
type Options struct {
	// Dockerd is the dockerd binary: a path, or a name looked up in PATH.
	// Empty means "dockerd".
	Dockerd string
	// Containerd is the containerd binary, as Dockerd. Empty means "containerd".
	Containerd string
	// ExtraArgs are appended to the engine process's command line (dockerd's
	// for moby, containerd's for containerd).
	ExtraArgs []string
	// StartTimeout replaces DefaultStartTimeout when not zero.
	StartTimeout time.Duration
	// StopTimeout replaces DefaultStopTimeout when not zero.
	StopTimeout time.Duration
	// KeepLogs keeps every rotated engine log instead of five (RDD_KEEP_LOGS).
	KeepLogs bool
	// LogTitle, when not empty, is written as the first line of each new
	// engine log (RDD_LOG_TITLE).
	LogTitle string
	// Network is the containers' network under moby (RDD_HOST_NETWORK):
	// NetworkBridge (also "") or NetworkNone. See doc.go.
	Network string
}

// Driver is the host VM driver: the machine is this host, and "running" means
// the engine processes rdd started are alive and the engine socket answers.
// Lifecycle methods and Inspect run one at a time (each waits for the one
// before, or for its ctx); Info.Exited channels may be read from any goroutine.
type Driver struct {
	p    paths.Paths
	l    layout
	log  *zap.Logger
	opts Options

	// usePidfd selects pidfd watchers; tests clear it to cover the fallback.
	usePidfd bool
	// inspectProbe is inspectProbeTimeout; tests shorten it.
	inspectProbe time.Duration
	// acceptGrace is the package's acceptGrace; tests shorten it.
	acceptGrace time.Duration
	// holdAfter is the crash tests' hook (testHoldEnv); "" in production.
	holdAfter string

	sem chan struct{} // holds one token while a method runs

	mu       sync.Mutex // guards the fields below; never held while waiting
	cur      *machine   // the watcher of the machine last seen running
	watchers []*machine // every watcher not yet known to be finished
	closed   bool

	// k3s watches the k3s process rdd runs beside the engine (k3s.go).
	k3s k3sSupervisor
}

var _ vm.Driver = (*Driver)(nil)

// New returns the host driver for instance p. A nil logger logs nothing.
func New(p paths.Paths, logger *zap.Logger, opts Options) *Driver {
	if logger == nil {
		logger = zap.NewNop()
	}
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = DefaultStartTimeout
	}
	if opts.StopTimeout <= 0 {
		opts.StopTimeout = DefaultStopTimeout
	}
	return &Driver{
		p:            p,
		l:            newLayout(p),
		log:          logger.With(zap.String("subsystem", "vm"), zap.String("driver", "host")),
		opts:         opts,
		usePidfd:     true,
		inspectProbe: inspectProbeTimeout,
		acceptGrace:  acceptGrace,
		holdAfter:    os.Getenv(testHoldEnv),
		sem:          make(chan struct{}, 1),
	}
}

// Name returns "host".
func (d *Driver) Name() string { return "host" }

// acquire waits for the driver's token; release returns it.
func (d *Driver) acquire(ctx context.Context) error {
	select {
	case d.sem <- struct{}{}: // free: take it even when ctx has ended
	default:
		select {
		case d.sem <- struct{}{}:
		case <-ctx.Done():
			return fmt.Errorf("host: waiting for another driver operation: %w", ctx.Err())
		}
	}
	d.mu.Lock()
	closed := d.closed
	d.mu.Unlock()
	if closed {
		<-d.sem
		return ErrClosed
	}
	return nil
}

func (d *Driver) release() { <-d.sem }

// created reports whether Create's directories exist.
func (d *Driver) created() bool {
	for _, dir := range []string{d.l.dataRoot, d.l.runDir} {
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			return false
		}
	}
	return true
}

// Create prepares D, L, H (mode 0700), D/engine and H/run (mode 0700).
// adopted is true when D/engine and H/run already existed.
func (d *Driver) Create(ctx context.Context) (adopted bool, err error) {
	if err := d.acquire(ctx); err != nil {
		return false, err
	}
	defer d.release()
	adopted = d.created()
	if err := d.prepareDirs(); err != nil {
		return false, err
	}
	return adopted, nil
}

func (d *Driver) prepareDirs() error {
	if err := d.p.EnsureDirs(); err != nil {
		return fmt.Errorf("host: %w", err)
	}
	for _, dir := range []string{d.l.dataRoot, d.l.runDir} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("host: create directory %s: %w", dir, err)
		}
		if err := os.Chmod(dir, 0o700); err != nil {
			return fmt.Errorf("host: restrict %s to its owner: %w", dir, err)
		}
	}
	return nil
}

// Start starts the engine for cfg unless it already runs, and returns once
// its socket answers (H/docker.sock: GET /_ping; H/containerd.sock: a gRPC
// Version call). Without a ctx deadline it waits Options.StartTimeout. A
// machine that already runs with cfg's engine is re-adopted (a Kubernetes
// change needs no engine restart); one that runs another engine gives
// ErrOtherConfig. Leftovers of a broken or half-started
// machine (processes, strays of an interrupted spawn, sockets, pid files,
// mounts) are removed first, so Start succeeds from any state a crash left.
// On failure nothing keeps running and the error quotes the end of the engine
// log and names it.
func (d *Driver) Start(ctx context.Context, cfg vm.Config) (vm.Info, error) {
	if err := d.acquire(ctx); err != nil {
		return vm.Info{}, err
	}
	defer d.release()
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d.opts.StartTimeout)
		defer cancel()
	}
	if cfg.Engine != spec.EngineMoby && cfg.Engine != spec.EngineContainerd {
		return vm.Info{}, fmt.Errorf("host: unsupported container engine %q", cfg.Engine)
	}
	// Resolve binaries before anything changes on disk.
	ctrdBin, err := lookBinary("containerd", d.opts.Containerd, "containerd")
	if err != nil {
		return vm.Info{}, err
	}
	var dockerdBin string
	if cfg.Engine == spec.EngineMoby {
		if dockerdBin, err = lookBinary("dockerd", d.opts.Dockerd, "docker.io"); err != nil {
			return vm.Info{}, err
		}
	}

	info, err := d.inspectLocked(ctx)
	if err != nil {
		return vm.Info{}, err
	}
	switch {
	case info.Phase == vm.PhaseRunning && vm.SameRestartKey(info, d.RestartKey(cfg), cfg.Hash()):
		d.log.Info("engine already running", zap.Int("pid", info.PID))
		return info, nil
	case info.Phase == vm.PhaseRunning:
		return info, fmt.Errorf("%w: running with %q, asked for %q", ErrOtherConfig, info.TemplateHash, cfg.Hash())
	case info.Phase == vm.PhaseBroken:
		d.log.Warn("stopping leftovers of a broken engine before start", zap.String("found", info.Message))
		if err := d.stopLocked(ctx, forceGrace); err != nil {
			return vm.Info{}, fmt.Errorf("host: clean up before start: %w", err)
		}
	}
	if err := d.prepareDirs(); err != nil {
		return vm.Info{}, err
	}
	if pid := foreignDockerd(d.l.dockerPidfile); pid != 0 {
		return vm.Info{}, fmt.Errorf("host: a dockerd (pid %d) that rdd does not track runs with pid file %s; stop it first", pid, d.l.dockerPidfile)
	}
	for _, f := range d.l.runtimeFiles() {
		_ = os.Remove(f)
	}
	// Nothing of the machine runs now, so whatever is still mounted was
	// leaked (by a SIGKILLed dockerd) and the new dockerd would stack its
	// own mounts on top of it.
	d.unmountLeftovers()
	st, cmds, err := d.spawnMachine(ctx, cfg, ctrdBin, dockerdBin)
	if err != nil {
		return vm.Info{}, err
	}
	m, err := d.track(st, cmds)
	if err != nil {
		return vm.Info{}, err
	}
	main := st.main()
	d.log.Info("engine started", zap.String("engine", string(st.Engine)), zap.Int("pid", main.PID), zap.Int("pgid", st.PGID))
	return vm.Info{Phase: vm.PhaseRunning, PID: main.PID, TemplateHash: st.TemplateHash, RestartKey: d.RestartKey(vm.Config{Engine: st.Engine}), Exited: m.exited,
		Message: fmt.Sprintf("%s started (pid %d)", main.Name, main.PID)}, nil
}

// spawnMachine starts containerd, then (moby) dockerd in containerd's process
// group, waiting for each socket. The state file is rewritten after each
// spawn, so a crash of rdd at any point leaves every process findable.
func (d *Driver) spawnMachine(ctx context.Context, cfg vm.Config, ctrdBin, dockerdBin string) (state, map[int]*exec.Cmd, error) {
	conf, err := d.l.containerdConfig(d.p.Name)
	if err != nil {
		return state{}, nil, fmt.Errorf("host: containerd config: %w", err)
	}
	if err := os.WriteFile(d.l.ctrdConfig, []byte(conf), 0o600); err != nil {
		return state{}, nil, fmt.Errorf("host: write containerd config: %w", err)
	}
	if err := freshLog(d.l.ctrdLog, d.opts.KeepLogs, d.opts.LogTitle); err != nil {
		return state{}, nil, fmt.Errorf("host: %w", err)
	}
	ctrdArgs := d.l.containerdArgs(nil)
	if cfg.Engine == spec.EngineContainerd {
		ctrdArgs = d.l.containerdArgs(d.opts.ExtraArgs)
	} else {
		if err := os.WriteFile(d.l.dockerConfig, []byte("{}\n"), 0o600); err != nil {
			return state{}, nil, fmt.Errorf("host: write dockerd config: %w", err)
		}
		if err := freshLog(d.l.dockerLog, d.opts.KeepLogs, d.opts.LogTitle); err != nil {
			return state{}, nil, fmt.Errorf("host: %w", err)
		}
	}

	st := state{Engine: cfg.Engine, TemplateHash: cfg.Hash(), StartedAt: time.Now().UTC()}
	cmds := map[int]*exec.Cmd{}
	fail := func(err error) (state, map[int]*exec.Cmd, error) {
		d.abortStart(st, cmds)
		return state{}, nil, err
	}
	if err := d.recordIntent(&st, append([]string{ctrdBin}, ctrdArgs...)); err != nil {
		return fail(err)
	}
	cmd, rec, err := spawn(ctrdBin, ctrdArgs, d.l.ctrdLog, 0)
	if err != nil {
		return fail(fmt.Errorf("host: %w", err))
	}
	cmds[rec.PID] = cmd
	st.PGID, st.Socket, st.Procs, st.Spawning = rec.PID, d.l.ctrdSock, []procRecord{rec}, nil
	if err := writeState(d.l.stateFile, st); err != nil {
		return fail(fmt.Errorf("host: %w", err))
	}
	if err := waitReady(ctx, rec, cmd, d.l.ctrdSock, containerdReady); err != nil {
		return fail(err)
	}
	if err := d.testHold(ctx, "containerd"); err != nil {
		return fail(err)
	}
	if cfg.Engine == spec.EngineContainerd {
		return st, cmds, nil
	}
	netArgs, err := d.prepareNetwork(ctx)
	if err != nil {
		return fail(err)
	}
	// dockerd joins containerd's process group, but a crash right after its
	// spawn, with containerd then gone too, left it findable by nothing.
	dockerdArgs := d.l.dockerdArgs(netArgs, d.opts.ExtraArgs)
	if err := d.recordIntent(&st, append([]string{dockerdBin}, dockerdArgs...)); err != nil {
		return fail(err)
	}
	cmd, rec, err = spawn(dockerdBin, dockerdArgs, d.l.dockerLog, st.PGID)
	if err != nil {
		return fail(fmt.Errorf("host: %w", err))
	}
	cmds[rec.PID] = cmd
	if err := d.testHold(ctx, "dockerd-spawned"); err != nil {
		return fail(err)
	}
	st.Socket, st.Procs, st.Spawning = d.l.dockerSock, append(st.Procs, rec), nil
	if err := writeState(d.l.stateFile, st); err != nil {
		return fail(fmt.Errorf("host: %w", err))
	}
	if err := d.testHold(ctx, "dockerd"); err != nil {
		return fail(err)
	}
	if err := waitReady(ctx, rec, cmd, d.l.dockerSock, pingDocker); err != nil {
		return fail(err)
	}
	return st, cmds, nil
}

// waitReady polls probe on sock until it succeeds, rec exits, or ctx ends.
func waitReady(ctx context.Context, rec procRecord, cmd *exec.Cmd, sock string, probe func(context.Context, string) error) error {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	var lastErr error
	for {
		if !rec.alive() {
			status := "exited"
			if err := cmd.Wait(); err != nil { // reap; returns at once
				status = err.Error()
			}
			return fmt.Errorf("host: %s (pid %d) exited during start (%s); end of its log:\n%s\nsee %s",
				rec.Name, rec.PID, status, tailLog(rec.Log, 20), rec.Log)
		}
		pctx, cancel := context.WithTimeout(ctx, probeTimeout)
		lastErr = probe(pctx, sock)
		cancel()
		if lastErr == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("host: %s (pid %d) did not answer on %s in time (%w; last error: %v); end of its log:\n%s\nsee %s",
				rec.Name, rec.PID, sock, ctx.Err(), lastErr, tailLog(rec.Log, 20), rec.Log)
		case <-t.C:
		}
	}
}

// abortStart kills what a failed start spawned, reaps it, and removes the
// runtime files.
func (d *Driver) abortStart(st state, cmds map[int]*exec.Cmd) {
	for _, p := range st.Procs {
		p.signal(syscall.SIGKILL)
	}
	ctx, cancel := context.WithTimeout(context.Background(), killWait)
	defer cancel()
	waitUntil(ctx, func() bool { return len(st.live()) == 0 })
	for _, p := range st.Procs {
		if cmd := cmds[p.PID]; cmd != nil && !p.alive() && cmd.ProcessState == nil {
			_ = cmd.Wait()
		}
	}
	if len(st.live()) > 0 {
		d.log.Error("engine process survived SIGKILL after a failed start", zap.Int("pgid", st.PGID))
		return // keep the state file so Inspect reports the machine broken
	}
	for _, f := range d.l.runtimeFiles() {
		_ = os.Remove(f)
	}
	d.teardownNetwork(ctx)
}

// track registers a watcher for st and makes it the current machine.
func (d *Driver) track(st state, cmds map[int]*exec.Cmd) (*machine, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, ErrClosed
	}
	if d.cur != nil && d.cur.st.sameProcs(st) {
		return d.cur, nil
	}
	m := d.watchMachine(st, cmds)
	live := d.watchers[:0]
	for _, w := range d.watchers {
		select {
		case <-w.done:
		default:
			live = append(live, w)
		}
	}
	d.watchers = append(live, m)
	d.cur = m
	return m, nil
}

// Inspect reports what runs: running (every process of the engine alive and
// its socket answering in its own protocol; the machine is re-adopted and
// Info.Exited watches it), stopped (prepared, nothing runs; a stale state
// file is removed), absent (Create never ran) or broken (the engine runs
// but does not answer, the state file is unreadable, or a dockerd rdd does
// not track holds the pid file). It starts nothing and stops nothing, except
// a half-started machine left by an rdd that died during Start (containerd
// up and dockerd never started, an unrecorded spawn, or some processes gone
// while the rest run): that one it stops at once, as cleanHalfStarted says,
// and reports stopped with a message naming what it found.
func (d *Driver) Inspect(ctx context.Context) (vm.Info, error) {
	if err := d.acquire(ctx); err != nil {
		return vm.Info{}, err
	}
	defer d.release()
	return d.inspectLocked(ctx)
}

// inspectLocked is Inspect for a caller that holds the token.
func (d *Driver) inspectLocked(ctx context.Context) (vm.Info, error) {
	var info vm.Info
	st, ok, rerr := readState(d.l.stateFile)
	switch {
	case rerr != nil:
		info = vm.Info{Phase: vm.PhaseBroken, Message: rerr.Error() + "; stop the machine to clean it up"}
		return info, nil
	case !ok && !d.created():
		info = vm.Info{Phase: vm.PhaseAbsent, Message: "instance directories are not prepared"}
		return info, nil
	case !ok:
		if pid := foreignDockerd(d.l.dockerPidfile); pid != 0 {
			info = vm.Info{Phase: vm.PhaseBroken, Message: fmt.Sprintf("a dockerd (pid %d) that rdd does not track runs with pid file %s", pid, d.l.dockerPidfile)}
			return info, nil
		}
		info = vm.Info{Phase: vm.PhaseStopped, Message: "no engine process"}
		return info, nil
	}
	main := st.main()
	if len(st.live()) == 0 && len(st.strays()) == 0 {
		for _, f := range d.l.runtimeFiles() {
			_ = os.Remove(f)
		}
		msg := fmt.Sprintf("%s (pid %d) is no longer running", main.Name, main.PID)
		if main.PID == 0 {
			msg = "a start was interrupted before any engine process ran"
		}
		d.log.Info("engine no longer running; removed stale state", zap.String("found", msg))
		return vm.Info{Phase: vm.PhaseStopped, TemplateHash: st.TemplateHash, Message: msg}, nil
	}
	if found := st.halfStarted(); found != "" {
		return d.cleanHalfStarted(ctx, st, found)
	}
	if err := d.probeEngine(ctx, st); err != nil {
		info = vm.Info{Phase: vm.PhaseBroken, PID: main.PID, TemplateHash: st.TemplateHash,
			Message: fmt.Sprintf("%s (pid %d, up %s) runs but %s does not answer: %v; starting again restarts it; see %s",
				main.Name, main.PID, processAge(main).Round(100*time.Millisecond), st.Socket, err, main.Log)}
		return info, nil
	}
	m, err := d.track(st, nil)
	if err != nil {
		return vm.Info{}, err
	}
	return vm.Info{Phase: vm.PhaseRunning, PID: main.PID, TemplateHash: st.TemplateHash, RestartKey: d.RestartKey(vm.Config{Engine: st.Engine}), Exited: m.exited,
		Message: fmt.Sprintf("%s running (pid %d)", main.Name, main.PID)}, nil
}

// probeUntil retries probe on sock until it succeeds or timeout (or ctx)
// ends, and returns the last error.
func probeUntil(ctx context.Context, timeout time.Duration, sock string, probe func(context.Context, string) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var err error
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		if err = probe(ctx, sock); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-t.C:
		}
	}
}
