package svc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rdd-project/rdd/internal/paths"
)

// The test binary doubles as a fake daemon when RDD_SVC_TEST_DAEMON is set:
//
//	serve     write the pid file, listen on the socket, exit 0 on SIGINT
//	crash     print "boom" on stderr and exit 3
//	silent    write the pid file, never listen, exit 0 on SIGINT
//	stubborn  write the pid file, listen, ignore SIGINT and SIGTERM
//	exclusive as serve, after taking the event log's flock as the store does
//	          (exit 1 when another holds it) and, with RDD_SVC_TEST_GATE set,
//	          waiting for that file to exist
func TestMain(m *testing.M) {
	if mode := os.Getenv("RDD_SVC_TEST_DAEMON"); mode != "" {
		os.Exit(fakeDaemon(mode))
	}
	os.Exit(m.Run())
}

func fakeDaemon(mode string) int {
	if mode == "crash" {
		fmt.Fprintln(os.Stderr, "boom")
		return 3
	}
	if mode == "exclusive" {
		if code := holdEventLog(); code != 0 {
			return code
		}
	}
	sigs := make(chan os.Signal, 1)
	if mode == "stubborn" {
		signal.Ignore(syscall.SIGINT, syscall.SIGTERM)
	} else {
		signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	}
	pidFile := os.Getenv("RDD_SVC_TEST_PIDFILE")
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o600); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if mode != "silent" {
		ln, err := net.Listen("unix", os.Getenv("RDD_SVC_TEST_SOCKET"))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer ln.Close()
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
	}
	fmt.Println("fake daemon serving")
	if mode == "stubborn" {
		select {}
	}
	<-sigs
	os.Remove(pidFile)
	return 0
}

func testPaths(t *testing.T) paths.Paths {
	t.Helper()
	home, err := os.MkdirTemp("", "svc")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(home) })
	p, err := paths.Resolve("t", home, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// dialHealthz is healthy when something accepts connections on the socket.
func dialHealthz(p paths.Paths) func(context.Context) error {
	return func(ctx context.Context) error {
		var d net.Dialer
		c, err := d.DialContext(ctx, "unix", p.Socket)
		if err != nil {
			return err
		}
		return c.Close()
	}
}

func startOptions(t *testing.T, p paths.Paths, mode string) StartOptions {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return StartOptions{
		Paths:   p,
		Command: []string{exe},
		Env: append(os.Environ(), "RDD_SVC_TEST_DAEMON="+mode,
			"RDD_SVC_TEST_PIDFILE="+p.PIDFile, "RDD_SVC_TEST_SOCKET="+p.Socket),
		Healthz: dialHealthz(p),
		Getenv:  func(string) string { return "" },
	}
}

// startFake starts a fake daemon in mode for p and fails the test unless it
// serves; the returned ctx bounds the test.
func startFake(t *testing.T, p paths.Paths, mode string) (context.Context, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	pid, err := start(t, ctx, startOptions(t, p, mode))
	if err != nil {
		t.Fatal(err)
	}
	return ctx, pid
}

// start is Start that kills the spawned fake daemon when the test ends.
func start(t *testing.T, ctx context.Context, o StartOptions) (int, error) {
	t.Helper()
	pid, err := Start(ctx, o)
	if pid != 0 {
		t.Cleanup(func() {
			// Only kill what is still our fake daemon: a reaped pid may be reused.
			env, _ := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
			if strings.Contains(string(env), "RDD_SVC_TEST_PIDFILE="+o.Paths.PIDFile+"\x00") {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		})
	}
	return pid, err
}

func TestStartStop(t *testing.T) {
	p := testPaths(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	spawned, err := start(t, ctx, startOptions(t, p, "serve"))
	if err != nil || spawned == 0 {
		t.Fatalf("Start = %v, %v; want a spawned daemon", spawned, err)
	}
	st, err := Inspect(p)
	if err != nil || !st.Running || st.PID != spawned || st.Created {
		t.Fatalf("Inspect after start = %+v, %v; want running, not created (no event log)", st, err)
	}
	if b, _ := os.ReadFile(p.DaemonStdoutLog); !strings.Contains(string(b), "fake daemon serving") {
		t.Errorf("stdout log = %q, want the daemon's output", b)
	}
	if spawned, err := start(t, ctx, startOptions(t, p, "serve")); err != nil || spawned != 0 {
		t.Fatalf("second Start = %v, %v; want no spawn", spawned, err)
	}

	r, err := StopOrKill(ctx, p, 0)
	if err != nil || r.PID != st.PID || r.Killed {
		t.Fatalf("StopOrKill = %+v, %v; want pid %d stopped", r, err, st.PID)
	}
	if Alive(st.PID) {
		t.Errorf("pid %d still alive after Stop", st.PID)
	}
	if _, err := os.Stat(p.PIDFile); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pid file still there after Stop: %v", err)
	}
	if r, err := StopOrKill(ctx, p, 0); err != nil || r.PID != 0 {
		t.Errorf("StopOrKill with no daemon = %+v, %v; want nothing stopped", r, err)
	}
}

func TestStartReportsEarlyExit(t *testing.T) {
	p := testPaths(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := start(t, ctx, startOptions(t, p, "crash"))
	if err == nil {
		t.Fatal("Start of a crashing daemon succeeded")
	}
	for _, want := range []string{"exited before it served", "exit status 3", "boom", "see " + p.DaemonStderrLog} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		t.Error("an early exit is not a deadline")
	}
}

func TestStartDeadline(t *testing.T) {
	p := testPaths(t)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := start(t, ctx, startOptions(t, p, "silent"))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Start of a daemon that never serves = %v, want a deadline", err)
	}
	if !strings.Contains(err.Error(), "see "+p.DaemonStderrLog) {
		t.Errorf("error %q lacks the log hint", err)
	}
}

func TestStopAndDeleteDeadlineKeepEverything(t *testing.T) {
	p := testPaths(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := start(t, ctx, startOptions(t, p, "stubborn")); err != nil {
		t.Fatal(err)
	}
	short, cancelShort := context.WithTimeout(ctx, time.Millisecond)
	defer cancelShort()
	if _, err := StopOrKill(short, p, time.Minute); !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "context deadline exceeded") {
		t.Fatalf("Stop of a stubborn daemon = %v, want context deadline exceeded", err)
	}
	if _, err := Delete(short, p, DeleteOptions{Grace: time.Minute}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Delete of a stubborn daemon = %v, want context deadline exceeded", err)
	}
	for _, d := range []string{p.ServiceDir, p.LogDir, p.ShortDir} {
		if _, err := os.Stat(d); err != nil {
			t.Errorf("%s is gone after a timed-out delete: %v", d, err)
		}
	}
}

func TestDelete(t *testing.T) {
	for _, keepLogs := range []bool{false, true} {
		t.Run(fmt.Sprintf("keepLogs=%t", keepLogs), func(t *testing.T) {
			p := testPaths(t)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			releases := 0
			o := DeleteOptions{KeepLogs: keepLogs, Grace: 20 * time.Second,
				Release: func(context.Context) error { releases++; return nil }}
			if r, err := Delete(ctx, p, o); err != nil || r.Existed {
				t.Fatalf("Delete of nothing = %+v, %v", r, err)
			}
			if releases != 1 {
				t.Errorf("Delete with no daemon released %d times, want once (a crashed daemon may have left its engine)", releases)
			}
			if _, err := start(t, ctx, startOptions(t, p, "serve")); err != nil {
				t.Fatal(err)
			}
			r, err := Delete(ctx, p, o)
			if err != nil || !r.Existed || r.Stop.Killed {
				t.Fatalf("Delete = %+v, %v; want a graceful stop", r, err)
			}
			if releases != 1 {
				t.Errorf("Delete after a graceful stop released again: the daemon stops its engine itself")
			}
			for _, d := range []string{p.ServiceDir, p.ShortDir} {
				if _, err := os.Stat(d); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("%s survived Delete: %v", d, err)
				}
			}
			_, err = os.Stat(p.LogDir)
			if keepLogs != (err == nil) {
				t.Errorf("log dir after Delete(keepLogs=%t): %v", keepLogs, err)
			}
		})
	}
}

