package host

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rdd-project/rdd/internal/paths"
	"github.com/rdd-project/rdd/internal/proc"
	"github.com/rdd-project/rdd/internal/spec"
	"github.com/rdd-project/rdd/internal/vm"
)

// The test binary doubles as a fake k3s: run under the name "k3s" it checks
// the flags rdd passes, binds its port on loopback, writes a kubeconfig,
// starts one helper in its process group (as k3s does) and runs until
// SIGTERM. Marker files in its --data-dir change what it does:
// fake-port-taken (exit as k3s does when its port was taken after rdd's
// check) and fake-ignore-term (survive SIGTERM).
func init() {
	switch filepath.Base(os.Args[0]) {
	case "k3s":
		os.Exit(fakeK3s(os.Args[1:]))
	case "k3s-child":
		waitSignal(syscall.SIGTERM, syscall.SIGINT)
		os.Exit(0)
	}
}

func waitSignal(sigs ...os.Signal) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, sigs...)
	<-ch
}

var dns1123Label = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)

func fakeK3s(args []string) int {
	fmt.Printf("fake k3s: %s\n", strings.Join(args, " "))
	fail := func(format string, a ...any) int {
		fmt.Printf("fake k3s: "+format+"\n", a...)
		return 2
	}
	if len(args) == 0 || args[0] != "server" {
		return fail("want the server subcommand first")
	}
	fs := flag.NewFlagSet("k3s server", flag.ContinueOnError)
	port := fs.Int("https-listen-port", 6443, "")
	bind := fs.String("bind-address", "0.0.0.0", "")
	kubeconfig := fs.String("write-kubeconfig", "", "")
	mode := fs.String("write-kubeconfig-mode", "", "")
	dataDir := fs.String("data-dir", "", "")
	node := fs.String("node-name", "", "")
	docker := fs.Bool("docker", false, "")
	endpoint := fs.String("container-runtime-endpoint", "", "")
	if err := fs.Parse(args[1:]); err != nil || fs.NArg() != 0 {
		return fail("bad flags (%v), rest %q", err, fs.Args())
	}
	switch {
	case *bind != "127.0.0.1":
		return fail("bind address %q, want 127.0.0.1", *bind)
	case !filepath.IsAbs(*kubeconfig) || !filepath.IsAbs(*dataDir):
		return fail("kubeconfig %q and data dir %q must be absolute", *kubeconfig, *dataDir)
	case *mode != "600":
		return fail("kubeconfig mode %q", *mode)
	case !dns1123Label.MatchString(*node):
		return fail("node name %q is not a DNS-1123 label", *node)
	case !strings.HasPrefix(*endpoint, "unix:///"):
		return fail("runtime endpoint %q", *endpoint)
	case *docker != strings.HasSuffix(*endpoint, "/docker.sock"):
		return fail("--docker=%v with endpoint %q", *docker, *endpoint)
	case os.Getenv("K3S_CONFIG_FILE") == "":
		return fail("K3S_CONFIG_FILE is not set")
	}
	// Signals are settled before the port is bound: the tests stop k3s
	// once it listens.
	sigs := make(chan os.Signal, 1)
	if fileExists(filepath.Join(*dataDir, "fake-ignore-term")) {
		signal.Ignore(syscall.SIGTERM)
	} else {
		signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	}
	if fileExists(filepath.Join(*dataDir, "fake-port-taken")) {
		fmt.Printf("level=fatal msg=\"starting kubernetes: preparing server: init cluster datastore and https: listen tcp %s:%d: bind: address already in use\"\n", *bind, *port)
		return 1
	}
	l, err := net.Listen("tcp", net.JoinHostPort(*bind, strconv.Itoa(*port)))
	if err != nil {
		fmt.Printf("level=fatal msg=\"starting kubernetes: %v\"\n", err)
		return 1
	}
	defer l.Close()
	if err := os.WriteFile(*kubeconfig, fmt.Appendf(nil, "server: https://127.0.0.1:%d\n", *port), 0o600); err != nil {
		return fail("%v", err)
	}
	self, err := os.Executable()
	if err != nil {
		return fail("%v", err)
	}
	child := &exec.Cmd{Path: self, Args: []string{"k3s-child", *dataDir}}
	if err := child.Start(); err != nil {
		return fail("%v", err)
	}
	fmt.Printf("fake k3s: listening on %s\n", l.Addr())
	<-sigs
	fmt.Println("fake k3s: shutting down")
	_ = child.Process.Kill()
	_ = child.Wait()
	return 0
}

