package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rdd-project/rdd/internal/api/client"
	"github.com/rdd-project/rdd/internal/events"
	"github.com/rdd-project/rdd/internal/mounts"
	"github.com/rdd-project/rdd/internal/proc"
)

var rddBin string

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	if _, err := exec.LookPath("dockerd"); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: dockerd not found: install it with `apt-get install docker.io` (make test-deps does)")
		return 1
	}
	dir, err := os.MkdirTemp("", "rdd-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	rddBin = filepath.Join(dir, "rdd")
	build := exec.Command("go", "build", "-race", "-o", rddBin, "github.com/rdd-project/rdd/cmd/rdd")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: build rdd:", err)
		return 1
	}
	return m.Run()
}

// instance is one isolated user: its own HOME, Docker config and kubeconfig.
type instance struct {
	t    testing.TB
	home string
	env  []string
}

func newInstance(t testing.TB) *instance {
	t.Helper()
	// Short, because the sockets live under HOME/.rd2 (104-byte limit).
	home, err := os.MkdirTemp("/tmp", "rdd-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	in := &instance{t: t, home: home}
	in.env = append(filteredEnv(),
		"HOME="+home,
		"RDD_VM_DRIVER=host",
		"DOCKER_CONFIG="+filepath.Join(home, ".docker"),
		"KUBECONFIG="+filepath.Join(home, ".kube", "config"),
		"RDD_LOG_LEVEL=debug",
		// Tests never download k3s: a mirror on a closed loopback port
		// makes a missing binary fail fast instead of reaching the Internet.
		"RDD_K3S_MIRROR=http://127.0.0.1:1/no-downloads-in-tests",
	)
	t.Cleanup(func() { in.teardown() })
	return in
}

// filteredEnv drops what would leak the developer's own Docker/Kubernetes setup into a test.
func filteredEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "HOME", "DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_CONFIG", "KUBECONFIG", "RDD_INSTANCE", "RDD_VM_DRIVER", "RDD_LOG_DIR", "RDD_K3S_BIN", "RDD_K3S_MIRROR":
			continue
		}
		out = append(out, kv)
	}
	return out
}

func (in *instance) path(rel ...string) string {
	return filepath.Join(append([]string{in.home}, rel...)...)
}

// teardown stops the daemon and whatever engine it left behind, whatever
// state the test ended in, and dumps the daemon log when the test failed.
func (in *instance) teardown() {
	if in.t.Failed() {
		if b, err := os.ReadFile(in.path(".local", "state", "rancher-desktop-2", "rdd.log")); err == nil {
			lines := strings.Split(string(b), "\n")
			if len(lines) > 60 {
				lines = lines[len(lines)-60:]
			}
			in.t.Logf("daemon log tail:\n%s", strings.Join(lines, "\n"))
		}
	}
	_, _, _ = in.rdd(context.Background(), "svc", "stop", "--timeout=60s")
	if pid := in.daemonPID(); pid > 0 {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	in.killEngine()
	_ = os.RemoveAll(in.home)
}

func (in *instance) killEngine() {
	// The host driver runs the engine in its own process group; kill every
	// process whose command line mentions this HOME.
	pids, _ := proc.PIDs()
	for _, pid := range pids {
		if pid == os.Getpid() {
			continue
		}
		cmdline, err := proc.Cmdline(pid)
		if err == nil && bytes.Contains(cmdline, []byte(in.home)) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	// dockerd leaves mounts under its data root.
	_ = mounts.UnmountUnder(in.home)
}

func (in *instance) daemonPID() int {
	b, err := os.ReadFile(in.path(".local", "share", "rancher-desktop-2", "rdd.pid"))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// rdd runs the CLI and returns stdout, stderr and the exit code.
func (in *instance) rdd(ctx context.Context, args ...string) (string, string, int) {
	cmd := exec.CommandContext(ctx, rddBin, args...)
	cmd.Env = in.env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		code = -1
		errb.WriteString(err.Error())
	}
	return out.String(), errb.String(), code
}

// must runs rdd and fails the test unless it exits 0.
func (in *instance) must(args ...string) string {
	in.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, errOut, code := in.rdd(ctx, args...)
	if code != 0 {
		in.t.Fatalf("rdd %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

func (in *instance) status() events.Snapshot {
	in.t.Helper()
	var s events.Snapshot
	if err := json.Unmarshal([]byte(in.must("status", "-o", "json")), &s); err != nil {
		in.t.Fatalf("decode status: %v", err)
	}
	return s
}

func (in *instance) docker(args ...string) (string, error) {
	cmd := exec.Command("docker", args...)
	cmd.Env = in.env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// waitStatus watches the daemon's snapshots until ok holds or the deadline passes.
func (in *instance) waitStatus(timeout time.Duration, what string, ok func(events.Snapshot) bool) events.Snapshot {
	in.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	w, err := client.New(in.path(".rd2", "rdd.sock")).Watch(ctx, 0)
	if err != nil {
		in.t.Fatalf("watch while waiting for %s: %v", what, err)
	}
	defer w.Close()
	var last events.Snapshot
	for {
		s, err := w.Next()
		if err != nil {
			b, _ := json.MarshalIndent(last, "", "  ")
			in.t.Fatalf("waiting for %s: %v; last status:\n%s", what, err, b)
		}
		last = s
		if ok(s) {
			return s
		}
	}
}

func cond(s events.Snapshot, t events.ConditionType) events.Condition {
	c, _ := s.Condition(t)
	return c
}

func condIs(s events.Snapshot, t events.ConditionType, status events.ConditionStatus, reason string) bool {
	c, ok := s.Condition(t)
	return ok && c.Status == status && c.Reason == reason
}

// eventsJSON returns the daemon's log in the export format.
func (in *instance) eventsJSON() []events.Envelope {
	in.t.Helper()
	var out []events.Envelope
	for _, line := range strings.Split(strings.TrimSpace(in.must("events", "-o", "json")), "\n") {
		if line == "" {
			continue
		}
		e, err := events.Unmarshal([]byte(line))
		if err != nil {
			in.t.Fatalf("decode event line %q: %v", line, err)
		}
		out = append(out, e)
	}
	return out
}

func transitions(envs []events.Envelope, m events.Machine) []events.Transition {
	var out []events.Transition
	for _, e := range envs {
		if e.Type != events.TypeTransition {
			continue
		}
		p, err := events.Decode(e)
		if err != nil {
			continue
		}
		if tr := p.(*events.Transition); tr.Machine == m {
			out = append(out, *tr)
		}
	}
	return out
}
