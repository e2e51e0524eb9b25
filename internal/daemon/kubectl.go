package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/rdd-project/rdd/internal/events"
	"github.com/rdd-project/rdd/internal/fsm"
	"github.com/rdd-project/rdd/internal/kube"
	"github.com/rdd-project/rdd/internal/kube/k3sbin"
	"github.com/rdd-project/rdd/internal/paths"
	"github.com/rdd-project/rdd/internal/spec"
	"github.com/rdd-project/rdd/internal/vm"
)

// kubeController executes the k3s and kubeconfig decisions (decideKube,
// decideProbe): it runs k3s where rdd runs it (vm.KubernetesRunner), probes
// the API server, keeps a liveness watch on it, publishes and removes the
// kube context.
type kubeController struct {
	k3s, kcfg *fsm.Machine
	w         *writer
	paths     paths.Paths
	logger    *zap.Logger
	errs      *kube.ErrorLogger
	loop      *loop
	now       func() time.Time
	pub       kube.Publication
	versions  *spec.Versions

	// runner runs k3s on the host driver; nil when a VM's template does.
	runner   vm.KubernetesRunner
	resolver func(progress func(k3sbin.Progress)) *k3sbin.Resolver

	proc      vm.KubernetesInfo // the k3s process rdd runs
	procCfg   vm.KubernetesConfig
	procToken int
	// binaries are the resolved k3s executables by tag; installing is the
	// tag a background resolve is getting.
	binaries   map[string]string
	installing string
	lastReport time.Time

	retryAt  time.Time
	failures backoff
	checkAt  time.Time
	// live cancels the liveness watch (nil: none runs).
	live context.CancelFunc
	// switchCancel cancels the running current-context check.
	switchCancel context.CancelFunc
	// mergeSig is the kubeconfig files' signature at the last failed merge.
	mergeSig string
}

func newKubeController(w *writer, p paths.Paths, getenv func(string) string, drv vm.Driver, logger *zap.Logger) *kubeController {
	logger = logger.With(zap.String("machine", "k3s"))
	versions, _ := spec.Bundled() // checked when the daemon starts
	c := &kubeController{
		k3s: fsm.NewK3s(w.appendOne), kcfg: fsm.NewKubeconfig(w.appendOne),
		w: w, paths: p, logger: logger, errs: kube.NewErrorLogger(logger), now: time.Now,
		versions: versions, binaries: map[string]string{},
		pub: publication(p, getenv),
	}
	if r, ok := drv.(vm.KubernetesRunner); ok {
		c.runner = r
	}
	c.resolver = func(progress func(k3sbin.Progress)) *k3sbin.Resolver {
		return &k3sbin.Resolver{Getenv: getenv, CacheDir: p.CacheDir, Progress: progress}
	}
	c.loop = newLoop("kubernetes", c, w.kick(), logger)
	return c
}

func (c *kubeController) recover(ctx context.Context, snap events.Snapshot) error {
	if err := c.k3s.Restore(snap.Machine(events.MachineK3s).State); err != nil {
		return err
	}
	if err := c.kcfg.Restore(snap.Machine(events.MachineKubeconfig).State); err != nil {
		return err
	}
	if c.runner == nil {
		return nil
	}
	info, err := c.runner.InspectKubernetes(ctx)
	if err != nil {
		return c.recordFailure(ctx, "inspect k3s", snap.Machine(events.MachineK3s).ObservedGeneration, err)
	}
	if !info.Running {
		return nil
	}
	// What it runs is taken to be what the spec asks: a version changed
	// while the daemon was down applies at k3s's next start.
	c.watchProcess(ctx, info, c.wantedConfig(snap))
	return c.w.appendOne(ctx, &events.Recovered{Machine: events.MachineK3s, Believed: snap.Machine(events.MachineK3s).State, Found: "running", PID: info.PID,
		Message: fmt.Sprintf("re-adopted the running k3s process (pid %d)", info.PID)})
}

func (c *kubeController) run(ctx context.Context) {
	defer c.stopWatches()
	c.loop.run(ctx)
}

// wakeAt is the next probe, retry or look at a failed merge's files.
func (c *kubeController) wakeAt() time.Time {
	at := earliest(c.retryAt, c.checkAt)
	if c.kcfg.Current() == string(events.KubeconfigMergeFailed) {
		at = earliest(at, c.now().Add(mergeFileCheck))
	}
	return at
}

