package main

import (
	"context"
	"errors"
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
	pid, exited := h.stubbornDaemon()

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

// TestSvcDeleteKillsAHungDaemon: a daemon that hangs on the App deletion
// and ignores SIGINT and SIGTERM no longer makes `rdd svc delete` wait
// forever: after --timeout it is killed, the command says so on stderr,
// and the instance is deleted.
func TestSvcDeleteKillsAHungDaemon(t *testing.T) {
	h := newHarness(t)
	pid, exited := h.stubbornDaemon()
	hung := make(chan struct{})
	b := &fakeBackend{snap: appAt(1), deleteApp: func(ctx context.Context) error {
		select {
		case <-ctx.Done():
		case <-hung:
		}
		return errors.New("the daemon hung")
	}}
	h.serve(b)
	t.Cleanup(func() { close(hung) }) // before the server's cleanup waits for the handler

	if code := h.run("svc", "delete", "--timeout=300ms"); code != 0 {
		t.Fatalf("svc delete = %d: %s", code, h.stderr)
	}
	for _, want := range []string{
		"the App of instance t was not deleted within --timeout (300ms)",
		"rdd daemon for instance t (pid " + strconv.Itoa(pid) + ") did not exit within --timeout (300ms) and was killed (SIGKILL)",
	} {
		if !strings.Contains(h.stderr.String(), want) {
			t.Errorf("svc delete said on stderr %q, want it to say %q", h.stderr, want)
		}
	}
	if got := h.stdout.String(); got != "instance t has been deleted\n" {
		t.Errorf("svc delete printed %q", got)
	}
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		t.Fatal("the stand-in daemon still runs after svc delete")
	}
	for _, d := range []string{h.e.paths.ServiceDir, h.e.paths.ShortDir, h.e.paths.LogDir} {
		if _, err := os.Stat(d); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s survived svc delete: %v", d, err)
		}
	}
}

// stubbornDaemon starts a stand-in daemon that ignores SIGINT and SIGTERM
// and writes its pid file. exited is closed once it has been reaped.
func (h *harness) stubbornDaemon() (pid int, exited <-chan struct{}) {
	t := h.t
	t.Helper()
	if err := h.e.paths.EnsureDirs(); err != nil {
		t.Fatal(err)
	}
	// Ignored signals stay ignored across exec.
	stubborn := exec.Command("sh", "-c", "trap '' INT TERM; exec tail -f /dev/null")
	if err := stubborn.Start(); err != nil {
		t.Skipf("no sh/tail to stand in for a stubborn daemon: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = stubborn.Wait(); close(done) }()
	t.Cleanup(func() { _ = stubborn.Process.Kill(); <-done })
	pid = stubborn.Process.Pid
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
	return pid, done
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
