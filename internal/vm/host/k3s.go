package host

// # Kubernetes (k3s) on the host
//
// With Kubernetes enabled, rdd runs `k3s server` beside the engine as one
// more supervised child, but not as part of the machine: it leads a process
// group of its own, has its own state file (H/run/k3s.json: the command
// line, tag, port, engine, and pid + start ticks) and its own watcher, so
// toggling Kubernetes never restarts the engine (see RestartKey) and a k3s
// crash never tears the engine down. Data lives in D/k3s (--data-dir), the
// admin kubeconfig in D/k3s.yaml, output in L/k3s.log (rotated on every
// start like the engine logs).
//
// Flags, each checked against the k3s documentation (k3s-io/docs
// docs/cli/server.md and docs/cli/agent.md, i.e. docs.k3s.io/cli/server and
// /cli/agent; servers accept every agent flag):
//
//   - --https-listen-port PORT: "HTTPS listen port" (default 6443).
//   - --bind-address 127.0.0.1: "k3s bind address" (default 0.0.0.0).
//   - --write-kubeconfig D/k3s.yaml, --write-kubeconfig-mode 600: "Write
//     kubeconfig for admin client to this file" / "with this mode".
//   - --data-dir D/k3s: "Folder to hold state" (default /var/lib/rancher/k3s).
//   - --node-name NAME: "Node name"; see k3sNodeName for the rule.
//   - moby: --docker ("Use cri-dockerd instead of containerd") together with
//     --container-runtime-endpoint unix://H/docker.sock: the agent docs say
//     the endpoint flag, "when used with --docker[,] sets the docker socket
//     path". k3s's pkg/agent/cridockerd confirms it: the endpoint becomes
//     the Docker client's host and cri-dockerd's --docker-endpoint (it
//     overrides DOCKER_HOST, which the client reads first), so k3s never
//     looks at /var/run/docker.sock.
//   - containerd: --container-runtime-endpoint unix://H/containerd.sock:
//     "Disable embedded containerd and use the CRI socket at the given path".
//
// k3s also reads /etc/rancher/k3s/config.yaml unless told another file
// (--config, or K3S_CONFIG_FILE, agent docs: "[$K3S_CONFIG_FILE]"), and
// every K3S_* variable of its environment. A system k3s's configuration
// (a K3S_URL, a token, a datastore) must not leak into rdd's, so the child
// gets rdd's environment without K3S_* and with K3S_CONFIG_FILE naming an
// empty file of rdd's (H/run/k3s-config.yaml), the way dockerd gets
// --config-file to keep /etc/docker/daemon.json out. The environment
// variable is used rather than --config so the command line stays the
// list above.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/rdd-project/rdd/internal/logfile"
	"github.com/rdd-project/rdd/internal/mounts"
	"github.com/rdd-project/rdd/internal/paths"
	"github.com/rdd-project/rdd/internal/proc"
	"github.com/rdd-project/rdd/internal/spec"
	"github.com/rdd-project/rdd/internal/vm"
)

var _ vm.KubernetesRunner = (*Driver)(nil)

// k3sStartGrace is how long StartKubernetes watches a fresh k3s for an early
// exit (a port taken between the caller's probe and k3s's bind, F13). It
// returns sooner once k3s itself listens on the port.
const k3sStartGrace = 2 * time.Second

// k3sMachineStopGrace bounds the SIGTERM phase when the machine's Stop stops
// k3s first, so a k3s that ignores SIGTERM cannot use up the time the
// engine needs to stop its containers.
const k3sMachineStopGrace = 10 * time.Second

// k3sStateVersion is the schema version of H/run/k3s.json.
const k3sStateVersion = 1

// k3sLayout holds the files of the host driver's k3s.
type k3sLayout struct {
	dataDir    string // D/k3s (--data-dir)
	kubeconfig string // D/k3s.yaml (--write-kubeconfig)
	log        string // L/k3s.log
	stateFile  string // H/run/k3s.json
	configFile string // H/run/k3s-config.yaml (K3S_CONFIG_FILE; empty)
	dockerSock string // H/docker.sock
	ctrdSock   string // H/containerd.sock
}