// TestDeleteKillsStubborn: a daemon that ignores SIGINT and SIGTERM no
// longer keeps Delete waiting: it is killed after the grace, what it
// supervised is released, and the files go.
func TestDeleteKillsStubborn(t *testing.T) {
	p := testPaths(t)
	ctx, pid := startFake(t, p, "stubborn")
	var released bool
	r, err := Delete(ctx, p, DeleteOptions{Grace: 200 * time.Millisecond, Release: func(context.Context) error {
		released = !Alive(pid)
		return nil
	}})
	if err != nil || r.Stop.PID != pid || !r.Stop.Killed || !r.Existed {
		t.Fatalf("Delete of a stubborn daemon = %+v, %v; want pid %d killed", r, err, pid)
	}
	if !released {
		t.Error("Release was not called once the killed daemon was gone")
	}
	for _, d := range []string{p.ServiceDir, p.ShortDir, p.LogDir} {
		if _, err := os.Stat(d); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s survived Delete: %v", d, err)
		}
	}
}

// TestDeleteKeepsFilesWhenReleaseFails: the files record what may still
// run, so a failed release keeps them for the next delete.
func TestDeleteKeepsFilesWhenReleaseFails(t *testing.T) {
	p := testPaths(t)
	if err := p.EnsureDirs(); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("engine still runs")
	if _, err := Delete(context.Background(), p, DeleteOptions{Release: func(context.Context) error { return boom }}); !errors.Is(err, boom) {
		t.Fatalf("Delete = %v, want the release's error", err)
	}
	if _, err := os.Stat(p.ServiceDir); err != nil {
		t.Errorf("service dir gone although the release failed: %v", err)
	}
}

func TestRunningPIDRemovesStalePIDFile(t *testing.T) {
	p := testPaths(t)
	if err := p.EnsureDirs(); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p.PIDFile, []byte(strconv.Itoa(cmd.Process.Pid)), 0o600); err != nil {
		t.Fatal(err)
	}
	if pid, err := RunningPID(p); err != nil || pid != 0 {
		t.Fatalf("RunningPID with a dead pid = %d, %v", pid, err)
	}
	if _, err := os.Stat(p.PIDFile); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale pid file kept: %v", err)
	}
	if err := os.WriteFile(p.PIDFile, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := RunningPID(p); err == nil || !strings.Contains(err.Error(), "does not hold a process id") {
		t.Errorf("RunningPID with garbage = %v", err)
	}
}

func TestTail(t *testing.T) {
	f := filepath.Join(t.TempDir(), "log")
	if got := Tail(f, 3); got != "" {
		t.Errorf("Tail of a missing file = %q", got)
	}
	if err := os.WriteFile(f, []byte("1\n2\n3\n4\n5"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := Tail(f, 3); got != "3\n4\n5\n" {
		t.Errorf("Tail = %q", got)
	}
}
