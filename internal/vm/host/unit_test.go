package host

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rdd-project/rdd/internal/proc"

	"go.uber.org/zap/zaptest"

	"github.com/rdd-project/rdd/internal/spec"
	"github.com/rdd-project/rdd/internal/vm"
)

func TestAliveChecksStartTime(t *testing.T) {
	st, err := proc.ReadStat(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	self := procRecord{PID: os.Getpid(), StartTicks: st.StartTicks}
	if !self.alive() {
		t.Fatal("this process is not alive")
	}
	reused := procRecord{PID: os.Getpid(), StartTicks: st.StartTicks + 1}
	if reused.alive() {
		t.Fatal("a pid with another start time counts as alive")
	}
	if (procRecord{PID: 0}).alive() {
		t.Fatal("pid 0 counts as alive")
	}
}

// spawnSleeper starts `sh -c script` detached (in group pgid, 0 = new group)
// and kills its group at the end of the test.
func spawnSleeper(t *testing.T, script string, pgid int) (*exec.Cmd, procRecord) {
	t.Helper()
	cmd, rec, err := spawn("/bin/sh", []string{"-c", script}, filepath.Join(t.TempDir(), "sleeper.log"), pgid)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-rec.PID, syscall.SIGKILL)
		_ = syscall.Kill(rec.PID, syscall.SIGKILL)
	})
	return cmd, rec
}

func TestWatchMachine(t *testing.T) {
	for _, tc := range []struct {
		name     string
		pidfd    bool
		children bool
	}{
		{"pidfd child", true, true},
		{"pidfd adopted", true, false},
		{"polling adopted", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := New(testPaths(t), zaptest.NewLogger(t), Options{})
			d.usePidfd = tc.pidfd
			defer d.Close()
			// A two-process machine like containerd + dockerd: when the
			// engine dies, the watcher must stop the helper before it
			// closes exited.
			cmd1, helper := spawnSleeper(t, "exec sleep 600", 0)
			cmd2, engine := spawnSleeper(t, "exec sleep 600", helper.PID)
			st := state{PGID: helper.PID, Procs: []procRecord{helper, engine}}
			cmds := map[int]*exec.Cmd{}
			if tc.children {
				cmds = map[int]*exec.Cmd{helper.PID: cmd1, engine.PID: cmd2}
			}
			m, err := d.track(st, cmds)
			if err != nil {
				t.Fatal(err)
			}
			if isClosed(m.exited) {
				t.Fatal("exited closed while everything runs")
			}
			if err := syscall.Kill(engine.PID, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			waitClosed(t, m.exited, 15*time.Second, "exited after the engine was killed")
			if helper.alive() {
				t.Fatal("exited closed while the helper still runs")
			}
			waitClosed(t, m.done, 5*time.Second, "watcher done")
			if tc.children && (cmd1.ProcessState == nil || cmd2.ProcessState == nil) {
				t.Fatal("children were not reaped")
			}
		})
	}
}