func newK3sLayout(p paths.Paths) k3sLayout {
	l := newLayout(p)
	return k3sLayout{
		dataDir:    filepath.Join(p.ServiceDir, "k3s"),
		kubeconfig: p.K3sConfig,
		log:        filepath.Join(p.LogDir, "k3s.log"),
		stateFile:  filepath.Join(l.runDir, "k3s.json"),
		configFile: filepath.Join(l.runDir, "k3s-config.yaml"),
		dockerSock: l.dockerSock,
		ctrdSock:   l.ctrdSock,
	}
}

// k3sNodeName derives the node name from the instance name N
// ("rancher-desktop-S"). Kubernetes wants a DNS-1123 subdomain, and the
// kubelet also uses the name as the kubernetes.io/hostname label, which
// allows 63 characters: so the rule is lower case, every character other
// than a-z, 0-9 and '-' becomes '-', at most 63 characters, no '-' at
// either end, and "rancher-desktop" if nothing is left. Two suffixes that
// differ only in such characters get the same name; each instance has its
// own cluster, so that is harmless.
func k3sNodeName(instance string) string {
	b := []byte(strings.ToLower(instance))
	for i, c := range b {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			b[i] = '-'
		}
	}
	s := strings.Trim(string(b), "-")
	if len(s) > 63 {
		s = strings.TrimRight(s[:63], "-")
	}
	if s == "" {
		return "rancher-desktop"
	}
	return s
}

// args is the k3s command line (without the binary) for cfg.
func (kl k3sLayout) args(cfg vm.KubernetesConfig, nodeName string) []string {
	args := []string{"server",
		"--https-listen-port", strconv.Itoa(cfg.Port),
		"--bind-address", "127.0.0.1",
		"--write-kubeconfig", kl.kubeconfig,
		"--write-kubeconfig-mode", "600",
		"--data-dir", kl.dataDir,
		"--node-name", nodeName,
	}
	if cfg.Engine == spec.EngineMoby {
		return append(args, "--docker", "--container-runtime-endpoint", "unix://"+kl.dockerSock)
	}
	return append(args, "--container-runtime-endpoint", "unix://"+kl.ctrdSock)
}

// k3sState is the content of H/run/k3s.json: what lets a restarted rdd
// re-adopt k3s, or tell that the pid it names is no longer k3s.
type k3sState struct {
	V         int             `json:"v"`
	Tag       string          `json:"tag"`
	Port      int             `json:"port"`
	Engine    spec.EngineName `json:"engine"`
	Argv      []string        `json:"argv"` // binary and arguments: the config a restart must match
	StartedAt time.Time       `json:"startedAt"`
	// Proc is k3s, the leader of its own process group. Zero while
	// Spawning is set.
	Proc     procRecord   `json:"proc"`
	Spawning *spawnIntent `json:"spawning,omitempty"`
}

func readK3sState(path string) (st k3sState, ok bool, err error) {
	ok, err = readJSONState(path, "k3s", &st, func() int { return st.V }, k3sStateVersion)
	return st, ok, err
}

func writeK3sState(path string, st k3sState) error {
	st.V = k3sStateVersion
	return writeJSONState(path, "k3s", st)
}

// k3sWatch watches one k3s process. msg is set before exited is closed.
type k3sWatch struct {
	rec      procRecord
	exited   chan struct{}
	cancel   context.CancelFunc
	done     chan struct{} // closed when the watcher goroutine returned
	stopping atomic.Bool   // set by a stop: the exit is expected
	msg      string
}

func (w *k3sWatch) is(rec procRecord) bool {
	return w.rec.PID == rec.PID && w.rec.StartTicks == rec.StartTicks
}

// k3sSupervisor is the Driver's k3s bookkeeping (Driver.k3s).
type k3sSupervisor struct {
	mu      sync.Mutex // never held while waiting
	cur     *k3sWatch
	watches []*k3sWatch
	closed  bool
}

func (d *Driver) kube() *k3sSupervisor { return &d.k3s }

// closeKubernetes stops the k3s watchers; k3s keeps
// running for a later Driver to re-adopt. Close must call it.
func (d *Driver) closeKubernetes() {
	s := d.kube()
	s.mu.Lock()
	s.closed = true
	ws := s.watches
	s.watches, s.cur = nil, nil
	s.mu.Unlock()
	for _, w := range ws {
		w.cancel()
		<-w.done
	}
}