func (c *kubeController) tag(snap events.Snapshot) string {
	if c.versions == nil || snap.Spec == nil {
		return ""
	}
	if t := c.versions.Tag(snap.Spec.Kubernetes.Version); t != "" {
		return t
	}
	return "v" + snap.Spec.Kubernetes.Version + "+k3s1"
}

// wantedConfig is the k3s the spec asks for; the binary is filled in once
// the tag is resolved.
func (c *kubeController) wantedConfig(snap events.Snapshot) vm.KubernetesConfig {
	cfg := vm.KubernetesConfig{Tag: c.tag(snap), Port: snap.Machine(events.MachineK3s).Facts.Port}
	if snap.Spec != nil {
		cfg.Engine = snap.Spec.ContainerEngine.Name
	}
	return cfg
}

func (c *kubeController) input(snap events.Snapshot) kubeInput {
	k := snap.Machine(events.MachineK3s)
	in := kubeInput{
		exists:     snap.Exists && snap.Spec != nil,
		vmRunning:  snap.Machine(events.MachineVM).State == string(events.VMRunning),
		k3s:        events.K3sState(c.k3s.Current()),
		kubeconfig: events.KubeconfigState(c.kcfg.Current()),
		// Like the engine, Kubernetes does not claim a generation the VM
		// has not evaluated yet (F10).
		gen: stampGen(snap), k3sObserved: k.ObservedGeneration,
		kcfgObserved: snap.Machine(events.MachineKubeconfig).ObservedGeneration,
		facts:        k.Facts,
		runsK3s:      c.runner != nil, procRunning: c.proc.Running,
		now: c.now(), retryAt: c.retryAt, checkAt: c.checkAt,
	}
	in.enabled = in.exists && snap.Spec.Kubernetes.Enabled
	if in.exists {
		want := c.wantedConfig(snap)
		in.procStale = c.proc.Running && c.procCfg != want
		_, in.binaryReady = c.binaries[want.Tag]
		in.installing = c.installing != ""
	}
	if in.kubeconfig == events.KubeconfigMergeFailed && c.mergeSig != kubeconfigSignature(c.pub) {
		in.checkAt = time.Time{} // the user changed a file: try now
	}
	return in
}

func (c *kubeController) step(ctx context.Context) (bool, error) {
	snap := c.w.Snapshot()
	in := c.input(snap)
	a := decideKube(in)
	if a.op != kubeIdle {
		c.logger.Debug("kubernetes decision", zap.Stringer("op", a.op), zap.String("event", string(a.event)),
			zap.String("k3s", string(in.k3s)), zap.String("kubeconfig", string(in.kubeconfig)), zap.Int64("generation", in.gen),
			zap.Bool("enabled", in.enabled), zap.Bool("vm-running", in.vmRunning), zap.Bool("process", in.procRunning))
	}
	switch a.op {
	case kubeIdle:
		c.syncWatches(in)
		return false, nil
	case kubeFireK3s, kubeObserveK3s, kubeFireKubeconfig, kubeObserveKubeconfig:
		return true, c.record(ctx, a)
	case kubeAllocatePort:
		port := allocatePort(c.paths.PreferredK3sPort(), 0)
		return true, c.k3s.Observe(ctx, a.change.Generation, events.FactsPatch{Port: events.Int(port)})
	case kubeInstall:
		return true, c.install(ctx, snap, a.change.Generation)
	case kubeStartProcess:
		return true, c.startProcess(ctx, snap, a.change.Generation)
	case kubeStopProcess:
		return true, c.stopProcess(ctx, a.change.Generation)
	case kubeCheck:
		return true, c.check(ctx, snap, a.change.Generation)
	case kubeRemove:
		return true, c.remove(ctx, a.change.Generation)
	}
	return false, fmt.Errorf("kubernetes decision %s has no executor", a.op)
}

// allocatePort is §3.4: the preferred port when it can be bound on
// 127.0.0.1, else one the OS picks; never avoid (a port k3s could not bind).
func allocatePort(preferred, avoid int) int {
	if preferred != avoid {
		if l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(preferred))); err == nil {
			l.Close()
			return preferred
		}
	}
	for range 8 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			break
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if port != avoid {
			return port
		}
	}
	return preferred
}

