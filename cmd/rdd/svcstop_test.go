package main

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestSvcStopKillsAStubbornDaemon: a daemon that ignores SIGINT and SIGTERM
// (here a process started with both ignored) no longer makes `rdd svc stop`
// wait forever: after --timeout it is killed, and the command says so.
func TestSvcStopKillsAStubbornDaemon(t *testing.T) {
	h := newHarness(t)
	if err := h.e.paths.EnsureDirs(); err != nil {
		t.Fatal(err)
	}
	// Ignored signals stay ignored across exec.
	stubborn := exec.Command("sh", "-c", "trap '' INT TERM; exec tail -f /dev/null")
	if err := stubborn.Start(); err != nil {
		t.Skipf("no sh/tail to stand in for a stubborn daemon: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = stubborn.Wait(); close(exited) }()
	t.Cleanup(func() { _ = stubborn.Process.Kill(); <-exited })
	pid := stubborn.Process.Pid
	// Signal it only once it is tail, with SIGINT and SIGTERM ignored.
	deadline := time.After(10 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !ignoresIntTerm(pid) {
		select {
		case <-deadline:
			t.Fatal("the stand-in daemon did not start ignoring SIGINT and SIGTERM")
		case <-tick.C:
		}
	}
	if err := os.WriteFile(h.e.paths.PIDFile, []byte(strconv.Itoa(pid)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	if code := h.run("svc", "stop", "--timeout=300ms"); code != 0 {
		t.Fatalf("svc stop = %d: %s", code, h.stderr)
	}
	want := "did not exit within 300ms of SIGINT and was killed (SIGKILL, pid " + strconv.Itoa(pid) + ")"
	if !strings.Contains(h.stdout.String(), want) {
		t.Errorf("svc stop said %q, want it to say %q", h.stdout, want)
	}
	<-exited
	if _, err := os.Stat(h.e.paths.PIDFile); !os.IsNotExist(err) {
		t.Errorf("pid file left after the kill: %v", err)
	}
}

// ignoresIntTerm reports whether process pid runs tail with SIGINT and
// SIGTERM ignored (SigIgn in /proc/PID/status).
func ignoresIntTerm(pid int) bool {
	comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil || strings.TrimSpace(string(comm)) != "tail" {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return false
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "SigIgn:"); ok {
			mask, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			const intTerm = 1<<(2-1) | 1<<(15-1)
			return err == nil && mask&intTerm == intTerm
		}
	}
	return false
}