// trackK3s returns the watcher of rec, starting one unless this Driver
// already watches it. cmd is set when k3s is this process's child.
func (d *Driver) trackK3s(rec procRecord, cmd *exec.Cmd) (*k3sWatch, error) {
	s := d.kube()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	if s.cur != nil && s.cur.is(rec) {
		return s.cur, nil
	}
	w := d.watchK3s(rec, cmd)
	live := s.watches[:0]
	for _, o := range s.watches {
		select {
		case <-o.done:
		default:
			live = append(live, o)
		}
	}
	s.watches = append(live, w)
	s.cur = w
	return w, nil
}

// current returns the watcher of the k3s this Driver saw last, or nil.
func (s *k3sSupervisor) current() *k3sWatch {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur
}

// watchK3s waits on rec's pidfd (waitExit). After an exit it stops what is
// left of k3s's process group (the group was k3s's a moment ago, so its id
// is not reused) and only then closes exited, so a reader of a closed
// exited never finds half a k3s.
func (d *Driver) watchK3s(rec procRecord, cmd *exec.Cmd) *k3sWatch {
	ctx, cancel := context.WithCancel(context.Background())
	w := &k3sWatch{rec: rec, exited: make(chan struct{}), cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		defer cancel()
		if !waitExit(ctx, rec, d.usePidfd) {
			return
		}
		status := "exited"
		if cmd != nil {
			if err := cmd.Wait(); err != nil { // reap; returns at once
				status = err.Error()
			} else {
				status = cmd.ProcessState.String()
			}
		}
		stopGroup(ctx, rec.PID, teardownGrace)
		if w.stopping.Load() {
			w.msg = fmt.Sprintf("k3s (pid %d) stopped", rec.PID)
			d.log.Info("k3s exited", zap.Int("pid", rec.PID), zap.String("status", status))
		} else {
			w.msg = exitMessage(rec, status)
			d.log.Warn("k3s exited", zap.Int("pid", rec.PID), zap.String("status", status), zap.String("log", rec.Log))
		}
		close(w.exited)
	}()
	return w
}

// exitMessage explains an exit of k3s. The log's tail comes last, so that
// the message's last line is k3s's last word.
func exitMessage(rec procRecord, status string) string {
	return fmt.Sprintf("k3s (pid %d) exited (%s), see %s; end of its log:\n%s", rec.PID, status, rec.Log, tailLog(rec.Log, 20))
}

// stopGroup sends SIGTERM to the process group pgid, then SIGKILL after
// grace, and waits (at most killWait more) until it is empty. Callers know
// the group is theirs: its leader was verified alive a moment ago.
func stopGroup(ctx context.Context, pgid int, grace time.Duration) bool {
	empty := func() bool { return len(groupMembers(pgid)) == 0 }
	if empty() {
		return true
	}
	signalGroup(pgid, syscall.SIGTERM)
	gctx, cancel := context.WithTimeout(ctx, grace)
	defer cancel()
	if waitUntil(gctx, empty) {
		return true
	}
	signalGroup(pgid, syscall.SIGKILL)
	kctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), killWait)
	defer cancel()
	return waitUntil(kctx, empty)
}

