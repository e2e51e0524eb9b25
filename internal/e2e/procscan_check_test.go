package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rdd-project/rdd/internal/spec"
)

// TestOnlyEngineOf covers the check behind the chaos test's "no stray
// process": the rows are what /proc showed. The fork row is the failure of
// RDD_CHAOS_SEED=1795998303142257842, round 16: a daemon killed after sets,
// the next one re-adopted dockerd 26976 and reported Settled at once while
// its engine watcher reconnected, and the GET /info of that reconnection
// had dockerd fork 27144 (parent 26976, running, 50 ms old) to run
// runc --version; before its exec it showed dockerd's own command line.
func TestOnlyEngineOf(t *testing.T) {
	const home = "/tmp/rdd-e2e-1"
	ctrd := []byte("/usr/bin/containerd\x00--config\x00" + home + "/.rd2/run/containerd.toml\x00")
	dockerd := []byte("/usr/sbin/dockerd\x00--config-file\x00" + home + "/.rd2/run/dockerd.json\x00")
	p := func(pid, ppid int, cmdline []byte) procInfo {
		return procInfo{PID: pid, PPID: ppid, PGID: 100, State: 'S', Cmdline: cmdline}
	}
	for _, tc := range []struct {
		name   string
		ps     []procInfo
		engine spec.EngineName
		pid    int
		ok     bool
	}{
		{"moby", []procInfo{p(100, 1, ctrd), p(101, 1, dockerd)}, spec.EngineMoby, 101, true},
		{"moby, dockerd forking a helper", []procInfo{p(100, 1, ctrd), p(101, 1, dockerd), p(150, 101, dockerd)}, spec.EngineMoby, 101, true},
		{"moby, containerd forking a helper", []procInfo{p(100, 1, ctrd), p(101, 1, dockerd), p(150, 100, ctrd)}, spec.EngineMoby, 101, true},
		{"containerd", []procInfo{p(100, 1, ctrd)}, spec.EngineContainerd, 100, true},
		{"containerd forking a helper", []procInfo{p(100, 1, ctrd), p(150, 100, ctrd)}, spec.EngineContainerd, 100, true},

		{"a second dockerd, orphaned", []procInfo{p(100, 1, ctrd), p(101, 1, dockerd), p(150, 1, dockerd)}, spec.EngineMoby, 101, false},
		{"a second dockerd, rdd's child", []procInfo{p(100, 1, ctrd), p(101, 1, dockerd), p(150, 90, dockerd)}, spec.EngineMoby, 101, false},
		{"a second dockerd, the engine's is not it", []procInfo{p(100, 1, ctrd), p(150, 1, dockerd)}, spec.EngineMoby, 101, false},
		{"a second containerd", []procInfo{p(100, 1, ctrd), p(101, 1, dockerd), p(150, 1, ctrd)}, spec.EngineMoby, 101, false},
		{"containerd's child with dockerd's command line", []procInfo{p(100, 1, ctrd), p(101, 1, dockerd), p(150, 100, dockerd)}, spec.EngineMoby, 101, false},
		{"a dockerd left from moby", []procInfo{p(100, 1, ctrd), p(101, 1, dockerd)}, spec.EngineContainerd, 100, false},
		{"no containerd", []procInfo{p(101, 1, dockerd)}, spec.EngineMoby, 101, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := onlyEngineOf(tc.ps, tc.engine, tc.pid)
			if (err == nil) != tc.ok {
				t.Errorf("onlyEngineOf = %v, want ok %v", err, tc.ok)
			}
		})
	}
}

// TestUnexecedForksOfRealProcesses reads a real fork that does not exec
// from /proc: sh runs the subshell ( read x < fifo ) in a forked child that
// keeps sh's command line while it waits for the fifo.
func TestUnexecedForksOfRealProcesses(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	sh := exec.Command("sh", "-c", "(read x < "+fifo+"); exit 0")
	if err := sh.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		// Opening the fifo for writing releases the subshell's read.
		if w, err := os.OpenFile(fifo, os.O_WRONLY, 0); err == nil {
			_, _ = w.WriteString("go\n")
			_ = w.Close()
		}
		if err := sh.Wait(); err != nil {
			t.Errorf("sh: %v", err)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	var ps []procInfo
	for ps = scanProcs(dir); len(ps) < 2; ps = scanProcs(dir) {
		select {
		case <-ctx.Done():
			t.Fatalf("the subshell did not show up: %v", ps)
		case <-tick.C:
		}
	}
	procs, forks := unexecedForks(ps)
	if len(procs) != 1 || procs[0].PID != sh.Process.Pid || len(forks) != 1 || forks[0].PPID != sh.Process.Pid {
		t.Fatalf("sh %d: processes %v, forks %v; want sh alone, and its subshell as its fork", sh.Process.Pid, procs, forks)
	}
	if !strings.Contains(forks[0].String(), fifo) {
		t.Errorf("fork described as %q, without its command line", forks[0].String())
	}
}
