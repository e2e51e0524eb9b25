package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/rdd-project/rdd/internal/kube"
	"github.com/rdd-project/rdd/internal/kube/kubetest"
)

// startTimeout bounds the stand-in's start-up (about 3 s idle; the shared
// 2-core machine runs several suites at once).
const startTimeout = 90 * time.Second

// exitTimeout bounds how long the stand-in may take to exit once told or
// once its API server died (kubetest's stop grace is 5 s per child).
const exitTimeout = 30 * time.Second

// standin is one running stand-in k3s.
type standin struct {
	cmd     *exec.Cmd
	dataDir string
	kc      string
	out     *syncBuffer
	done    chan struct{}
	err     error // Wait's result; read after done
}

// syncBuffer collects output written by exec's copying goroutines while the
// test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// freePort returns a loopback port nothing listens on right now.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startStandin runs `k3s server` with a temporary data dir and the given
// extra flags and environment; cleanup kills its process group.
func startStandin(t *testing.T, port int, env []string, extra ...string) *standin {
	t.Helper()
	return startStandinIn(t, t.TempDir(), port, env, extra...)
}

// startStandinIn is startStandin with the data dir and kubeconfig under dir.
func startStandinIn(t *testing.T, dir string, port int, env []string, extra ...string) *standin {
	t.Helper()
	bin := kubetest.K3sStandin(t)
	s := &standin{dataDir: filepath.Join(dir, "data"), kc: filepath.Join(dir, "kube", "k3s.yaml"), out: &syncBuffer{}, done: make(chan struct{})}
	args := append([]string{"server",
		"--https-listen-port", strconv.Itoa(port),
		"--bind-address=127.0.0.1",
		"-d", s.dataDir,
		"--write-kubeconfig=" + s.kc,
	}, extra...)
	s.cmd = exec.Command(bin, args...)
	s.cmd.Env = append(os.Environ(), env...)
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		s.err = s.cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(func() {
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.done
		if t.Failed() {
			t.Logf("stand-in output:\n%s", s.out.String())
		}
	})
	return s
}

// waitExit waits for the stand-in to exit and returns its exit code.
func (s *standin) waitExit(t *testing.T) int {
	t.Helper()
	select {
	case <-s.done:
	case <-time.After(exitTimeout):
		t.Fatalf("stand-in still running %s later", exitTimeout)
	}
	var ee *exec.ExitError
	if s.err != nil && !errors.As(s.err, &ee) {
		t.Fatal(s.err)
	}
	return s.cmd.ProcessState.ExitCode()
}

// waitFor polls cond until it holds, the stand-in exits or startTimeout passes.
func (s *standin) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	eventually(t, what, startTimeout, s.done, cond)
}

// eventually polls cond until it holds; it fails the test when stop closes
// first (nil: never) or timeout passes.
func eventually(t *testing.T, what string, timeout time.Duration, stop <-chan struct{}, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-stop:
			t.Fatalf("stand-in exited before %s", what)
		case <-deadline.C:
			t.Fatalf("no %s after %s", what, timeout)
		case <-tick.C:
		}
	}
}

// pids reads the children's pids from <data-dir>/standin.
func (s *standin) pids(t *testing.T) (apiserver, etcd int) {
	t.Helper()
	read := func(name string) int {
		b, err := os.ReadFile(filepath.Join(s.dataDir, "standin", name))
		if err != nil {
			t.Fatal(err)
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			t.Fatal(err)
		}
		return pid
	}
	return read("apiserver.pid"), read("etcd.pid")
}

// gone reports whether pid no longer names a live process called comm. A
// zombie is gone once its last thread has exited: a leader shows state Z
// while its other threads still tear down and hold its sockets.
func gone(pid int, comm string) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	// stat: pid (comm) state ...
	s := string(b)
	open, closing := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || closing < open || closing+2 >= len(s) {
		return true
	}
	if s[open+1:closing] != comm {
		return true
	}
	if s[closing+2] != 'Z' {
		return false
	}
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	return err != nil || len(tasks) <= 1
}