// StartKubernetes implements vm.KubernetesRunner. The engine must run (the
// machine started with cfg.Engine). A k3s that runs with the same command
// line and tag is re-adopted; one with another configuration is stopped
// and replaced. Before spawning, StartKubernetes binds 127.0.0.1:cfg.Port
// once itself, so a port already taken fails at once; afterwards it watches
// k3s for up to k3sStartGrace (less once k3s listens on the port) and
// reports a bind failure in that window as ErrKubernetesPortInUse. k3s
// binds its port only after unpacking itself into the data dir, which on
// a first start can take longer than the grace: a later bind failure shows
// as an exit (Exited closes, InspectKubernetes's Message quotes the log).
func (d *Driver) StartKubernetes(ctx context.Context, cfg vm.KubernetesConfig) (vm.KubernetesInfo, error) {
	if err := d.acquire(ctx); err != nil {
		return vm.KubernetesInfo{}, err
	}
	defer d.release()
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d.opts.StartTimeout)
		defer cancel()
	}
	if cfg.Engine != spec.EngineMoby && cfg.Engine != spec.EngineContainerd {
		return vm.KubernetesInfo{}, fmt.Errorf("host: k3s: unsupported container engine %q", cfg.Engine)
	}
	if cfg.Port <= 0 || cfg.Port > 65535 {
		return vm.KubernetesInfo{}, fmt.Errorf("host: k3s: invalid port %d", cfg.Port)
	}
	if cfg.Binary == "" {
		return vm.KubernetesInfo{}, errors.New("host: k3s: no binary given")
	}
	bin, err := exec.LookPath(cfg.Binary)
	if err != nil {
		return vm.KubernetesInfo{}, fmt.Errorf("host: cannot run k3s %q: %w", cfg.Binary, err)
	}
	if err := d.engineRunsFor(cfg.Engine); err != nil {
		return vm.KubernetesInfo{}, err
	}
	kl := newK3sLayout(d.p)
	argv := append([]string{bin}, kl.args(cfg, k3sNodeName(d.p.Name))...)

	info, st, err := d.inspectK3sLocked(ctx)
	if err != nil {
		return vm.KubernetesInfo{}, err
	}
	if info.Running {
		if slices.Equal(st.Argv, argv) && st.Tag == cfg.Tag {
			d.log.Info("k3s already running", zap.Int("pid", info.PID))
			return info, nil
		}
		d.log.Info("k3s runs with another configuration; restarting it", zap.Strings("was", st.Argv), zap.String("tag", st.Tag))
		if err := d.stopK3sLocked(ctx, k3sMachineStopGrace); err != nil {
			return vm.KubernetesInfo{}, err
		}
	}
	return d.spawnK3s(ctx, cfg, kl, argv)
}

// engineRunsFor fails unless the machine runs, whole, with engine e: k3s
// would only fail later, less clearly, against a missing socket.
func (d *Driver) engineRunsFor(e spec.EngineName) error {
	st, ok, err := readState(d.l.stateFile)
	if err != nil {
		return fmt.Errorf("host: k3s needs the engine: %w", err)
	}
	if !ok || len(st.Procs) == 0 || st.halfStarted() != "" {
		return errors.New("host: k3s needs the engine, which is not running: start the machine first")
	}
	if st.Engine != e {
		return fmt.Errorf("host: k3s was asked to use the %s engine, but the machine runs %s", e, st.Engine)
	}
	return nil
}

func (d *Driver) spawnK3s(ctx context.Context, cfg vm.KubernetesConfig, kl k3sLayout, argv []string) (vm.KubernetesInfo, error) {
	if err := d.prepareDirs(); err != nil {
		return vm.KubernetesInfo{}, err
	}
	if err := os.MkdirAll(kl.dataDir, 0o700); err != nil {
		return vm.KubernetesInfo{}, fmt.Errorf("host: create k3s data dir: %w", err)
	}
	if err := os.WriteFile(kl.configFile, []byte("# rdd passes every k3s setting on the command line; this file keeps /etc/rancher/k3s/config.yaml out.\n"), 0o600); err != nil {
		return vm.KubernetesInfo{}, fmt.Errorf("host: write k3s config: %w", err)
	}
	if err := checkPortFree(cfg.Port); err != nil {
		return vm.KubernetesInfo{}, err
	}
	if err := freshLog(kl.log, d.opts.KeepLogs, d.opts.LogTitle); err != nil {
		return vm.KubernetesInfo{}, fmt.Errorf("host: %w", err)
	}
	self, err := proc.ReadStat(os.Getpid())
	if err != nil {
		return vm.KubernetesInfo{}, fmt.Errorf("host: read own start time: %w", err)
	}
	st := k3sState{Tag: cfg.Tag, Port: cfg.Port, Engine: cfg.Engine, Argv: argv, StartedAt: time.Now().UTC(),
		Spawning: &spawnIntent{Argv: argv, NotBefore: self.StartTicks}}
	if err := writeK3sState(kl.stateFile, st); err != nil {
		return vm.KubernetesInfo{}, fmt.Errorf("host: %w", err)
	}
	cmd, rec, err := spawnK3sProcess(argv, kl)
	if err != nil {
		_ = os.Remove(kl.stateFile)
		return vm.KubernetesInfo{}, fmt.Errorf("host: %w", err)
	}
	st.Proc, st.Spawning = rec, nil
	if err := writeK3sState(kl.stateFile, st); err != nil {
		stopGroup(ctx, rec.PID, 0)
		_ = cmd.Wait()
		_ = os.Remove(kl.stateFile)
		return vm.KubernetesInfo{}, fmt.Errorf("host: %w", err)
	}
	w, err := d.trackK3s(rec, cmd)
	if err != nil {
		return vm.KubernetesInfo{}, err
	}
	if err := d.awaitK3sStart(ctx, w, cfg.Port); err != nil {
		_ = os.Remove(kl.stateFile)
		return vm.KubernetesInfo{}, err
	}
	d.log.Info("k3s started", zap.Int("pid", rec.PID), zap.Int("port", cfg.Port), zap.String("tag", cfg.Tag))
	return vm.KubernetesInfo{Running: true, PID: rec.PID, Exited: w.exited,
		Message: fmt.Sprintf("k3s started (pid %d)", rec.PID)}, nil
}

