package e2e

import (
	"context"
	"errors"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSvcDeleteKillsAHungDaemon: a daemon that hangs (here: stopped with
// SIGSTOP, so it neither answers nor exits) with a running engine does not
// make `rdd svc delete` wait forever. After --timeout the daemon is killed,
// the command says so, and the engine it left running is stopped: no
// process, mount, directory or docker context of the instance is left.
func TestSvcDeleteKillsAHungDaemon(t *testing.T) {
	in := newInstance(t)
	in.must("start", "--timeout=3m")
	pid := in.daemonPID()
	if pid <= 0 {
		t.Fatal("no daemon pid after rdd start")
	}
	contexts := in.path(".docker", "contexts", "meta")
	if ents, err := os.ReadDir(contexts); err != nil || len(ents) != 1 {
		t.Fatalf("the instance's docker context after rdd start: %d entries in %s, %v", len(ents), contexts, err)
	}
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatalf("stop the daemon (pid %d) with SIGSTOP: %v", pid, err)
	}
	// Let it go should the delete fail to kill it: teardown needs it.
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGCONT) })

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	began := time.Now()
	out, errOut, code := in.rdd(ctx, "svc", "delete", "--timeout=2s")
	took := time.Since(began)
	if code != 0 {
		t.Fatalf("svc delete of a hung daemon: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	t.Logf("svc delete of a hung daemon took %v", took.Round(time.Millisecond))
	if !strings.Contains(errOut, "did not exit within --timeout (2s) and was killed (SIGKILL)") {
		t.Errorf("svc delete did not say it killed the daemon; stderr:\n%s", errOut)
	}
	waitGone(t, pid)
	if procs := in.processes(); len(procs) > 0 {
		t.Errorf("processes of the instance left after svc delete killed its daemon: %v", procs)
	}
	if left := mountsUnder(t, in.home); len(left) > 0 {
		t.Errorf("mounts of the instance left after svc delete killed its daemon: %v", left)
	}
	// The App deletion that would remove the docker context never ran.
	if ents, err := os.ReadDir(contexts); err == nil && len(ents) > 0 {
		t.Errorf("the instance's docker context survived svc delete: %d entries in %s", len(ents), contexts)
	}
	for _, d := range []string{in.path(".rd2"), in.path(".local", "share", "rancher-desktop-2")} {
		if _, err := os.Stat(d); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s survived svc delete: %v", d, err)
		}
	}
}
