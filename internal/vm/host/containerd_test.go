package host

import (
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rdd-project/rdd/internal/spec"
	"github.com/rdd-project/rdd/internal/vm"
)

// TestContainerdEngine starts the containerd engine, re-adopts it from a new
// Driver and stops it through that one.
func TestContainerdEngine(t *testing.T) {
	requireBinary(t, "containerd", "containerd")
	t.Parallel()
	p := testPaths(t)
	d := newTestDriver(t, p, Options{})
	ctx := startCtx(t)
	cfg := vm.Config{Engine: spec.EngineContainerd}

	if _, err := d.Create(ctx); err != nil {
		t.Fatal(err)
	}
	info, err := d.Start(ctx, cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	st := readTestState(t, d)
	if len(st.Procs) != 1 || st.Procs[0].Name != "containerd" || info.PID != st.Procs[0].PID || st.PGID != info.PID {
		t.Fatalf("Start = %+v, state %+v", info, st)
	}
	if err := dialSocket(ctx, d.l.ctrdSock); err != nil {
		t.Fatalf("containerd socket: %v", err)
	}
	if !strings.HasPrefix(d.l.ctrdSock, p.ShortDir+"/") {
		t.Fatalf("containerd socket %s is not under %s", d.l.ctrdSock, p.ShortDir)
	}
	if fi, err := os.Stat(d.l.ctrdRoot); err != nil || !fi.IsDir() {
		t.Fatalf("containerd root %s: %v", d.l.ctrdRoot, err)
	}
	assertNoTCPListeners(t, st.PGID)

	d2 := newTestDriver(t, p, Options{})
	info2, err := d2.Inspect(ctx)
	if err != nil || info2.Phase != vm.PhaseRunning || info2.PID != info.PID {
		t.Fatalf("Inspect by a new driver = %+v, %v; want running pid %d", info2, err, info.PID)
	}
	// Inspect and Exited are read from other goroutines while Stop runs.
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for !isClosed(info2.Exited) {
				if _, err := d2.Inspect(ctx); err != nil {
					t.Errorf("concurrent Inspect: %v", err)
					return
				}
			}
		})
	}
	if err := d2.Stop(ctx); err != nil {
		t.Fatalf("Stop (adopted): %v", err)
	}
	wg.Wait()
	if !isClosed(info2.Exited) {
		t.Fatal("Exited of the adopting driver open after Stop")
	}
	waitClosed(t, info.Exited, 10*time.Second, "Exited of the starting driver after Stop")
	if m := groupMembers(st.PGID); len(m) > 0 || fileExists(d.l.ctrdSock) {
		t.Fatalf("after Stop: group members %v, socket exists %v", m, fileExists(d.l.ctrdSock))
	}
	if info, err := d.Inspect(ctx); err != nil || info.Phase != vm.PhaseStopped {
		t.Fatalf("Inspect after Stop = %+v, %v; want stopped", info, err)
	}
}