// awaitK3sStart waits until k3s listens on port (started), k3sStartGrace
// passes (taken as started), or k3s exits (an error; ErrKubernetesPortInUse
// when its log shows that the port was taken).
func (d *Driver) awaitK3sStart(ctx context.Context, w *k3sWatch, port int) error {
	gctx, cancel := context.WithTimeout(ctx, k3sStartGrace)
	defer cancel()
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	for {
		select {
		case <-w.exited:
			if bindFailed(w.rec.Log, port) {
				return fmt.Errorf("host: k3s (pid %d) could not bind 127.0.0.1:%d: %w; see %s", w.rec.PID, port, vm.ErrKubernetesPortInUse, w.rec.Log)
			}
			return fmt.Errorf("host: %s", w.msg)
		case <-gctx.Done():
			return nil
		case <-t.C:
			if listensOn(w.rec.PID, port) {
				return nil
			}
		}
	}
}

// checkPortFree binds 127.0.0.1:port and lets it go again: a port taken now
// fails the start at once instead of after k3s's own attempt.
func checkPortFree(port int) error {
	l, err := net.Listen("tcp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("host: k3s: 127.0.0.1:%d: %w", port, vm.ErrKubernetesPortInUse)
	}
	if err != nil {
		return fmt.Errorf("host: k3s: check port %d: %w", port, err)
	}
	return l.Close()
}

// bindFailed reports whether the end of the k3s log says that the port
// could not be bound. k3s quotes Go's net error, e.g. `listen tcp
// 127.0.0.1:7443: bind: address already in use`.
func bindFailed(logPath string, port int) bool {
	tail, err := logfile.Tail(logPath, 50)
	return err == nil && strings.Contains(tail, fmt.Sprintf(":%d: bind: address already in use", port))
}

// listensOn reports whether process pid holds a TCP socket listening on
// port: a foreign listener on the port does not count.
func listensOn(pid, port int) bool {
	inodes := map[string]bool{}
	suffix := fmt.Sprintf(":%04X", port)
	for _, f := range []string{"tcp", "tcp6"} {
		fh, err := os.Open(filepath.Join("/proc", strconv.Itoa(pid), "net", f))
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			fs := strings.Fields(sc.Text())
			if len(fs) > 9 && fs[3] == "0A" && strings.HasSuffix(fs[1], suffix) { // 0A = TCP_LISTEN
				inodes["socket:["+fs[9]+"]"] = true
			}
		}
		fh.Close()
	}
	if len(inodes) == 0 {
		return false
	}
	fdDir := filepath.Join("/proc", strconv.Itoa(pid), "fd")
	fds, _ := os.ReadDir(fdDir)
	for _, fd := range fds {
		if l, err := os.Readlink(filepath.Join(fdDir, fd.Name())); err == nil && inodes[l] {
			return true
		}
	}
	return false
}