func (c *kubeController) recordFailure(ctx context.Context, effect string, gen int64, err error) error {
	c.errs.Log("kubernetes effect failed: "+effect, err)
	return c.w.appendOne(ctx, &events.EffectFailed{Machine: events.MachineK3s, Effect: effect, Generation: gen, Message: err.Error()})
}

// install resolves the k3s binary in the background; progress and the
// outcome come back through the loop's inbox.
func (c *kubeController) install(ctx context.Context, snap events.Snapshot, gen int64) error {
	tag := c.tag(snap)
	c.installing = tag
	progress := func(p k3sbin.Progress) {
		c.loop.post(ctx, func(ctx context.Context) { c.onProgress(ctx, tag, p) })
	}
	r := c.resolver(progress)
	go func() {
		path, source, err := r.Resolve(ctx, tag)
		c.loop.post(ctx, func(ctx context.Context) { c.onInstalled(ctx, tag, path, source, err) })
	}()
	return c.k3s.Fire(ctx, fsm.K3sProgress, fsm.Change{Generation: gen, Message: fmt.Sprintf("Getting k3s %s", tag)})
}

// onProgress records download progress at most every 2 s, so `rdd set`
// and `rdd events` show it without flooding the log.
func (c *kubeController) onProgress(ctx context.Context, tag string, p k3sbin.Progress) {
	if c.installing != tag || c.k3s.Current() != string(events.K3sStarting) || c.now().Sub(c.lastReport) < 2*time.Second {
		return
	}
	c.lastReport = c.now()
	msg := fmt.Sprintf("Downloading k3s %s from %s: %s", tag, p.URL, byteProgress(p.Done, p.Total))
	if err := c.k3s.Fire(ctx, fsm.K3sProgress, fsm.Change{Generation: stampGen(c.w.Snapshot()), Message: msg}); err != nil {
		c.logger.Warn("record download progress", zap.Error(err))
	}
}

func byteProgress(done, total int64) string {
	mb := func(n int64) string { return fmt.Sprintf("%.1f MB", float64(n)/1e6) }
	if total <= 0 {
		return mb(done)
	}
	return fmt.Sprintf("%s of %s (%d%%)", mb(done), mb(total), done*100/total)
}

func (c *kubeController) onInstalled(ctx context.Context, tag, path, source string, err error) {
	c.installing = ""
	gen := stampGen(c.w.Snapshot())
	if err != nil {
		c.retryAt = c.now().Add(c.failures.next())
		c.errs.Log("get k3s", err)
		if c.k3s.Can(fsm.K3sInstallFailed) {
			if ferr := c.k3s.Fire(ctx, fsm.K3sInstallFailed, fsm.Change{Generation: gen, Reason: events.ReasonInstallFailed, Message: err.Error()}); ferr != nil {
				c.logger.Error("record install failure", zap.Error(ferr))
			}
		}
		return
	}
	c.binaries[tag] = path
	if c.k3s.Can(fsm.K3sProgress) {
		msg := fmt.Sprintf("Starting k3s %s (%s, from %s)", tag, path, source)
		if ferr := c.k3s.Fire(ctx, fsm.K3sProgress, fsm.Change{Generation: gen, Message: msg}); ferr != nil {
			c.logger.Error("record install", zap.Error(ferr))
		}
	}
}

func (c *kubeController) startProcess(ctx context.Context, snap events.Snapshot, gen int64) error {
	want := c.wantedConfig(snap)
	cfg := want
	cfg.Binary = c.binaries[cfg.Tag]
	info, err := c.runner.StartKubernetes(ctx, cfg)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		c.errs.Log("start k3s", err)
		if errors.Is(err, vm.ErrKubernetesPortInUse) {
			// F13: the port was free when chosen; take another one at once.
			port := allocatePort(c.paths.PreferredK3sPort(), cfg.Port)
			return c.k3s.Observe(ctx, gen, events.FactsPatch{Port: events.Int(port)})
		}
		c.retryAt = c.now().Add(c.failures.next())
		return c.k3s.Fire(ctx, fsm.K3sProgress, fsm.Change{Generation: gen, Message: fmt.Sprintf("k3s did not start: %v; retrying", err)})
	}
	c.failures.reset()
	c.retryAt = time.Time{}
	c.watchProcess(ctx, info, want)
	c.checkAt = time.Time{}
	facts := events.FactsPatch{PID: events.Int(info.PID), RestartCount: events.Int(snap.Machine(events.MachineK3s).Facts.RestartCount + 1)}
	return c.k3s.Fire(ctx, fsm.K3sProbe, fsm.Change{Generation: gen, Message: fmt.Sprintf("Waiting for k3s API server (k3s %s running, pid %d)", cfg.Tag, info.PID), Facts: facts})
}