// fakeK3sBinary links the test binary under the name k3s.
func fakeK3sBinary(t *testing.T) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "k3s")
	if err := os.Symlink(self, bin); err != nil {
		t.Fatal(err)
	}
	return bin
}

// waitK3sListening waits until the fake k3s has logged that it listens on
// port, and returns that line. The port listens a moment earlier: the fake
// writes its kubeconfig and starts its helper before it logs.
func waitK3sListening(t *testing.T, p paths.Paths, port int) string {
	t.Helper()
	line := "fake k3s: listening on 127.0.0.1:" + strconv.Itoa(port)
	eventually(t, 10*time.Second, "k3s logs that it listens", func() bool {
		b, _ := os.ReadFile(newK3sLayout(p).log)
		return strings.Contains(string(b), line)
	})
	return line
}

// newK3sTestDriver is newTestDriver that also closes the k3s watchers
// (Driver.Close does not yet).
func newK3sTestDriver(t *testing.T, p paths.Paths) *Driver {
	t.Helper()
	d := newTestDriver(t, p, Options{})
	t.Cleanup(d.closeKubernetes)
	if _, err := d.Create(context.Background()); err != nil {
		t.Fatal(err)
	}
	return d
}

// fakeEngine records a running machine of engine e made of sleepers, so
// that k3s may start without a real dockerd.
func fakeEngine(t *testing.T, d *Driver, e spec.EngineName) {
	t.Helper()
	st := state{Engine: e, StartedAt: time.Now().UTC(), Socket: d.l.ctrdSock}
	for i := range wantProcs(e) {
		_, rec := spawnSleeper(t, "exec sleep 1000", st.PGID)
		if i == 0 {
			st.PGID = rec.PID
		}
		st.Procs = append(st.Procs, rec)
	}
	if err := writeState(d.l.stateFile, st); err != nil {
		t.Fatal(err)
	}
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func cmdline(pid int) []string {
	b, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
	return strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00")
}

func assertGroupGone(t *testing.T, pgid int) {
	t.Helper()
	if m := groupMembers(pgid); len(m) > 0 {
		t.Fatalf("process group %d still has %v", pgid, m)
	}
}

func TestK3sNodeName(t *testing.T) {
	for in, want := range map[string]string{
		"rancher-desktop-2":      "rancher-desktop-2",
		"rancher-desktop-Bats_1": "rancher-desktop-bats-1",
		"rancher-desktop-a.b":    "rancher-desktop-a-b",
		"--":                     "rancher-desktop",
		"rancher-desktop-" + strings.Repeat("x", 60) + "-y": "rancher-desktop-" + strings.Repeat("x", 47),
	} {
		got := k3sNodeName(in)
		if got != want || !dns1123Label.MatchString(got) {
			t.Errorf("k3sNodeName(%q) = %q, want %q (a DNS-1123 label)", in, got, want)
		}
	}
}

func TestK3sEnv(t *testing.T) {
	got := k3sEnv([]string{"PATH=/bin", "K3S_URL=https://elsewhere:6443", "K3S_TOKEN=x", "NOTIFY_SOCKET=/run/n", "K3S_STANDIN_NODE_READY=false"}, "/h/run/k3s-config.yaml")
	want := []string{"PATH=/bin", "K3S_STANDIN_NODE_READY=false", "K3S_CONFIG_FILE=/h/run/k3s-config.yaml"}
	if !slices.Equal(got, want) {
		t.Fatalf("k3sEnv = %q, want %q", got, want)
	}
}

// TestK3sLifecycle starts k3s with each engine, checks its command line,
// re-adopts it from the same and from a new Driver (a daemon crash), and
// stops it through the new one.
func TestK3sLifecycle(t *testing.T) {
	for _, e := range []spec.EngineName{spec.EngineMoby, spec.EngineContainerd} {
		t.Run(string(e), func(t *testing.T) {
			t.Parallel()
			p := testPaths(t)
			d := newK3sTestDriver(t, p)
			fakeEngine(t, d, e)
			ctx := startCtx(t)
			cfg := vm.KubernetesConfig{Binary: fakeK3sBinary(t), Tag: "v1.32.11+k3s1", Port: freePort(t), Engine: e}

			info, err := d.StartKubernetes(ctx, cfg)
			if err != nil || !info.Running || info.PID == 0 || info.Exited == nil {
				t.Fatalf("StartKubernetes = %+v, %v", info, err)
			}
			want := []string{cfg.Binary, "server",
				"--https-listen-port", strconv.Itoa(cfg.Port),
				"--bind-address", "127.0.0.1",
				"--write-kubeconfig", p.K3sConfig,
				"--write-kubeconfig-mode", "600",
				"--data-dir", filepath.Join(p.ServiceDir, "k3s"),
				"--node-name", "rancher-desktop-2"}
			if e == spec.EngineMoby {
				want = append(want, "--docker", "--container-runtime-endpoint", "unix://"+p.DockerSocket)
			} else {
				want = append(want, "--container-runtime-endpoint", "unix://"+filepath.Join(p.ShortDir, "containerd.sock"))
			}
			if got := cmdline(info.PID); !slices.Equal(got, want) {
				t.Fatalf("k3s command line\n got %q\nwant %q", got, want)
			}
			if st, err := proc.ReadStat(info.PID); err != nil || st.PGID != info.PID {
				t.Fatalf("k3s does not lead its own process group: %+v, %v", st, err)
			}
			eventually(t, 10*time.Second, "k3s listens on its port", func() bool { return listensOn(info.PID, cfg.Port) })
			waitK3sListening(t, p, cfg.Port) // its kubeconfig is written by then
			if fi, err := os.Stat(p.K3sConfig); err != nil || fi.Mode().Perm() != 0o600 {
				t.Fatalf("kubeconfig %s: %v, %v", p.K3sConfig, fi, err)
			}
			if !strings.HasPrefix(tailLog(filepath.Join(p.LogDir, "k3s.log"), 5), "fake k3s: server") {
				t.Fatalf("L/k3s.log does not hold k3s's output:\n%s", tailLog(filepath.Join(p.LogDir, "k3s.log"), 5))
			}

			again, err := d.StartKubernetes(ctx, cfg)
			if err != nil || again.PID != info.PID || again.Exited != info.Exited {
				t.Fatalf("second StartKubernetes = %+v, %v; want the same k3s (pid %d)", again, err, info.PID)
			}

			d2 := newK3sTestDriver(t, p) // the daemon crashed and came back
			found, err := d2.InspectKubernetes(ctx)
			if err != nil || !found.Running || found.PID != info.PID || found.Exited == nil || isClosed(found.Exited) {
				t.Fatalf("InspectKubernetes by a new driver = %+v, %v; want running pid %d", found, err, info.PID)
			}
			if again, err := d2.StartKubernetes(ctx, cfg); err != nil || again.PID != info.PID {
				t.Fatalf("StartKubernetes by the new driver = %+v, %v; want it to adopt pid %d", again, err, info.PID)
			}
			if err := d2.StopKubernetes(ctx); err != nil {
				t.Fatalf("StopKubernetes: %v", err)
			}
			waitClosed(t, found.Exited, 10*time.Second, "Exited of the adopted k3s")
			waitClosed(t, info.Exited, 10*time.Second, "Exited seen by the first driver")
			assertGroupGone(t, info.PID)
			if fileExists(newK3sLayout(p).stateFile) {
				t.Fatal("k3s state file left after StopKubernetes")
			}
			after, err := d2.InspectKubernetes(ctx)
			if err != nil || after.Running {
				t.Fatalf("InspectKubernetes after stop = %+v, %v", after, err)
			}
			if err := d2.StopKubernetes(ctx); err != nil {
				t.Fatalf("second StopKubernetes: %v", err)
			}
		})
	}
}

// TestK3sExit kills k3s behind the driver's back: Exited closes once its
// group is gone, and InspectKubernetes quotes its log.
func TestK3sExit(t *testing.T) {
	t.Parallel()
	p := testPaths(t)
	d := newK3sTestDriver(t, p)
	fakeEngine(t, d, spec.EngineContainerd)
	ctx := startCtx(t)
	cfg := vm.KubernetesConfig{Binary: fakeK3sBinary(t), Port: freePort(t), Engine: spec.EngineContainerd}
	info, err := d.StartKubernetes(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	listening := waitK3sListening(t, p, cfg.Port)
	if err := syscall.Kill(info.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, info.Exited, 20*time.Second, "Exited after SIGKILL")
	assertGroupGone(t, info.PID)
	got, err := d.InspectKubernetes(ctx)
	if err != nil || got.Running {
		t.Fatalf("InspectKubernetes = %+v, %v", got, err)
	}
	for _, s := range []string{"signal: killed", listening, "k3s.log"} {
		if !strings.Contains(got.Message, s) {
			t.Errorf("Message lacks %q:\n%s", s, got.Message)
		}
	}
	if again, err := d.StartKubernetes(ctx, cfg); err != nil || again.PID == info.PID {
		t.Fatalf("StartKubernetes after the exit = %+v, %v; want a new k3s", again, err)
	}
}

func TestK3sPortInUse(t *testing.T) {
	t.Parallel()
	p := testPaths(t)
	d := newK3sTestDriver(t, p)
	fakeEngine(t, d, spec.EngineMoby)
	ctx := startCtx(t)
	bin := fakeK3sBinary(t)

	t.Run("before the spawn", func(t *testing.T) {
		l, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		cfg := vm.KubernetesConfig{Binary: bin, Port: l.Addr().(*net.TCPAddr).Port, Engine: spec.EngineMoby}
		_, err = d.StartKubernetes(ctx, cfg)
		if !errors.Is(err, vm.ErrKubernetesPortInUse) {
			t.Fatalf("StartKubernetes on a taken port = %v; want ErrKubernetesPortInUse", err)
		}
		if fileExists(newK3sLayout(p).stateFile) {
			t.Fatal("a k3s state file was written")
		}
	})
	t.Run("taken after the check", func(t *testing.T) {
		kl := newK3sLayout(p)
		if err := os.MkdirAll(kl.dataDir, 0o700); err != nil {
			t.Fatal(err)
		}
		marker := filepath.Join(kl.dataDir, "fake-port-taken")
		if err := os.WriteFile(marker, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		defer os.Remove(marker)
		cfg := vm.KubernetesConfig{Binary: bin, Port: freePort(t), Engine: spec.EngineMoby}
		_, err := d.StartKubernetes(ctx, cfg)
		if !errors.Is(err, vm.ErrKubernetesPortInUse) {
			t.Fatalf("StartKubernetes = %v; want ErrKubernetesPortInUse", err)
		}
		if fileExists(kl.stateFile) || len(processesMentioning(kl.dataDir)) > 0 {
			t.Fatalf("left behind: state file %v, processes %v", fileExists(kl.stateFile), processesMentioning(kl.dataDir))
		}
	})
}

// TestK3sStaleState: a state file whose pid now belongs to another process
// (another start time) is neither adopted nor signalled.
func TestK3sStaleState(t *testing.T) {
	t.Parallel()
	p := testPaths(t)
	d := newK3sTestDriver(t, p)
	_, other := spawnSleeper(t, "exec sleep 1000", 0)
	kl := newK3sLayout(p)
	st := k3sState{Port: 7443, Engine: spec.EngineMoby, Argv: []string{"/usr/local/bin/k3s", "server"},
		Proc: procRecord{Name: "k3s", PID: other.PID, StartTicks: other.StartTicks + 1, Log: kl.log}}
	for _, op := range []string{"inspect", "stop"} {
		if err := writeK3sState(kl.stateFile, st); err != nil {
			t.Fatal(err)
		}
		if op == "inspect" {
			info, err := d.InspectKubernetes(context.Background())
			if err != nil || info.Running || info.PID != 0 {
				t.Fatalf("InspectKubernetes = %+v, %v; want not running", info, err)
			}
		} else if err := d.StopKubernetes(context.Background()); err != nil {
			t.Fatal(err)
		}
		if fileExists(kl.stateFile) {
			t.Fatalf("%s kept the stale state file", op)
		}
		if !other.alive() {
			t.Fatalf("%s hit pid %d, which is not k3s", op, other.PID)
		}
	}
}

// TestK3sStopKillsStubborn: a k3s that ignores SIGTERM is killed with its
// group when ctx ends.
func TestK3sStopKillsStubborn(t *testing.T) {
	t.Parallel()
	p := testPaths(t)
	d := newK3sTestDriver(t, p)
	fakeEngine(t, d, spec.EngineMoby)
	ctx := startCtx(t)
	kl := newK3sLayout(p)
	if err := os.MkdirAll(kl.dataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(kl.dataDir, "fake-ignore-term"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := vm.KubernetesConfig{Binary: fakeK3sBinary(t), Port: freePort(t), Engine: spec.EngineMoby}
	info, err := d.StartKubernetes(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "k3s listens", func() bool { return listensOn(info.PID, cfg.Port) })
	sctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if err := d.StopKubernetes(sctx); err != nil {
		t.Fatal(err)
	}
	if !isClosed(info.Exited) {
		t.Fatal("Exited is open after StopKubernetes returned")
	}
	assertGroupGone(t, info.PID)
}

// TestK3sRestartOnNewConfig: another port replaces the running k3s.
func TestK3sRestartOnNewConfig(t *testing.T) {
	t.Parallel()
	p := testPaths(t)
	d := newK3sTestDriver(t, p)
	fakeEngine(t, d, spec.EngineMoby)
	ctx := startCtx(t)
	cfg := vm.KubernetesConfig{Binary: fakeK3sBinary(t), Port: freePort(t), Engine: spec.EngineMoby}
	first, err := d.StartKubernetes(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Port = freePort(t)
	second, err := d.StartKubernetes(ctx, cfg)
	if err != nil || second.PID == first.PID {
		t.Fatalf("StartKubernetes with a new port = %+v, %v; want a new k3s", second, err)
	}
	if !isClosed(first.Exited) {
		t.Fatal("the first k3s's Exited is open")
	}
	assertGroupGone(t, first.PID)
	if !slices.Contains(cmdline(second.PID), strconv.Itoa(cfg.Port)) {
		t.Fatalf("new k3s command line %q lacks port %d", cmdline(second.PID), cfg.Port)
	}
}

func TestK3sNeedsEngine(t *testing.T) {
	t.Parallel()
	p := testPaths(t)
	d := newK3sTestDriver(t, p)
	cfg := vm.KubernetesConfig{Binary: fakeK3sBinary(t), Port: freePort(t), Engine: spec.EngineMoby}
	if _, err := d.StartKubernetes(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "not running") {
		t.Fatalf("StartKubernetes without an engine = %v", err)
	}
	fakeEngine(t, d, spec.EngineContainerd)
	if _, err := d.StartKubernetes(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "runs containerd") {
		t.Fatalf("StartKubernetes for moby on containerd = %v", err)
	}
}

// TestK3sInterruptedSpawn: an rdd that died between recording its intent
// and recording the pid left an unrecorded k3s; Inspect stops it.
func TestK3sInterruptedSpawn(t *testing.T) {
	t.Parallel()
	p := testPaths(t)
	d := newK3sTestDriver(t, p)
	kl := newK3sLayout(p)
	if err := os.MkdirAll(kl.dataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	cfg := vm.KubernetesConfig{Binary: fakeK3sBinary(t), Port: freePort(t), Engine: spec.EngineMoby}
	argv := append([]string{cfg.Binary}, kl.args(cfg, "rancher-desktop-2")...)
	self, err := proc.ReadStat(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if err := writeK3sState(kl.stateFile, k3sState{Argv: argv, Spawning: &spawnIntent{Argv: argv, NotBefore: self.StartTicks}}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(kl.configFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd, rec, err := spawnK3sProcess(argv, kl)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = cmd.Wait() }() // reap, as init would after rdd died
	eventually(t, 10*time.Second, "the stray k3s listens", func() bool { return listensOn(rec.PID, cfg.Port) })
	info, err := d.InspectKubernetes(context.Background())
	if err != nil || info.Running || !strings.Contains(info.Message, strconv.Itoa(rec.PID)) {
		t.Fatalf("InspectKubernetes = %+v, %v; want the stray (pid %d) stopped", info, err, rec.PID)
	}
	eventually(t, 10*time.Second, "the stray's group is gone", func() bool { return len(groupMembers(rec.PID)) == 0 })
	if fileExists(kl.stateFile) {
		t.Fatal("state file kept")
	}
}

// TestK3sDelete: the machine's Delete removes k3s's data and kubeconfig.
func TestK3sDelete(t *testing.T) {
	t.Parallel()
	p := testPaths(t)
	d := newK3sTestDriver(t, p)
	fakeEngine(t, d, spec.EngineMoby)
	ctx := startCtx(t)
	cfg := vm.KubernetesConfig{Binary: fakeK3sBinary(t), Port: freePort(t), Engine: spec.EngineMoby}
	info, err := d.StartKubernetes(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "k3s writes its kubeconfig", func() bool { return fileExists(p.K3sConfig) })
	if err := d.acquire(ctx); err != nil {
		t.Fatal(err)
	}
	err = d.deleteKubernetesLocked(ctx)
	d.release()
	if err != nil {
		t.Fatal(err)
	}
	assertGroupGone(t, info.PID)
	kl := newK3sLayout(p)
	for _, f := range []string{kl.dataDir, p.K3sConfig, kl.stateFile, kl.configFile} {
		if fileExists(f) {
			t.Errorf("%s left after delete", f)
		}
	}
}

// TestK3sStandin runs the shared k3s stand-in (internal/kube/kubetest) when
// it has been built.
func TestK3sStandin(t *testing.T) {
	bin, err := filepath.Abs("../../../.cache/k3s-standin/k3s")
	if err != nil {
		t.Fatal(err)
	}
	if !fileExists(bin) {
		t.Skipf("%s is not built yet", bin)
	}
	t.Parallel()
	p := testPaths(t)
	d := newK3sTestDriver(t, p)
	fakeEngine(t, d, spec.EngineMoby)
	ctx := startCtx(t)
	cfg := vm.KubernetesConfig{Binary: bin, Port: freePort(t), Engine: spec.EngineMoby}
	info, err := d.StartKubernetes(ctx, cfg)
	if err != nil {
		t.Fatalf("StartKubernetes with the stand-in: %v\n%s", err, tailLog(filepath.Join(p.LogDir, "k3s.log"), 20))
	}
	found, err := newK3sTestDriver(t, p).InspectKubernetes(ctx)
	if err != nil || !found.Running || found.PID != info.PID {
		t.Fatalf("InspectKubernetes = %+v, %v", found, err)
	}
	if err := d.StopKubernetes(ctx); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, info.Exited, 10*time.Second, "Exited")
	assertGroupGone(t, info.PID)
}

// TestK3sMachineStop: the machine's Stop stops k3s first, with a bounded
// grace, through stopKubernetesForMachine.
func TestK3sMachineStop(t *testing.T) {
	t.Parallel()
	p := testPaths(t)
	d := newK3sTestDriver(t, p)
	fakeEngine(t, d, spec.EngineContainerd)
	ctx := startCtx(t)
	cfg := vm.KubernetesConfig{Binary: fakeK3sBinary(t), Port: freePort(t), Engine: spec.EngineContainerd}
	info, err := d.StartKubernetes(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.acquire(ctx); err != nil {
		t.Fatal(err)
	}
	err = d.stopKubernetesForMachine(ctx)
	d.release()
	if err != nil {
		t.Fatal(err)
	}
	if !isClosed(info.Exited) {
		t.Fatal("Exited is open after the machine's k3s stop")
	}
	assertGroupGone(t, info.PID)
	if !fileExists(filepath.Join(p.ServiceDir, "k3s")) {
		t.Fatal("stopping the machine removed k3s's data")
	}
}