// k3sEnv is childEnv without K3S_* (a user's K3S_URL or K3S_TOKEN would
// make rdd's k3s join another cluster) and with K3S_CONFIG_FILE naming
// rdd's empty config file. K3S_STANDIN_* pass: k3s reads none of them, and
// they are the knobs of the test stand-in (internal/kube/kubetest).
func k3sEnv(env []string, configFile string) []string {
	out := slices.DeleteFunc(childEnv(env), func(kv string) bool {
		return strings.HasPrefix(kv, "K3S_") && !strings.HasPrefix(kv, "K3S_STANDIN_")
	})
	return append(out, "K3S_CONFIG_FILE="+configFile)
}

// spawnK3sProcess starts k3s as the leader of its own process group, with
// k3s's own configuration kept out of its environment (k3sEnv).
func spawnK3sProcess(argv []string, kl k3sLayout) (*exec.Cmd, procRecord, error) {
	cmd, rec, err := spawnEnv(argv[0], argv[1:], kl.log, 0, k3sEnv(os.Environ(), kl.configFile))
	rec.Name = "k3s" // whatever the binary is called (RDD_K3S_BIN)
	return cmd, rec, err
}

// InspectKubernetes implements vm.KubernetesRunner: a k3s recorded in the
// state file that still runs (same pid and start time) is re-adopted; one
// that exited is reported with the end of its log and its state removed; a
// pid that now belongs to another process is left alone. What an rdd that
// died while spawning k3s left unrecorded (found by its exact command line,
// started after that rdd) is stopped: it was never reported to anyone.
func (d *Driver) InspectKubernetes(ctx context.Context) (vm.KubernetesInfo, error) {
	if err := d.acquire(ctx); err != nil {
		return vm.KubernetesInfo{}, err
	}
	defer d.release()
	info, _, err := d.inspectK3sLocked(ctx)
	return info, err
}

func (d *Driver) inspectK3sLocked(ctx context.Context) (vm.KubernetesInfo, k3sState, error) {
	kl := newK3sLayout(d.p)
	st, ok, err := readK3sState(kl.stateFile)
	if err != nil {
		return vm.KubernetesInfo{}, k3sState{}, fmt.Errorf("host: %w; StopKubernetes removes it", err)
	}
	if !ok {
		info := vm.KubernetesInfo{Message: "k3s is not running"}
		if w := d.kube().current(); w != nil && isClosedChan(w.exited) {
			info.Message = w.msg
		}
		return info, k3sState{}, nil
	}
	if st.Spawning != nil {
		found := killK3sStrays(ctx, st)
		_ = os.Remove(kl.stateFile)
		d.log.Warn("found an interrupted k3s start; stopped what it spawned", zap.Ints("pids", found))
		return vm.KubernetesInfo{Message: fmt.Sprintf("a k3s start was interrupted (unrecorded processes stopped: %v)", found)}, k3sState{}, nil
	}
	if !st.Proc.alive() {
		_ = os.Remove(kl.stateFile)
		msg := exitMessage(st.Proc, "no longer running")
		if w := d.kube().current(); w != nil && w.is(st.Proc) && isClosedChan(w.exited) {
			msg = w.msg
		}
		if m := groupMembers(st.Proc.PID); len(m) > 0 {
			// The group may have emptied and its id been reused while no
			// rdd watched: without its leader, nothing proves it is ours.
			d.log.Warn("k3s is gone but its process group id is in use; leaving those processes alone", zap.Int("pgid", st.Proc.PID), zap.Ints("pids", m))
		}
		return vm.KubernetesInfo{Message: msg}, k3sState{}, nil
	}
	w, err := d.trackK3s(st.Proc, nil)
	if err != nil {
		return vm.KubernetesInfo{}, k3sState{}, err
	}
	return vm.KubernetesInfo{Running: true, PID: st.Proc.PID, Exited: w.exited,
		Message: fmt.Sprintf("k3s running (pid %d)", st.Proc.PID)}, st, nil
}

// killK3sStrays SIGKILLs the processes of st's spawn intent (and their
// groups: each led one) and returns their pids.
func killK3sStrays(ctx context.Context, st k3sState) []int {
	strays := state{Spawning: st.Spawning}.strays()
	var pids []int
	for _, p := range strays {
		pids = append(pids, p.PID)
		p.signal(syscall.SIGKILL)
		signalGroup(p.PID, syscall.SIGKILL)
	}
	kctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), killWait)
	defer cancel()
	waitUntil(kctx, func() bool {
		for _, p := range strays {
			if p.alive() {
				return false
			}
		}
		return true
	})
	return pids
}