// watchProcess adopts a running k3s started for cfg (without its binary)
// and hands its exit to the loop.
func (c *kubeController) watchProcess(ctx context.Context, info vm.KubernetesInfo, cfg vm.KubernetesConfig) {
	c.procToken++
	c.proc, c.procCfg = info, cfg
	token, exited := c.procToken, info.Exited
	if exited == nil {
		return
	}
	go func() {
		select {
		case <-exited:
			c.loop.post(ctx, func(ctx context.Context) { c.onProcessExit(ctx, token) })
		case <-ctx.Done():
		}
	}()
}

// onProcessExit: k3s died on its own. The decision starts it again
// (restart count +1); KubernetesReady goes False at once.
func (c *kubeController) onProcessExit(ctx context.Context, token int) {
	if token != c.procToken {
		return
	}
	pid := c.proc.PID
	c.proc = vm.KubernetesInfo{}
	c.stopLiveness()
	msg := fmt.Sprintf("k3s (pid %d) exited", pid)
	if info, err := c.runner.InspectKubernetes(ctx); err == nil && info.Message != "" {
		msg += ": " + lastLine(info.Message)
	}
	c.logger.Warn("k3s exited", zap.Int("pid", pid), zap.String("message", msg))
	if c.k3s.Can(fsm.K3sStart) {
		if err := c.k3s.Fire(ctx, fsm.K3sStart, fsm.Change{Generation: stampGen(c.w.Snapshot()), Message: msg + "; starting it again", Facts: events.FactsPatch{PID: events.Int(0)}}); err != nil {
			c.logger.Error("record k3s exit", zap.Error(err))
		}
	}
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

func (c *kubeController) stopProcess(ctx context.Context, gen int64) error {
	c.procToken++
	c.stopLiveness()
	if err := c.runner.StopKubernetes(ctx); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		c.retryAt = c.now().Add(c.failures.next())
		return c.recordFailure(ctx, "stop k3s", gen, err)
	}
	c.proc = vm.KubernetesInfo{}
	return c.k3s.Observe(ctx, gen, events.FactsPatch{PID: events.Int(0)})
}

// check is one pass of §8.1 steps 3–6: probe, publish, node gate. Each
// outcome that changes something is recorded; an unchanged one is not, so a
// cluster that stays down does not fill the log every 5 s.
func (c *kubeController) check(ctx context.Context, snap events.Snapshot, gen int64) error {
	k := snap.Machine(events.MachineK3s)
	state := events.K3sState(c.k3s.Current())
	res, perr := kube.ProbeFile(ctx, c.paths.K3sConfig, kube.DefaultProbeTimeout)
	out := decideProbe(state, k.Facts.AmbiguousStreak, k.Message, gen, res, perr)
	c.checkAt = nextCheck(state, c.now())
	if out.action.op != kubeIdle {
		if err := c.record(ctx, out.action); err != nil {
			return err
		}
	}
	if !out.healthy {
		c.stopLiveness()
		return nil
	}
	if state == events.K3sProbing {
		if err := c.k3s.Fire(ctx, fsm.K3sHealthy, fsm.Change{Generation: gen}); err != nil {
			return err
		}
		state = events.K3sWaitingForNode
	}
	if !c.publish(ctx, gen) {
		return nil
	}
	c.startLiveness(ctx)
	if state != events.K3sWaitingForNode {
		return nil
	}
	// The node gate holds only the first Ready (no flapping, §8.1 step 5).
	rc, err := kube.EndpointFromFile(c.paths.K3sConfig)
	if err == nil {
		var ready bool
		ready, err = kube.AnyNodeReady(ctx, rc, 0)
		if err == nil && ready {
			c.checkAt = nextCheck(events.K3sReady, c.now())
			if err := c.k3s.Fire(ctx, fsm.K3sNodeReady, fsm.Change{Generation: gen}); err != nil {
				return err
			}
			// F2: the user's current-context is looked at once per Ready
			// transition, not on every pass, so a blip of their own
			// cluster never hands their kubectl to rdd.
			c.switchContext(ctx)
			return nil
		}
	}
	if err != nil {
		c.errs.Log("list nodes", err)
	}
	return nil
}

