// Package limae2e boots a real VM with the lima driver, end to end: the
// rdd binary of `make build` (it carries rdd-lima), a local guest image
// (`make vm-image`), QEMU with the guest's network restricted (restrict=on),
// as an unprivileged user (Lima refuses root). Each boot takes minutes under
// software emulation, so it is opt-in: `make e2e` runs it; without
// RDD_E2E_LIMA_IMAGE every test skips.
package limae2e

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// bootTimeout bounds one boot: 144-305 s were measured under TCG here.
const bootTimeout = 20 * time.Minute

type instance struct {
	t    *testing.T
	bin  string
	home string
	env  []string
}

func newInstance(t *testing.T) *instance {
	image := os.Getenv("RDD_E2E_LIMA_IMAGE")
	if image == "" {
		t.Skip("RDD_E2E_LIMA_IMAGE is not set: run `make e2e`")
	}
	bin := os.Getenv("RDD_E2E_BIN")
	if bin == "" {
		t.Fatal("RDD_E2E_BIN must name an rdd built by `make build`")
	}
	if os.Geteuid() == 0 {
		t.Fatal("the lima driver refuses root: `make e2e` runs this test as an unprivileged user")
	}
	home, err := os.MkdirTemp("", "rdd-lima-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	accel := os.Getenv("RDD_VM_ACCEL")
	if accel == "" {
		accel = "tcg" // a nested /dev/kvm does not boot stock kernels (docs/lima.md)
	}
	in := &instance{t: t, bin: bin, home: home, env: []string{
		"HOME=" + home, "PATH=" + os.Getenv("PATH"), "USER=" + os.Getenv("USER"),
		"RDD_VM_DRIVER=lima", "RDD_VM_IMAGE=" + image, "RDD_VM_ACCEL=" + accel,
		"RDD_VM_RESTRICT_NETWORK=1", "RDD_VM_DNS=10.0.2.3", "RDD_VM_MEMORY=2GiB", "RDD_VM_CPUS=2",
		"RDD_LOG_LEVEL=debug",
	}}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		_, _, _ = in.run(ctx, "svc", "delete")
		_ = exec.Command("pkill", "-KILL", "-u", strconv.Itoa(os.Getuid()), "-f", "qemu-system").Run()
		if !t.Failed() {
			_ = os.RemoveAll(home)
		} else {
			t.Logf("kept %s for a post-mortem", home)
		}
	})
	return in
}

func (in *instance) run(ctx context.Context, args ...string) (stdout, stderr string, code int) {
	cmd := exec.CommandContext(ctx, in.bin, args...)
	cmd.Env = in.env
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		code = -1
		e.WriteString(err.Error())
	}
	return o.String(), e.String(), code
}

