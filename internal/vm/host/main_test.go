package host

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rdd-project/rdd/internal/proc"

	"github.com/rdd-project/rdd/internal/paths"
	"github.com/rdd-project/rdd/internal/vm"
)

// daemonHomeEnv makes the test binary act as a stand-in rdd daemon: it
// starts the moby engine in that HOME, prints "started PID", and then waits
// on stdin until it is killed.
const daemonHomeEnv = "RDD_HOST_TEST_DAEMON_HOME"

func TestMain(m *testing.M) {
	if home := os.Getenv(daemonHomeEnv); home != "" {
		os.Exit(runStandInDaemon(home))
	}
	os.Exit(m.Run())
}

func runStandInDaemon(home string) int {
	p, err := paths.Resolve("2", home, func(string) string { return "" })
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), engineDeadline)
	defer cancel()
	info, err := New(p, nil, Options{}).Start(ctx, mobyCfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Printf("started %d\n", info.PID)
	_, _ = io.Copy(io.Discard, os.Stdin)
	return 0
}

// TestSurvivesDaemonKill starts the engine from a separate process, kills
// that process with SIGKILL (an rdd crash), and checks that the engine kept
// running and that a new Driver re-adopts and stops it.
func TestSurvivesDaemonKill(t *testing.T) {
	requireBinary(t, "dockerd", "docker.io")
	requireBinary(t, "containerd", "containerd")
	t.Parallel()
	p := testPaths(t)
	d := newTestDriver(t, p, Options{})
	ctx := startCtx(t)

	var stderr strings.Builder
	daemon := exec.Command(os.Args[0])
	daemon.Env = append(os.Environ(), daemonHomeEnv+"="+p.Home)
	daemon.Stderr = &stderr
	stdin, err := daemon.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	stdout, err := daemon.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := daemon.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		lines <- line
	}()
	var line string
	select {
	case line = <-lines:
	case <-ctx.Done():
	}
	_ = daemon.Process.Kill() // SIGKILL: the daemon crashes
	_ = daemon.Wait()
	pid, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, "started ")))
	if err != nil {
		t.Fatalf("stand-in daemon said %q (%v); stderr:\n%s", line, err, stderr.String())
	}

	info, err := d.Inspect(ctx)
	if err != nil || info.Phase != vm.PhaseRunning || info.PID != pid {
		t.Fatalf("Inspect after the daemon was killed = %+v, %v; want running pid %d", info, err, pid)
	}
	if err := pingDocker(ctx, p.DockerSocket); err != nil {
		t.Fatalf("/_ping after the daemon was killed: %v", err)
	}
	pgid := readTestState(t, d).PGID
	if err := d.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	waitClosed(t, info.Exited, 10*time.Second, "Exited after Stop")
	if m := groupMembers(pgid); len(m) > 0 {
		t.Fatalf("group %d still has %v after Stop", pgid, m)
	}
	if err := syscall.Kill(pid, 0); err == nil {
		if st, err := proc.ReadStat(pid); err == nil && !st.Dead() {
			t.Fatalf("dockerd %d still runs after Stop", pid)
		}
	}
}