// StopKubernetes implements vm.KubernetesRunner: SIGTERM to k3s's process
// group, SIGKILL when ctx ends (Options.StopTimeout without a deadline),
// and it returns once the group is empty and Exited is closed.
func (d *Driver) StopKubernetes(ctx context.Context) error {
	if err := d.acquire(ctx); err != nil {
		return err
	}
	defer d.release()
	ctx, cancel := d.stopDeadline(ctx)
	defer cancel()
	return d.stopK3sLocked(ctx, 0)
}

// stopKubernetesForMachine is the machine Stop's first step (it holds the
// token): k3s goes before the engine it runs on.
func (d *Driver) stopKubernetesForMachine(ctx context.Context) error {
	return d.stopK3sLocked(ctx, k3sMachineStopGrace)
}

// deleteKubernetesLocked is the machine Delete's first step (it holds the
// token): it stops k3s with forceGrace and removes D/k3s, D/k3s.yaml and
// the k3s runtime files. L/k3s.log is kept, as the engine logs are.
func (d *Driver) deleteKubernetesLocked(ctx context.Context) error {
	if err := d.stopK3sLocked(ctx, forceGrace); err != nil {
		return err
	}
	kl := newK3sLayout(d.p)
	if err := mounts.UnmountUnder(kl.dataDir); err != nil {
		return fmt.Errorf("host: delete k3s data: %w", err)
	}
	if err := os.RemoveAll(kl.dataDir); err != nil {
		return fmt.Errorf("host: delete %s: %w", kl.dataDir, err)
	}
	for _, f := range []string{kl.kubeconfig, kl.configFile} {
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("host: delete %s: %w", f, err)
		}
	}
	return nil
}

// stopK3sLocked stops the recorded k3s. The SIGTERM phase lasts until ctx
// ends, or at most grace when grace > 0. Only a k3s whose pid and start
// time match the record is signalled, with its process group.
func (d *Driver) stopK3sLocked(ctx context.Context, grace time.Duration) error {
	kl := newK3sLayout(d.p)
	st, ok, err := readK3sState(kl.stateFile)
	if err != nil {
		d.log.Warn("removing unreadable k3s state", zap.Error(err))
		_ = os.Remove(kl.stateFile)
		return nil
	}
	if !ok {
		return nil
	}
	if st.Spawning != nil {
		killK3sStrays(ctx, st)
	}
	rec := st.Proc
	if rec.alive() {
		w := d.kube().current()
		if w != nil && w.is(rec) {
			w.stopping.Store(true)
		}
		d.log.Info("stopping k3s", zap.Int("pid", rec.PID))
		gctx, cancel := context.WithCancel(ctx)
		if grace > 0 {
			gctx, cancel = context.WithTimeout(ctx, grace)
		}
		rec.signal(syscall.SIGTERM)
		signalGroup(rec.PID, syscall.SIGTERM)
		gone := func() bool { return !rec.alive() && len(groupMembers(rec.PID)) == 0 }
		stopped := waitUntil(gctx, gone)
		cancel()
		if !stopped {
			d.log.Warn("k3s did not stop in time; killing its process group", zap.Int("pgid", rec.PID))
			rec.signal(syscall.SIGKILL)
			// The leader was ours a moment ago, so the group id is not reused.
			signalGroup(rec.PID, syscall.SIGKILL)
			kctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), killWait)
			defer cancel()
			if !waitUntil(kctx, gone) {
				return fmt.Errorf("host: k3s process group %d still runs %v %s after SIGKILL", rec.PID, groupMembers(rec.PID), killWait)
			}
		}
		if w != nil && w.is(rec) {
			wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), killWait)
			defer cancel()
			select {
			case <-w.exited:
			case <-w.done:
			case <-wctx.Done():
				d.log.Warn("k3s watcher did not report the exit", zap.Int("pid", rec.PID))
			}
		}
		d.log.Info("k3s stopped", zap.Int("pid", rec.PID))
	}
	if err := os.Remove(kl.stateFile); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("host: remove k3s state: %w", err)
	}
	return nil
}

func isClosedChan(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