func TestCloseStopsWatchers(t *testing.T) {
	before := runtime.NumGoroutine()
	for _, pidfd := range []bool{true, false} {
		d := New(testPaths(t), zaptest.NewLogger(t), Options{})
		d.usePidfd = pidfd
		_, rec := spawnSleeper(t, "exec sleep 600", 0)
		m, err := d.track(state{PGID: rec.PID, Procs: []procRecord{rec}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
		if !isClosed(m.done) {
			t.Fatal("Close returned before the watcher stopped")
		}
		if isClosed(m.exited) || !rec.alive() {
			t.Fatal("Close stopped the process or closed Exited")
		}
		if _, err := d.Inspect(context.Background()); !errors.Is(err, ErrClosed) {
			t.Fatalf("Inspect after Close = %v; want ErrClosed", err)
		}
		if err := d.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
	}
	eventually(t, 5*time.Second, "goroutines back to the count before the watchers", func() bool {
		return runtime.NumGoroutine() <= before
	})
}

// TestStopEscalates stops a fake machine whose processes ignore SIGTERM:
// Stop must SIGKILL the whole group when ctx ends.
func TestStopEscalates(t *testing.T) {
	p := testPaths(t)
	d := newTestDriver(t, p, Options{})
	if _, err := d.Create(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The leader ignores SIGTERM and respawns its child when it dies; the
	// child also ignores SIGTERM.
	cmd, rec := spawnSleeper(t, `trap "" TERM; while :; do sleep 600; done`, 0)
	st := state{Engine: spec.EngineContainerd, PGID: rec.PID, Socket: d.l.ctrdSock, Procs: []procRecord{rec}}
	if err := writeState(d.l.stateFile, st); err != nil {
		t.Fatal(err)
	}
	if _, err := d.track(st, map[int]*exec.Cmd{rec.PID: cmd}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the sleep child runs", func() bool { return len(groupMembers(rec.PID)) == 2 })
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := d.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if m := groupMembers(rec.PID); len(m) > 0 {
		t.Fatalf("group still has %v after Stop", m)
	}
	if time.Since(start) > killWait {
		t.Fatalf("Stop took %s", time.Since(start))
	}
	if fileExists(d.l.stateFile) {
		t.Fatal("state file kept after Stop")
	}
	// Inspect of the fake machine would probe a socket nobody serves; with
	// the state gone it is stopped.
	if info, err := d.Inspect(context.Background()); err != nil || info.Phase != vm.PhaseStopped {
		t.Fatalf("Inspect = %+v, %v", info, err)
	}
}

func TestStateRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "engine.json")
	if _, ok, err := readState(path); ok || err != nil {
		t.Fatalf("missing file: ok=%v err=%v", ok, err)
	}
	want := state{Engine: spec.EngineMoby, TemplateHash: "h", StartedAt: time.Unix(1, 2).UTC(), PGID: 7, Socket: "/s",
		Procs: []procRecord{{Name: "containerd", PID: 7, StartTicks: 1, Log: "/l"}}}
	if err := writeState(path, want); err != nil {
		t.Fatal(err)
	}
	got, ok, err := readState(path)
	if err != nil || !ok || !got.sameProcs(want) || got.TemplateHash != "h" || !got.StartedAt.Equal(want.StartedAt) || got.V != stateVersion {
		t.Fatalf("readState = %+v, %v, %v", got, ok, err)
	}
	if err := os.WriteFile(path, []byte(`{"v": 99}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := readState(path); err == nil {
		t.Fatal("a newer state version was accepted")
	}
}

func TestTailLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.log")
	var b strings.Builder
	for i := range 50 {
		b.WriteString(strings.Repeat("x", i) + "\n")
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	got := strings.Split(tailLog(path, 3), "\n")
	if len(got) != 3 || got[2] != strings.Repeat("x", 49) {
		t.Fatalf("tailLog = %q", got)
	}
	if !strings.Contains(tailLog(filepath.Join(t.TempDir(), "none"), 3), "cannot read") {
		t.Fatal("tailLog of a missing file does not say so")
	}
}

func TestContainerdConfigStaysInInstance(t *testing.T) {
	p := testPaths(t)
	l := newLayout(p)
	conf, err := l.containerdConfig(p.Name)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"io.containerd.grpc.v1.cri"`, `address = "` + p.ShortDir + `/containerd.sock"`, "[metrics]\n  address = \"\""} {
		if !strings.Contains(conf, want) {
			t.Errorf("config lacks %q:\n%s", want, conf)
		}
	}
	for _, line := range strings.Split(conf, "\n") {
		if i := strings.Index(line, `"/`); i >= 0 && !strings.Contains(line, p.Home) {
			t.Errorf("path outside the instance: %s", line)
		}
	}
	if _, err := tomlString("a\nb"); err == nil {
		t.Error("tomlString accepted a newline")
	}
	if s, _ := tomlString(`a"b\c`); s != `"a\"b\\c"` {
		t.Errorf("tomlString = %s", s)
	}
}

func TestStartRejectsUnknownEngine(t *testing.T) {
	d := newTestDriver(t, testPaths(t), Options{})
	if _, err := d.Start(context.Background(), vm.Config{Engine: "podman"}); err == nil || !strings.Contains(err.Error(), "podman") {
		t.Fatalf("Start = %v; want an unsupported-engine error", err)
	}
}
