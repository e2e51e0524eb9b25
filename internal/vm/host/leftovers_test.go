package host

import (
	"bufio"
	"context"
	"encoding/binary"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rdd-project/rdd/internal/mounts"
	"github.com/rdd-project/rdd/internal/paths"
	"github.com/rdd-project/rdd/internal/spec"
	"github.com/rdd-project/rdd/internal/vm"
)

func TestVersionField(t *testing.T) {
	frame := func(msg []byte) []byte {
		b := make([]byte, 5, 5+len(msg))
		binary.BigEndian.PutUint32(b[1:], uint32(len(msg)))
		return append(b, msg...)
	}
	// VersionResponse{version: "v1.7.24", revision: "abc"}, revision first.
	msg := append([]byte{0x12, 3, 'a', 'b', 'c', 0x0a, 7}, "v1.7.24"...)
	if v, err := versionField(frame(msg)); err != nil || v != "v1.7.24" {
		t.Fatalf("versionField = %q, %v", v, err)
	}
	for name, b := range map[string][]byte{
		"empty":      {},
		"short":      {0, 0, 0, 0, 9, 1},
		"compressed": {1, 0, 0, 0, 0},
		"no version": frame([]byte{0x12, 1, 'x'}),
		"truncated":  frame([]byte{0x0a, 9, 'v'}),
	} {
		if v, err := versionField(b); err == nil {
			t.Errorf("%s: versionField = %q, want an error", name, v)
		}
	}
}

// serveHTTP1 serves a Docker-like HTTP/1.1 API on a Unix socket.
func serveHTTP1(t *testing.T) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "http.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("OK")) })}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return sock
}

// Each probe speaks its own protocol: the containerd probe fails on an
// HTTP/1 server and on a socket nobody listens on, within its ctx.
func TestProbeContainerdRejectsOtherServers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if v, err := probeContainerd(ctx, serveHTTP1(t)); err == nil {
		t.Fatalf("probeContainerd on an HTTP/1 server = %q, want an error", v)
	}
	if _, err := probeContainerd(ctx, filepath.Join(t.TempDir(), "none.sock")); err == nil {
		t.Fatal("probeContainerd on a missing socket succeeded")
	}
	// A listener that accepts and never answers: the probe ends with ctx.
	sock := filepath.Join(t.TempDir(), "mute.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	sctx, scancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer scancel()
	if _, err := probeContainerd(sctx, sock); err == nil {
		t.Fatal("probeContainerd on a mute listener succeeded")
	}
}

// writeFakeState records sleepers as the machine's processes.
func writeFakeState(t *testing.T, d *Driver, st state) {
	t.Helper()
	if err := writeState(d.l.stateFile, st); err != nil {
		t.Fatal(err)
	}
}

