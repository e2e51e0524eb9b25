package host

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/rdd-project/rdd/internal/spec"
	"github.com/rdd-project/rdd/internal/vm"
)

const engineDeadline = 90 * time.Second // generous: the CPUs are shared

var mobyCfg = vm.Config{Engine: spec.EngineMoby}

func startCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), engineDeadline)
	t.Cleanup(cancel)
	return ctx
}

// TestMobyLifecycle walks one instance through create, start, re-adoption by
// a new Driver (a daemon restart), stop of an adopted machine, a crash of
// dockerd, restart and delete.
func TestMobyLifecycle(t *testing.T) {
	requireBinary(t, "dockerd", "docker.io")
	requireBinary(t, "containerd", "containerd")
	requireBinary(t, "docker", "docker.io (the docker CLI)")
	t.Parallel()
	p := testPaths(t)
	d := newTestDriver(t, p, Options{})
	ctx := startCtx(t)

	info, err := d.Inspect(ctx)
	if err != nil || info.Phase != vm.PhaseAbsent {
		t.Fatalf("Inspect before Create = %+v, %v; want absent", info, err)
	}
	if adopted, err := d.Create(ctx); err != nil || adopted {
		t.Fatalf("first Create = %v, %v; want false, nil", adopted, err)
	}
	if adopted, err := d.Create(ctx); err != nil || !adopted {
		t.Fatalf("second Create = %v, %v; want true, nil", adopted, err)
	}
	for _, dir := range []string{p.ShortDir, d.l.runDir} {
		if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
			t.Fatalf("%s: %v, %v; want mode 0700", dir, fi, err)
		}
	}
	if info, err := d.Inspect(ctx); err != nil || info.Phase != vm.PhaseStopped {
		t.Fatalf("Inspect after Create = %+v, %v; want stopped", info, err)
	}

	// Start.
	info, err = d.Start(ctx, mobyCfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	if info.Phase != vm.PhaseRunning || info.PID <= 0 || info.TemplateHash != mobyCfg.Hash() || info.Exited == nil {
		t.Fatalf("Start = %+v", info)
	}
	pid1, exited1 := info.PID, info.Exited
	st := readTestState(t, d)
	if len(st.Procs) != 2 || st.Procs[1].Name != "dockerd" || st.Procs[1].PID != pid1 || st.Procs[0].Name != "containerd" {
		t.Fatalf("state procs = %+v", st.Procs)
	}
	if err := pingDocker(ctx, p.DockerSocket); err != nil {
		t.Fatalf("/_ping: %v", err)
	}
	out, err := exec.CommandContext(ctx, "docker", "-H", "unix://"+p.DockerSocket, "info", "--format", "{{.DockerRootDir}} {{.ServerVersion}}").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), d.l.dockerData+" ") {
		t.Fatalf("docker info: %v: %s", err, out)
	}
	assertNoTCPListeners(t, st.PGID)
	if info, err := d.Inspect(ctx); err != nil || info.Phase != vm.PhaseRunning || info.PID != pid1 || info.Exited != exited1 {
		t.Fatalf("Inspect = %+v, %v; want running pid %d with the same Exited", info, err, pid1)
	}

	// A socket that does not answer makes the machine broken.
	d.inspectProbe = 300 * time.Millisecond
	d.acceptGrace = 0
	if err := os.Rename(p.DockerSocket, p.DockerSocket+".away"); err != nil {
		t.Fatal(err)
	}
	info, err = d.Inspect(ctx)
	if err != nil || info.Phase != vm.PhaseBroken || !strings.Contains(info.Message, "does not answer") {
		t.Fatalf("Inspect without socket = %+v, %v; want broken, does not answer", info, err)
	}
	if err := os.Rename(p.DockerSocket+".away", p.DockerSocket); err != nil {
		t.Fatal(err)
	}

	// A new Driver (the daemon restarted) re-adopts the same process.
	d2 := newTestDriver(t, p, Options{})
	info, err = d2.Inspect(ctx)
	if err != nil || info.Phase != vm.PhaseRunning || info.PID != pid1 || info.TemplateHash != mobyCfg.Hash() {
		t.Fatalf("Inspect by a new driver = %+v, %v; want running pid %d", info, err, pid1)
	}
	exited2 := info.Exited
	if info, err := d2.Start(ctx, mobyCfg); err != nil || info.PID != pid1 {
		t.Fatalf("Start while running = %+v, %v; want the same pid %d", info, err, pid1)
	}
	// Kubernetes runs beside the engine: a config that differs only there
	// adopts the running engine; another engine is another machine.
	withKube := vm.Config{Engine: spec.EngineMoby, KubernetesEnabled: true}
	if info, err := d2.Start(ctx, withKube); err != nil || info.PID != pid1 {
		t.Fatalf("Start with Kubernetes enabled = %+v, %v; want the running engine (pid %d) adopted", info, err, pid1)
	}
	other := vm.Config{Engine: spec.EngineContainerd}
	if _, err := d2.Start(ctx, other); !errors.Is(err, ErrOtherConfig) {
		t.Fatalf("Start with another engine: %v; want ErrOtherConfig", err)
	}
	if isClosed(exited1) || isClosed(exited2) {
		t.Fatal("Exited closed while dockerd runs")
	}

	// Stop through the adopting driver.
	if err := d2.Stop(ctx); err != nil {
		t.Fatalf("Stop (adopted): %v", err)
	}
	if m := groupMembers(st.PGID); len(m) > 0 {
		t.Fatalf("process group %d still has %v after Stop", st.PGID, m)
	}
	if !isClosed(exited2) {
		t.Fatal("Exited of the adopting driver open after Stop returned")
	}
	waitClosed(t, exited1, 10*time.Second, "Exited of the starting driver after Stop")
	for _, f := range []string{p.DockerSocket, d.l.stateFile, d.l.ctrdSock} {
		if fileExists(f) {
			t.Errorf("%s still exists after Stop", f)
		}
	}
	if info, err := d.Inspect(ctx); err != nil || info.Phase != vm.PhaseStopped {
		t.Fatalf("Inspect after Stop = %+v, %v; want stopped", info, err)
	}
	if err := d2.Stop(ctx); err != nil {
		t.Fatalf("second Stop: %v", err)
	}

	// Start again, then crash dockerd.
	info, err = d.Start(ctx, mobyCfg)
	if err != nil {
		t.Fatalf("Start after Stop: %v", err)
	}
	if info.PID == pid1 {
		t.Fatalf("Start after Stop reused pid %d", pid1)
	}
	pid2, st2 := info.PID, readTestState(t, d)
	if err := syscall.Kill(pid2, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, info.Exited, 20*time.Second, "Exited after kill -9 dockerd")
	if m := groupMembers(st2.PGID); len(m) > 0 {
		t.Fatalf("group %d still has %v after dockerd crashed and Exited closed", st2.PGID, m)
	}
	if info, err := d.Inspect(ctx); err != nil || info.Phase != vm.PhaseStopped {
		t.Fatalf("Inspect after crash = %+v, %v; want stopped", info, err)
	}
	if fileExists(d.l.stateFile) {
		t.Fatal("stale state file kept after Inspect found the engine gone")
	}

	// Start again after the crash; a third driver re-adopts, sees the crash.
	info, err = d.Start(ctx, mobyCfg)
	if err != nil {
		t.Fatalf("Start after crash: %v", err)
	}
	pid3 := info.PID
	if pid3 == pid2 {
		t.Fatalf("Start after crash reused pid %d", pid2)
	}
	d3 := New(p, zaptest.NewLogger(t), Options{})
	d3.usePidfd = false // cover the /proc polling fallback
	t.Cleanup(func() { _ = d3.Close() })
	info3, err := d3.Inspect(ctx)
	if err != nil || info3.Phase != vm.PhaseRunning || info3.PID != pid3 {
		t.Fatalf("Inspect by a third driver = %+v, %v; want running pid %d", info3, err, pid3)
	}
	if err := syscall.Kill(pid3, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, info3.Exited, 20*time.Second, "Exited of an adopted dockerd after kill -9 (polling watcher)")
	waitClosed(t, info.Exited, 20*time.Second, "Exited of the started dockerd after kill -9")

	// Delete removes what Create made.
	if _, err := d.Start(ctx, mobyCfg); err != nil {
		t.Fatalf("Start before Delete: %v", err)
	}
	if err := d.Delete(ctx); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	for _, f := range []string{d.l.dataRoot, d.l.runDir, p.DockerSocket} {
		if fileExists(f) {
			t.Errorf("%s exists after Delete", f)
		}
	}
	if info, err := d.Inspect(ctx); err != nil || info.Phase != vm.PhaseAbsent {
		t.Fatalf("Inspect after Delete = %+v, %v; want absent", info, err)
	}
	if len(processesMentioning(p.Home)) > 0 {
		t.Fatalf("processes %v outlived Delete", processesMentioning(p.Home))
	}
}