// record appends a decision that is only a record: a transition or an
// observation of either machine.
func (c *kubeController) record(ctx context.Context, a kubeAction) error {
	switch a.op {
	case kubeFireK3s:
		return c.k3s.Fire(ctx, a.event, a.change)
	case kubeObserveK3s:
		return c.k3s.Observe(ctx, a.change.Generation, a.change.Facts)
	case kubeFireKubeconfig:
		return c.kcfg.Fire(ctx, a.event, a.change)
	case kubeObserveKubeconfig:
		return c.kcfg.Observe(ctx, a.change.Generation, a.change.Facts)
	}
	return fmt.Errorf("kubernetes decision %s is not a record", a.op)
}

// publish merges the context into the user's kubeconfig (§8.3) and records
// merged or mergeFailed; it reports whether the context is published.
func (c *kubeController) publish(ctx context.Context, gen int64) bool {
	res, err := kube.Publish(ctx, c.pub)
	c.logger.Debug("publish the Kubernetes context", zap.String("file", res.File), zap.Bool("changed", res.Changed), zap.Bool("standalone-changed", res.StandaloneChanged), zap.Error(err))
	state := events.KubeconfigState(c.kcfg.Current())
	if err != nil {
		c.errs.Log("publish the Kubernetes context", err)
		c.mergeSig = kubeconfigSignature(c.pub)
		msg := events.MsgMergeFailedPref + ": " + err.Error()
		snap := c.w.Snapshot()
		if state != events.KubeconfigMergeFailed || snap.Machine(events.MachineKubeconfig).Message != msg {
			if c.kcfg.Can(fsm.KubeconfigMergeFailed) {
				if ferr := c.kcfg.Fire(ctx, fsm.KubeconfigMergeFailed, fsm.Change{Generation: gen, Message: msg}); ferr != nil {
					c.logger.Error("record merge failure", zap.Error(ferr))
				}
			}
		}
		return false
	}
	c.errs.Reset()
	c.mergeSig = ""
	if state != events.KubeconfigMerged && c.kcfg.Can(fsm.KubeconfigMerge) {
		if ferr := c.kcfg.Fire(ctx, fsm.KubeconfigMerge, fsm.Change{Generation: gen, Message: "Kubernetes context " + c.pub.Name + " published"}); ferr != nil {
			c.logger.Error("record merge", zap.Error(ferr))
			return false
		}
	}
	return true
}

// switchContext runs the current-context policy (§8.3 step 6, F3) in the
// background, cancelling a previous run.
func (c *kubeController) switchContext(ctx context.Context) {
	if c.switchCancel != nil {
		c.switchCancel()
	}
	sctx, cancel := context.WithCancel(ctx)
	c.switchCancel = cancel
	pub := c.pub
	go func() {
		d, changed, err := kube.SwitchCurrentContext(sctx, pub, kube.DefaultProbeTimeout)
		if sctx.Err() != nil {
			return
		}
		c.loop.post(sctx, func(ctx context.Context) { c.recordContextDecision(ctx, d, changed, err) })
	}()
}

// recordContextDecision puts the current-context decision in the log: a
// switch of the user's kubectl is an effect they must be able to trace.
func (c *kubeController) recordContextDecision(ctx context.Context, d kube.ContextDecision, changed bool, err error) {
	var msg string
	switch {
	case err != nil:
		c.errs.Log("current-context check", err)
		msg = fmt.Sprintf("current-context %q left alone: %v", d.Current, err)
	case changed:
		msg = fmt.Sprintf("current-context switched from %q to %q (%s)", d.Current, c.pub.Name, d.Reason)
		c.logger.Info("switched current-context", zap.String("from", d.Current), zap.String("to", c.pub.Name), zap.String("reason", string(d.Reason)), zap.String("detail", d.Detail))
	default:
		msg = fmt.Sprintf("current-context %q kept (%s)", d.Current, d.Reason)
	}
	if d.Detail != "" {
		msg += ": " + d.Detail
	}
	if !c.kcfg.Can(fsm.KubeconfigCurrentContext) {
		return
	}
	snap := c.w.Snapshot()
	gen := snap.Machine(events.MachineKubeconfig).ObservedGeneration
	if ferr := c.kcfg.Fire(ctx, fsm.KubeconfigCurrentContext, fsm.Change{Generation: gen, Message: msg}); ferr != nil {
		c.logger.Error("record current-context decision", zap.Error(ferr))
	}
}