func TestServeThenSIGTERM(t *testing.T) {
	began := time.Now()
	s := startStandin(t, freePort(t), nil,
		"--write-kubeconfig-mode", "0640", "--node-name", "standin-node",
		"--disable", "traefik", "--disable=servicelb", "--docker",
		"--container-runtime-endpoint", "unix:///run/nothing.sock",
		"--disable-network-policy", "--flannel-backend=none",
		"--kube-apiserver-arg", "max-requests-inflight=100")
	s.waitFor(t, "kubeconfig", func() bool { _, err := os.Stat(s.kc); return err == nil })
	t.Logf("kubeconfig written %s after exec", time.Since(began).Round(time.Millisecond))
	fi, err := os.Stat(s.kc)
	if err != nil {
		t.Fatal(err)
	}
	if m := fi.Mode().Perm(); m != 0o640 {
		t.Errorf("kubeconfig mode %o, want 640", m)
	}
	ctx := context.Background()
	res, err := kube.ProbeFile(ctx, s.kc, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if res.Class != kube.ProbeHealthy {
		t.Fatalf("probe through the kubeconfig: %+v", res)
	}
	ep, err := kube.EndpointFromFile(s.kc)
	if err != nil {
		t.Fatal(err)
	}
	s.waitFor(t, "Ready node", func() bool {
		ok, err := kube.AnyNodeReady(ctx, ep, 10*time.Second)
		return err == nil && ok
	})
	t.Logf("node Ready %s after exec", time.Since(began).Round(time.Millisecond))

	api, etcd := s.pids(t)
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := s.waitExit(t); code != 0 {
		t.Fatalf("exit code %d after SIGTERM, want 0", code)
	}
	if !gone(api, "kube-apiserver") || !gone(etcd, "etcd") {
		t.Fatalf("children outlived the stand-in: kube-apiserver %d gone=%v, etcd %d gone=%v", api, gone(api, "kube-apiserver"), etcd, gone(etcd, "etcd"))
	}
}

func TestAPIServerKilledStandinExits(t *testing.T) {
	port := freePort(t)
	s := startStandin(t, port, []string{envNodeReady + "=false", envExtraNode + "=second"}, "--node-name=lonely")
	s.waitFor(t, "kubeconfig", func() bool { _, err := os.Stat(s.kc); return err == nil })
	rc, err := clientcmd.BuildConfigFromFlags("", s.kc)
	if err != nil {
		t.Fatal(err)
	}
	ep, err := kube.EndpointFromFile(s.kc)
	if err != nil {
		t.Fatal(err)
	}
	c, err := kubetestClient(rc)
	if err != nil {
		t.Fatal(err)
	}
	s.waitFor(t, "both nodes registered", func() bool { return countNodes(c) == 2 })
	if ok, err := kube.AnyNodeReady(context.Background(), ep, 10*time.Second); err != nil || ok {
		t.Fatalf("AnyNodeReady = %v, %v with %s=false; want false", ok, err, envNodeReady)
	}

	api, etcd := s.pids(t)
	if err := syscall.Kill(api, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if code := s.waitExit(t); code == 0 {
		t.Fatal("stand-in exited 0 after its API server died")
	}
	if !strings.Contains(s.out.String(), "apiserver exited") {
		t.Errorf("no fatal line naming the API server in:\n%s", s.out.String())
	}
	if !gone(etcd, "etcd") {
		t.Fatalf("etcd %d outlived the stand-in", etcd)
	}
}

// A SIGKILLed stand-in cannot stop its children; the parent-death signal
// must. A restart on the same data dir keeps the CA and the objects, as k3s
// does, so the kubeconfig it writes again is byte for byte the same.
func TestSIGKILLThenRestart(t *testing.T) {
	dir, port := t.TempDir(), freePort(t)
	first := startStandinIn(t, dir, port, nil, "--node-name=keeper")
	first.waitFor(t, "kubeconfig", func() bool { _, err := os.Stat(first.kc); return err == nil })
	kc1, err := os.ReadFile(first.kc)
	if err != nil {
		t.Fatal(err)
	}
	api, etcd := first.pids(t)
	if err := first.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	first.waitExit(t)
	eventually(t, "kube-apiserver and etcd gone after the stand-in's SIGKILL", exitTimeout, nil, func() bool {
		return gone(api, "kube-apiserver") && gone(etcd, "etcd")
	})
	fi1, err := os.Stat(first.kc)
	if err != nil {
		t.Fatal(err)
	}

	second := startStandinIn(t, dir, port, nil, "--node-name=keeper")
	second.waitFor(t, "kubeconfig rewritten", func() bool {
		fi, err := os.Stat(second.kc)
		return err == nil && !fi.ModTime().Equal(fi1.ModTime())
	})
	res, err := kube.ProbeFile(context.Background(), first.kc, 10*time.Second)
	if err != nil || res.Class != kube.ProbeHealthy {
		t.Fatalf("the first kubeconfig does not reach the restarted server: %+v, %v", res, err)
	}
	kc2, err := os.ReadFile(second.kc)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(kc1, kc2) {
		t.Error("restart on the same data dir wrote a different kubeconfig")
	}
}

func TestPortInUse(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	began := time.Now()
	s := startStandin(t, l.Addr().(*net.TCPAddr).Port, nil)
	if code := s.waitExit(t); code == 0 {
		t.Fatal("exit 0 with the port taken")
	}
	if out := s.out.String(); !strings.Contains(out, "bind: address already in use") || !strings.Contains(out, "level=fatal") {
		t.Fatalf("no fatal line with the listen error in:\n%s", out)
	}
	if _, err := os.Stat(s.kc); !os.IsNotExist(err) {
		t.Errorf("kubeconfig written although the server never started: %v", err)
	}
	t.Logf("failed %s after exec", time.Since(began).Round(time.Millisecond))
}

func TestCommandLine(t *testing.T) {
	bin := kubetest.K3sStandin(t)
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{"unknown flag", []string{"server", "--xyz"}, 1, "Incorrect Usage: flag provided but not defined: -xyz", `level=fatal msg="flag provided but not defined: -xyz"`},
		{"unknown flag with value", []string{"server", "--https-listen-port=1", "--xyz=3"}, 1, "Incorrect Usage: flag provided but not defined: -xyz", "level=fatal"},
		{"unknown global flag", []string{"--xyz", "server"}, 1, "Incorrect Usage: flag provided but not defined: -xyz", "level=fatal"},
		{"unknown command", []string{"serve"}, 3, "", "No help topic for 'serve'"},
		{"version", []string{"--version"}, 0, "k3s version v" + strings.TrimPrefix(version, "v") + " (standin)", ""},
		{"short version", []string{"-v"}, 0, "k3s version v", ""},
		{"bind beyond loopback", []string{"server", "--bind-address", "0.0.0.0"}, 1, "", "loopback only"},
		{"bad mode", []string{"server", "--write-kubeconfig-mode", "rw"}, 1, "", "not an octal file mode"},
		{"owned apiserver arg", []string{"server", "--kube-apiserver-arg=bind-address=0.0.0.0"}, 1, "", "sets bind-address itself"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			cmd := exec.Command(bin, tc.args...)
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			var ee *exec.ExitError
			if err != nil && !errors.As(err, &ee) {
				t.Fatal(err)
			}
			if code := cmd.ProcessState.ExitCode(); code != tc.code {
				t.Errorf("exit code %d, want %d", code, tc.code)
			}
			if !strings.Contains(stdout.String(), tc.stdout) {
				t.Errorf("stdout %q lacks %q", stdout.String(), tc.stdout)
			}
			if !strings.Contains(stderr.String(), tc.stderr) {
				t.Errorf("stderr %q lacks %q", stderr.String(), tc.stderr)
			}
		})
	}
}

func kubetestClient(rc *rest.Config) (kubernetes.Interface, error) {
	return kubernetes.NewForConfig(rc)
}

// countNodes is the number of Nodes, -1 when the list fails.
func countNodes(c kubernetes.Interface) int {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l, err := c.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return -1
	}
	return len(l.Items)
}