func TestStartMissingBinary(t *testing.T) {
	requireBinary(t, "containerd", "containerd")
	t.Parallel()
	p := testPaths(t)
	d := newTestDriver(t, p, Options{Dockerd: "/nonexistent"})
	_, err := d.Start(startCtx(t), mobyCfg)
	if err == nil || !strings.Contains(err.Error(), "/nonexistent") {
		t.Fatalf("Start = %v; want an error naming /nonexistent", err)
	}
	if fileExists(d.l.stateFile) || len(processesMentioning(p.Home)) > 0 {
		t.Fatal("a failed Start left state or processes behind")
	}
}

func TestStartEngineExitsAtOnce(t *testing.T) {
	requireBinary(t, "dockerd", "docker.io")
	requireBinary(t, "containerd", "containerd")
	t.Parallel()
	p := testPaths(t)
	d := newTestDriver(t, p, Options{ExtraArgs: []string{"--no-such-flag"}})
	ctx := startCtx(t)
	_, err := d.Start(ctx, mobyCfg)
	if err == nil || !strings.Contains(err.Error(), "see "+d.l.dockerLog) || !strings.Contains(err.Error(), "no-such-flag") {
		t.Fatalf("Start = %v; want an error quoting the log and naming %s", err, d.l.dockerLog)
	}
	if fileExists(d.l.stateFile) || len(processesMentioning(p.Home)) > 0 {
		t.Fatalf("a failed Start left state or processes %v behind", processesMentioning(p.Home))
	}
	if info, err := d.Inspect(ctx); err != nil || info.Phase != vm.PhaseStopped {
		t.Fatalf("Inspect after failed Start = %+v, %v; want stopped", info, err)
	}
}

func TestStartDeadline(t *testing.T) {
	t.Parallel()
	p := testPaths(t)
	// A "containerd" that runs but never opens its socket.
	fake := p.Home + "/fake-containerd"
	if err := os.WriteFile(fake, []byte("#!/bin/sh\necho fake containerd starting\nexec sleep 600\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	d := newTestDriver(t, p, Options{Containerd: fake})
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	_, err := d.Start(ctx, vm.Config{Engine: spec.EngineContainerd})
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "see "+d.l.ctrdLog) ||
		!strings.Contains(err.Error(), "fake containerd starting") {
		t.Fatalf("Start = %v; want a deadline error quoting and naming %s", err, d.l.ctrdLog)
	}
	if fileExists(d.l.stateFile) || len(processesMentioning(p.Home)) > 0 {
		t.Fatalf("a timed-out Start left state or processes %v behind", processesMentioning(p.Home))
	}
}
