package host

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rdd-project/rdd/internal/mounts"
	"github.com/rdd-project/rdd/internal/proc"

	"go.uber.org/zap/zaptest"

	"github.com/rdd-project/rdd/internal/paths"
)

// requireBinary fails the test (never skips) when name is not on PATH.
func requireBinary(t *testing.T, name, pkg string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Fatalf("%s is not on PATH; this test needs it: apt-get install %s (%v)", name, pkg, err)
	}
}

// testPaths makes a fake HOME under /tmp (short, for the 104-byte socket
// limit) and resolves instance "2" in it. Cleanup kills every process whose
// command line mentions that HOME (engines, shims) and removes it, even when
// the test fails half-way.
func testPaths(t *testing.T) paths.Paths {
	t.Helper()
	home, err := os.MkdirTemp("/tmp", "rdd-h-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := mounts.UnmountUnder(home); err != nil {
			t.Logf("unmount under %s: %v", home, err)
		}
		if err := os.RemoveAll(home); err != nil {
			t.Logf("remove %s: %v", home, err)
		}
	})
	p, err := paths.Resolve("2", home, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// newTestDriver returns a driver whose processes are killed and whose
// watchers are closed at the end of the test. Register it after testPaths.
func newTestDriver(t *testing.T, p paths.Paths, opts Options) *Driver {
	t.Helper()
	d := New(p, zaptest.NewLogger(t), opts)
	// Cleanups run last-registered first: kill while the watchers still
	// reap their children, then close, then remove the bridge and NAT rules a
	// test that failed half way would otherwise leave on the host.
	t.Cleanup(func() { d.teardownNetwork(context.Background()) })
	t.Cleanup(func() { _ = d.Close() })
	t.Cleanup(func() { killProcessesMentioning(t, p.Home) })
	return d
}

// processesMentioning lists live processes whose command line contains s.
// Zombies have an empty command line and are not listed.
func processesMentioning(s string) []int {
	all, _ := proc.PIDs()
	var pids []int
	for _, pid := range all {
		if pid == os.Getpid() {
			continue
		}
		b, err := proc.Cmdline(pid)
		if err == nil && strings.Contains(string(b), s) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// killProcessesMentioning kills on every poll, not once: a process listed
// a moment ago may have forked a child (a k3s its helper) that the first
// list missed and that its parent's death orphans.
func killProcessesMentioning(t *testing.T, s string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if !waitUntil(ctx, func() bool {
		pids := processesMentioning(s)
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		return len(pids) == 0
	}) {
		t.Errorf("processes %v still mention %s after SIGKILL", processesMentioning(s), s)
	}
}

// waitClosed fails the test unless ch is closed within d.
func waitClosed(t *testing.T, ch <-chan struct{}, d time.Duration, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(d):
		t.Fatalf("%s: not closed within %s", what, d)
	}
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// eventually polls cond until it holds or d passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	if !waitUntil(ctx, cond) {
		t.Fatalf("%s: not true within %s", what, d)
	}
}

// tcpListeners returns the TCP sockets (inode -> local address) in LISTEN
// state of this network namespace.
func tcpListeners(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		fh, err := os.Open(f)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			fs := strings.Fields(sc.Text())
			if len(fs) > 9 && fs[3] == "0A" { // 0A = TCP_LISTEN
				out[fs[9]] = fs[1]
			}
		}
		fh.Close()
	}
	return out
}

// assertNoTCPListeners fails when any process of the group pgid holds a
// listening TCP socket.
func assertNoTCPListeners(t *testing.T, pgid int) {
	t.Helper()
	listen := tcpListeners(t)
	for _, pid := range groupMembers(pgid) {
		fds, _ := os.ReadDir(filepath.Join("/proc", strconv.Itoa(pid), "fd"))
		for _, fd := range fds {
			l, err := os.Readlink(filepath.Join("/proc", strconv.Itoa(pid), "fd", fd.Name()))
			if err != nil || !strings.HasPrefix(l, "socket:[") {
				continue
			}
			inode := strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")
			if addr, ok := listen[inode]; ok {
				t.Errorf("pid %d listens on TCP %s", pid, addr)
			}
		}
	}
}

// readTestState reads the driver's state file or fails.
func readTestState(t *testing.T, d *Driver) state {
	t.Helper()
	st, ok, err := readState(d.l.stateFile)
	if err != nil || !ok {
		t.Fatalf("state file %s: ok=%v err=%v", d.l.stateFile, ok, err)
	}
	return st
}

func fileExists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}