// A moby machine whose start was interrupted after containerd: Inspect
// stops it at once and reports it stopped, naming what it found.
func TestInspectStopsHalfStartedMachine(t *testing.T) {
	p := testPaths(t)
	d := newTestDriver(t, p, Options{})
	if _, err := d.Create(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, ctrd := spawnSleeper(t, "exec sleep 600", 0)
	ctrd.Name = "containerd"
	writeFakeState(t, d, state{Engine: spec.EngineMoby, PGID: ctrd.PID, Socket: d.l.ctrdSock, Procs: []procRecord{ctrd}})
	for _, f := range []string{d.l.ctrdSock, p.DockerSocket, d.l.dockerPidfile} {
		if err := os.WriteFile(f, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	info, err := d.Inspect(context.Background())
	if err != nil || info.Phase != vm.PhaseStopped || !strings.Contains(info.Message, "dockerd was never started") ||
		!strings.Contains(info.Message, "half-started") {
		t.Fatalf("Inspect = %+v, %v; want stopped, naming the half-started engine", info, err)
	}
	if took := time.Since(start); took > halfStartGrace {
		t.Errorf("Inspect took %s", took)
	}
	if ctrd.alive() {
		t.Fatal("the half-started containerd still runs")
	}
	for _, f := range d.l.runtimeFiles() {
		if fileExists(f) {
			t.Errorf("%s left behind", f)
		}
	}
}

// A recorded dockerd gone while its containerd runs (rdd was down, so
// nobody tore the rest down) is a leftover too.
func TestInspectStopsPartialMachine(t *testing.T) {
	p := testPaths(t)
	d := newTestDriver(t, p, Options{})
	if _, err := d.Create(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, helper := spawnSleeper(t, "exec sleep 600", 0)
	helper.Name = "containerd"
	gone := procRecord{Name: "dockerd", PID: helper.PID, StartTicks: helper.StartTicks + 1}
	writeFakeState(t, d, state{Engine: spec.EngineMoby, PGID: helper.PID, Socket: p.DockerSocket, Procs: []procRecord{helper, gone}})
	info, err := d.Inspect(context.Background())
	if err != nil || info.Phase != vm.PhaseStopped || !strings.Contains(info.Message, "dockerd (pid") ||
		!strings.Contains(info.Message, "exited") {
		t.Fatalf("Inspect = %+v, %v; want stopped, naming the exited dockerd", info, err)
	}
	if helper.alive() {
		t.Fatal("Inspect left the helper running")
	}
}

// A process spawned by an interrupted start before it was recorded is found
// by the intent in the state file (exact command line, started after the
// recording rdd) and stopped; one that started before is left alone.
func TestInspectStopsUnrecordedSpawn(t *testing.T) {
	p := testPaths(t)
	d := newTestDriver(t, p, Options{})
	if _, err := d.Create(context.Background()); err != nil {
		t.Fatal(err)
	}
	argv := []string{"/bin/sh", "-c", "sleep 600; :", "rdd-stray-" + filepath.Base(p.Home)}
	_, stray := spawnSleeper(t, argv[2]+` "$0"`, 0) // another command line: never a match
	cmd, rec, err := spawn(argv[0], argv[1:], filepath.Join(t.TempDir(), "stray.log"), 0)
	if err != nil {
		t.Fatal(err)
	}
	reaped := make(chan struct{})
	go func() { _ = cmd.Wait(); close(reaped) }() // reap it as init would
	t.Cleanup(func() { _ = syscall.Kill(-rec.PID, syscall.SIGKILL); <-reaped })

	// Started before the recording rdd: not ours.
	writeFakeState(t, d, state{Engine: spec.EngineContainerd, Spawning: &spawnIntent{Argv: argv, NotBefore: rec.StartTicks + 1}})
	if info, err := d.Inspect(context.Background()); err != nil || info.Phase != vm.PhaseStopped || !rec.alive() {
		t.Fatalf("Inspect = %+v, %v, alive %v; want stopped and the process left alone", info, err, rec.alive())
	}

	writeFakeState(t, d, state{Engine: spec.EngineContainerd, Spawning: &spawnIntent{Argv: argv, NotBefore: rec.StartTicks}})
	info, err := d.Inspect(context.Background())
	if err != nil || info.Phase != vm.PhaseStopped || !strings.Contains(info.Message, "runs unrecorded") {
		t.Fatalf("Inspect = %+v, %v; want stopped, naming the unrecorded process", info, err)
	}
	eventually(t, 5*time.Second, "the unrecorded process is gone", func() bool { return !rec.alive() })
	if !stray.alive() {
		t.Fatal("a process with another command line was killed")
	}
	if fileExists(d.l.stateFile) {
		t.Fatal("state file left behind")
	}
}

// A whole machine whose engine does not accept connections and is past
// acceptGrace is broken at once, without waiting for a probe timeout; Stop
// cleans it up.
func TestInspectUnansweringEngineIsBroken(t *testing.T) {
	p := testPaths(t)
	d := newTestDriver(t, p, Options{})
	d.acceptGrace = 0
	if _, err := d.Create(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, ctrd := spawnSleeper(t, "exec sleep 600", 0)
	ctrd.Name = "containerd"
	_, dockerd := spawnSleeper(t, "exec sleep 600", ctrd.PID)
	dockerd.Name = "dockerd"
	writeFakeState(t, d, state{Engine: spec.EngineMoby, PGID: ctrd.PID, Socket: p.DockerSocket, Procs: []procRecord{ctrd, dockerd}})
	start := time.Now()
	info, err := d.Inspect(context.Background())
	if err != nil || info.Phase != vm.PhaseBroken || !strings.Contains(info.Message, "does not accept connections") {
		t.Fatalf("Inspect = %+v, %v; want broken, not accepting connections", info, err)
	}
	if took := time.Since(start); took >= d.inspectProbe {
		t.Errorf("Inspect took %s, as long as a probe of a busy engine", took)
	}
	if err := d.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if ctrd.alive() || dockerd.alive() {
		t.Fatal("Stop left processes of the broken machine")
	}
}

// crashDuringStart runs the stand-in daemon (main_test.go) with the hold
// hook at point, waits until the state file shows that point reached, and
// kills the stand-in with SIGKILL: an rdd that died during Start.
func crashDuringStart(t *testing.T, p paths.Paths, point string, procs int) state {
	t.Helper()
	d := New(p, nil, Options{})
	daemon := exec.Command(os.Args[0])
	daemon.Env = append(os.Environ(), daemonHomeEnv+"="+p.Home, testHoldEnv+"="+point)
	var stderr strings.Builder
	daemon.Stderr = &stderr
	stdin, err := daemon.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	if err := daemon.Start(); err != nil {
		t.Fatal(err)
	}
	var st state
	eventually(t, engineDeadline, "the stand-in daemon reaches "+point, func() bool {
		var ok bool
		st, ok, _ = readState(d.l.stateFile)
		if point == "dockerd-spawned" { // only dockerd's intent is recorded
			return ok && st.Spawning != nil && len(st.Procs) == procs && len(st.strays()) == 1
		}
		if !ok || st.Spawning != nil || len(st.Procs) != procs || len(st.live()) != procs {
			return false
		}
		// Hold "containerd" is after containerd answered.
		return point != "containerd" || containerdReady(context.Background(), d.l.ctrdSock) == nil
	})
	_ = daemon.Process.Kill()
	_ = daemon.Wait()
	return st
}

// mountsUnder counts the mount points at or below dir.
func mountsUnder(t *testing.T, dir string) int {
	t.Helper()
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fs := strings.Fields(sc.Text()); len(fs) > 4 {
			if mp := mounts.Unescape(fs[4]); mp == dir || strings.HasPrefix(mp, dir+"/") {
				n++
			}
		}
	}
	return n
}

// startFrom starts the engine with a new Driver (a new daemon), which must
// succeed promptly and leave exactly the two engine processes running.
func startFrom(t *testing.T, p paths.Paths, what string) (*Driver, vm.Info) {
	t.Helper()
	d := newTestDriver(t, p, Options{})
	ctx := startCtx(t)
	start := time.Now()
	info, err := d.Start(ctx, mobyCfg)
	if err != nil || info.Phase != vm.PhaseRunning {
		t.Fatalf("Start from %s = %+v, %v", what, info, err)
	}
	t.Logf("Start from %s took %s", what, time.Since(start).Round(time.Millisecond))
	if err := pingDocker(ctx, p.DockerSocket); err != nil {
		t.Fatalf("/_ping after Start from %s: %v", what, err)
	}
	if n := len(processesMentioning(p.Home)); n != 2 {
		t.Fatalf("after Start from %s: %d processes mention %s, want containerd and dockerd", what, n, p.Home)
	}
	return d, info
}

// rdd killed right after spawning dockerd, before recording it, and then
// containerd gone too while no rdd ran: the next driver finds dockerd by
// its spawn intent and stops it, instead of starting a second one beside it.
func TestUnrecordedDockerdIsStopped(t *testing.T) {
	requireBinary(t, "dockerd", "docker.io")
	requireBinary(t, "containerd", "containerd")
	t.Parallel()
	p := testPaths(t)
	st := crashDuringStart(t, p, "dockerd-spawned", 1)
	strays := st.strays()
	if len(strays) != 1 || strays[0].Name != "dockerd" {
		t.Fatalf("unrecorded processes after the crash = %+v, want the one dockerd", strays)
	}
	dockerd, ctrd := strays[0], st.Procs[0]
	t.Cleanup(func() { dockerd.signal(syscall.SIGKILL) })
	ctrd.signal(syscall.SIGKILL)
	eventually(t, 10*time.Second, "containerd is gone", func() bool { return !ctrd.alive() })

	d := New(p, nil, Options{})
	defer d.Close()
	info, err := d.Inspect(startCtx(t))
	if err != nil || info.Phase != vm.PhaseStopped {
		t.Fatalf("Inspect = %+v, %v; want stopped", info, err)
	}
	eventually(t, 10*time.Second, "the unrecorded dockerd is gone", func() bool { return !dockerd.alive() })
	if n := mountsUnder(t, p.Home); n != 0 {
		t.Errorf("%d mounts left under %s", n, p.Home)
	}
}

// TestStartFromLeftovers interrupts real starts (containerd and dockerd) at
// each point a crash can hit and checks that a new driver probes each
// process in its own protocol, cleans up and starts at once.
func TestStartFromLeftovers(t *testing.T) {
	requireBinary(t, "dockerd", "docker.io")
	requireBinary(t, "containerd", "containerd")
	t.Parallel()
	p := testPaths(t)

	// containerd answered, dockerd never spawned.
	half := crashDuringStart(t, p, "containerd", 1)
	ctrd := half.Procs[0]
	probe := New(p, nil, Options{})
	ctx := startCtx(t)
	if v, err := probeContainerd(ctx, probe.l.ctrdSock); err != nil || v == "" {
		t.Fatalf("probeContainerd on a real containerd = %q, %v", v, err)
	}
	if err := pingDocker(ctx, probe.l.ctrdSock); err == nil {
		t.Fatal("a Docker _ping to containerd's gRPC socket succeeded")
	}
	start := time.Now()
	info, err := probe.Inspect(ctx)
	if err != nil || info.Phase != vm.PhaseStopped || !strings.Contains(info.Message, "dockerd was never started") {
		t.Fatalf("Inspect of a half-started engine = %+v, %v", info, err)
	}
	t.Logf("Inspect of the half-started engine took %s: %s", time.Since(start).Round(time.Millisecond), info.Message)
	if ctrd.alive() {
		t.Fatal("Inspect left the half-started containerd running")
	}
	_ = probe.Close()
	crashDuringStart(t, p, "containerd", 1)
	d, info := startFrom(t, p, "a half-started engine")
	mountsRunning := mountsUnder(t, p.Home)

	// dockerd spawned, not yet answering when rdd died: its start is
	// finished, not restarted.
	if err := d.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	whole := crashDuringStart(t, p, "dockerd", 2)
	adopter, info := startFrom(t, p, "an engine whose start was interrupted after dockerd")
	if info.PID != whole.Procs[1].PID {
		t.Errorf("Start replaced dockerd %d by %d instead of adopting it", whole.Procs[1].PID, info.PID)
	}

	// dockerd SIGKILLed while no rdd ran: containerd runs on, the data
	// root's mounts leak; a new driver stops containerd and unmounts.
	_ = adopter.Close() // the daemon is gone: nobody tears containerd down
	st := readTestState(t, d)
	if err := syscall.Kill(st.Procs[1].PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "dockerd is gone", func() bool { return !st.Procs[1].alive() })
	if mountsUnder(t, p.Home) == 0 {
		t.Log("dockerd left no mounts behind to clean up")
	}
	restarted, _ := startFrom(t, p, "a containerd without its dockerd")
	if n := mountsUnder(t, p.Home); n != mountsRunning {
		t.Errorf("%d mounts under %s after the restart, %d after the first start: leaked mounts", n, p.Home, mountsRunning)
	}

	// Only stale files and a leaked mount: a whole engine killed at once.
	_ = restarted.Close()
	for _, rec := range readTestState(t, d).Procs {
		rec.signal(syscall.SIGKILL)
	}
	leak := filepath.Join(d.l.dataRoot, "leak")
	if err := os.MkdirAll(leak, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", leak, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the engine is gone", func() bool { return len(processesMentioning(p.Home)) == 0 })
	startFrom(t, p, "stale files and a leaked mount")
	if n := mountsUnder(t, p.Home); n != mountsRunning {
		t.Errorf("%d mounts under %s after the start, want %d", n, p.Home, mountsRunning)
	}

	// An unreadable state file: broken until Start replaces it.
	d2 := newTestDriver(t, p, Options{})
	if err := d2.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(d.l.stateFile, []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if info, err := d2.Inspect(ctx); err != nil || info.Phase != vm.PhaseBroken {
		t.Fatalf("Inspect with an unreadable state = %+v, %v; want broken", info, err)
	}
	d3, _ := startFrom(t, p, "an unreadable state file")
	if err := d3.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(processesMentioning(p.Home)); n != 0 || mountsUnder(t, p.Home) != 0 {
		t.Fatalf("after Stop: %d processes, %d mounts", n, mountsUnder(t, p.Home))
	}
}