func (in *instance) must(timeout time.Duration, args ...string) string {
	in.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out, errOut, code := in.run(ctx, args...)
	if code != 0 {
		in.t.Fatalf("rdd %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, lastLines(errOut, 30))
	}
	return out
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

type condition struct {
	Type, Status, Reason, Message string
}

type status struct {
	Status struct {
		Conditions []condition `json:"conditions"`
	} `json:"status"`
	Machines struct {
		VM struct {
			State string `json:"state"`
			Facts struct {
				PID          int `json:"pid"`
				RestartCount int `json:"restartCount"`
			} `json:"facts"`
		} `json:"vm"`
	} `json:"machines"`
	Daemon struct {
		PID int `json:"pid"`
	} `json:"daemon"`
}

func (s status) cond(typ string) condition {
	for _, c := range s.Status.Conditions {
		if c.Type == typ {
			return c
		}
	}
	return condition{}
}

func (in *instance) status() status {
	in.t.Helper()
	var s status
	if err := json.Unmarshal([]byte(in.must(time.Minute, "status", "-o", "json")), &s); err != nil {
		in.t.Fatal(err)
	}
	return s
}

func (in *instance) wantCond(s status, typ, st, reason string) {
	in.t.Helper()
	if c := s.cond(typ); c.Status != st || c.Reason != reason {
		in.t.Fatalf("%s=%s/%s (%s), want %s/%s", typ, c.Status, c.Reason, c.Message, st, reason)
	}
}

// waitFor polls status until ok says so or the boot timeout passes.
func (in *instance) waitFor(what string, ok func(status) bool) status {
	in.t.Helper()
	deadline := time.Now().Add(bootTimeout)
	for {
		s := in.status()
		if ok(s) {
			return s
		}
		if time.Now().After(deadline) {
			in.t.Fatalf("%s: not within %s; last status %+v", what, bootTimeout, s.Status.Conditions)
		}
		waitTick()
	}
}

// waitTick paces the polls; a boot takes minutes, so a poll a second costs
// nothing and reacts at once.
func waitTick() {
	t := time.NewTimer(time.Second)
	<-t.C
}

func (in *instance) limaDir() string {
	out := in.must(time.Minute, "svc", "paths", "-o", "json")
	var p map[string]string
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		in.t.Fatal(err)
	}
	return filepath.Join(p["lima_home"], "rd")
}

func pidFile(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return pid
}

func alive(pid int) bool { return syscall.Kill(pid, 0) == nil }

// busyboxTar is a root filesystem with the host's static busybox: an image
// made with `docker import`, so nothing is pulled.
func busyboxTar(t *testing.T) []byte {
	t.Helper()
	var bb string
	for _, p := range []string{"/bin/busybox", "/usr/bin/busybox"} {
		if _, err := os.Stat(p); err == nil {
			bb = p
		}
	}
	if bb == "" {
		t.Fatal("busybox-static is not installed")
	}
	body, err := os.ReadFile(bb)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: "bin/busybox", Mode: 0o755, Size: int64(len(body))}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write(body); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func (in *instance) docker(stdin io.Reader, args ...string) string {
	in.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker", append([]string{"-H", "unix://" + filepath.Join(in.shortDir(), "docker.sock")}, args...)...)
	cmd.Env = in.env
	cmd.Stdin = stdin
	out, err := cmd.CombinedOutput()
	if err != nil {
		in.t.Fatalf("docker %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func (in *instance) shortDir() string {
	out := in.must(time.Minute, "svc", "paths", "-o", "json")
	var p map[string]string
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		in.t.Fatal(err)
	}
	return p["short_dir"]
}

// watchSettledReasons follows `rdd status --watch` from now on; the
// returned function stops it and lists the Settled reasons it saw.
func (in *instance) watchSettledReasons() func() string {
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, in.bin, "status", "--watch", "-o", "json")
	cmd.Env = in.env
	out, err := cmd.StdoutPipe()
	if err != nil {
		in.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		in.t.Fatal(err)
	}
	seen := make(chan []string, 1)
	go func() {
		var reasons []string
		dec := json.NewDecoder(out)
		for {
			var s status
			if dec.Decode(&s) != nil {
				break
			}
			if r := s.cond("Settled").Reason; len(reasons) == 0 || reasons[len(reasons)-1] != r {
				reasons = append(reasons, r)
			}
		}
		seen <- reasons
	}()
	return func() string {
		cancel()
		_ = cmd.Wait()
		return strings.Join(<-seen, " -> ")
	}
}

// One VM, one test: every step needs the VM the previous one left (a boot
// costs minutes).
func TestLimaVM(t *testing.T) {
	in := newInstance(t)

	// rdd start returns at Settled=True with the VM started and Docker
	// answering over the forwarded socket.
	began := time.Now()
	in.must(bootTimeout, "start", "--timeout", bootTimeout.String())
	t.Logf("MEASURE rdd start -> Settled: %.1f s", time.Since(began).Seconds())
	s := in.status()
	in.wantCond(s, "Settled", "True", "Settled")
	in.wantCond(s, "Running", "True", "Started")
	in.wantCond(s, "ContainerEngineReady", "True", "Connected")
	dir := in.limaDir()
	qemuPID := pidFile(t, filepath.Join(dir, "qemu.pid"))
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", qemuPID))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(cmdline, []byte("restrict=on")) {
		t.Fatalf("QEMU runs without restrict=on: the guest could reach outside: %q", cmdline)
	}

	in.docker(bytes.NewReader(busyboxTar(t)), "import", "-", "rdd-e2e-busybox")
	if out := in.docker(nil, "run", "--rm", "--network", "none", "rdd-e2e-busybox", "/bin/busybox", "echo", "hello from the VM"); !strings.Contains(out, "hello from the VM") {
		t.Fatalf("docker run printed %q", out)
	}

	// A daemon SIGKILL: the VM keeps running and is re-adopted, same QEMU.
	daemonPID := s.Daemon.PID
	if err := syscall.Kill(daemonPID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	in.must(time.Minute, "svc", "start")
	s = in.waitFor("Settled after the daemon restart", func(s status) bool { return s.cond("Settled").Status == "True" })
	if now := pidFile(t, filepath.Join(dir, "qemu.pid")); now != qemuPID || !alive(qemuPID) {
		t.Fatalf("QEMU pid %d after the daemon restart, want the same %d still running (no reboot)", now, qemuPID)
	}
	if ev := in.must(time.Minute, "events", "-o", "json"); !strings.Contains(ev, "re-adopted") {
		t.Fatalf("no Recovered event says the VM was re-adopted:\n%s", lastLines(ev, 10))
	}
	t.Logf("daemon SIGKILL: VM re-adopted, QEMU pid %d kept", qemuPID)

	// A host agent SIGKILL: restart count +1, Settled again by itself.
	restarts := s.Machines.VM.Facts.RestartCount
	haPID := pidFile(t, filepath.Join(dir, "ha.pid"))
	if err := syscall.Kill(haPID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	began = time.Now()
	s = in.waitFor("Settled after the host agent died", func(s status) bool {
		return s.Machines.VM.Facts.RestartCount == restarts+1 && s.cond("Settled").Status == "True"
	})
	t.Logf("MEASURE host agent SIGKILL -> Settled again: %.1f s (restart count %d)", time.Since(began).Seconds(), restarts+1)

	// An engine switch rewrites the template: Settled passes
	// ApplyingTemplate, the VM restarts once.
	restarts = s.Machines.VM.Facts.RestartCount
	reasons := in.watchSettledReasons()
	began = time.Now()
	in.must(bootTimeout, "set", "containerEngine.name=containerd", "--timeout", bootTimeout.String())
	t.Logf("MEASURE engine switch -> Settled: %.1f s", time.Since(began).Seconds())
	if seen := reasons(); !strings.Contains(seen, "ApplyingTemplate") {
		t.Fatalf("Settled never said ApplyingTemplate during the engine switch; it said %s", seen)
	}
	s = in.status()
	in.wantCond(s, "ContainerEngineReady", "True", "NotApplicable")
	if got := s.Machines.VM.Facts.RestartCount; got != restarts+1 {
		t.Fatalf("restart count %d after the engine switch, want %d (one restart)", got, restarts+1)
	}

	// rdd stop: Stopped, and no QEMU left.
	began = time.Now()
	in.must(5*time.Minute, "stop")
	t.Logf("MEASURE rdd stop: %.1f s", time.Since(began).Seconds())
	in.wantCond(in.status(), "Running", "False", "Stopped")
	if out, _ := exec.Command("pgrep", "-u", strconv.Itoa(os.Getuid()), "-f", "qemu-system").Output(); len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("QEMU still runs after rdd stop: pids %s", out)
	}
}