func (c *kubeController) remove(ctx context.Context, gen int64) error {
	if c.switchCancel != nil {
		c.switchCancel()
		c.switchCancel = nil
	}
	if _, err := kube.Remove(ctx, c.pub); err != nil {
		// §8.4: errors do not fail the pass, but the log says what stayed.
		if rerr := c.recordFailure(ctx, "remove the Kubernetes context", gen, err); rerr != nil {
			return rerr
		}
	}
	return c.kcfg.Fire(ctx, fsm.KubeconfigRemoved, fsm.Change{Generation: gen})
}

// kubeconfigSignature identifies the current state of the user's kubeconfig
// files, their lock files and their directories by size, mode and change
// time, so that a fix (an edit, chattr -i, a directory made) is seen at once.
func kubeconfigSignature(p kube.Publication) string {
	files, err := p.Target.Files()
	if err != nil {
		return err.Error()
	}
	var b strings.Builder
	for _, f := range files {
		for _, name := range []string{filepath.Dir(f), f, f + ".lock"} {
			fi, err := os.Stat(name)
			if err != nil {
				fmt.Fprintf(&b, "%s:-;", name)
				continue
			}
			fmt.Fprintf(&b, "%s:%d:%v:%d", name, fi.Size(), fi.Mode(), fi.ModTime().UnixNano())
			fmt.Fprintf(&b, ":%d;", changeTime(fi))
		}
	}
	return b.String()
}

// syncWatches keeps the liveness watch only while the cluster is up.
func (c *kubeController) syncWatches(in kubeInput) {
	if in.k3s != events.K3sWaitingForNode && in.k3s != events.K3sReady {
		c.stopLiveness()
	}
}

// startLiveness opens the long-lived watch that sees a dead API server at
// once; its loss makes the next probe due now.
func (c *kubeController) startLiveness(ctx context.Context) {
	if c.live != nil {
		return
	}
	rc, err := kube.EndpointFromFile(c.paths.K3sConfig)
	if err != nil {
		return
	}
	lctx, cancel := context.WithCancel(ctx)
	c.live = cancel
	go func() {
		err := kube.WatchLiveness(lctx, rc)
		if err == nil {
			return
		}
		c.loop.post(lctx, func(context.Context) {
			if lctx.Err() != nil {
				return
			}
			c.logger.Info("kubernetes API server connection lost; probing now", zap.Error(err))
			c.live = nil
			c.checkAt = time.Time{}
		})
	}()
}

func (c *kubeController) stopLiveness() {
	if c.live != nil {
		c.live()
		c.live = nil
	}
}

func (c *kubeController) stopWatches() {
	c.stopLiveness()
	if c.switchCancel != nil {
		c.switchCancel()
	}
}

// shutdown runs after the controller goroutine ended, before the machine
// stops: the context goes with the cluster (§8.4, "on VM not running").
func (c *kubeController) shutdown(ctx context.Context) {
	gen := stampGen(c.w.Snapshot())
	if c.runner != nil && c.proc.Running {
		if err := c.runner.StopKubernetes(ctx); err != nil {
			c.logger.Warn("stop k3s at shutdown", zap.Error(err))
		}
	}
	switch events.KubeconfigState(c.kcfg.Current()) {
	case events.KubeconfigMerged, events.KubeconfigMergeFailed:
		if err := c.kcfg.Fire(ctx, fsm.KubeconfigRemove, fsm.Change{Generation: gen}); err != nil {
			c.logger.Warn("record context removal", zap.Error(err))
			return
		}
		fallthrough
	case events.KubeconfigRemoving:
		if err := c.remove(ctx, gen); err != nil {
			c.logger.Warn("remove the Kubernetes context at shutdown", zap.Error(err))
		}
	}
	if c.k3s.Can(fsm.K3sVMDown) {
		if err := c.k3s.Fire(ctx, fsm.K3sVMDown, fsm.Change{Generation: gen, Message: "k3s stopped because the daemon stops", Facts: events.FactsPatch{PID: events.Int(0)}}); err != nil {
			c.logger.Warn("record k3s stop", zap.Error(err))
		}
	}
}
