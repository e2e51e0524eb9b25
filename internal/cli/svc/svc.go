// Package svc manages the rdd daemon process of one instance for the CLI:
// whether it is created and running, spawning it detached (`rdd svc start`
// and the implicit start of App commands), stopping it with SIGINT (then
// SIGKILL when it does not exit in time), deleting the instance
// directories, and rotating and tailing its logs.
//
// The daemon writes D/rdd.pid while it runs; this package only reads it and
// removes it when it names a process that no longer exists.
package svc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rdd-project/rdd/internal/logfile"

	"github.com/rdd-project/rdd/internal/proc"

	"golang.org/x/sys/unix"

	"github.com/rdd-project/rdd/internal/paths"
)

// PollInterval is how often Start and StopOrKill re-check the daemon.
const PollInterval = 100 * time.Millisecond

// DefaultStartTimeout is the implicit start limit of behavior.md §9.1.
const DefaultStartTimeout = 90 * time.Second

// State is what `rdd svc status` reports.
type State struct {
	Instance string `json:"instance"`
	Name     string `json:"name"`
	// Created is true when the instance's event log exists.
	Created bool `json:"created"`
	// Running is true when D/rdd.pid names a live process.
	Running bool   `json:"running"`
	PID     int    `json:"pid,omitempty"`
	Socket  string `json:"socket"`
	// Serving is true when GET /v1/healthz answered (set by the caller).
	Serving bool `json:"serving"`
}

// Inspect reports whether the instance is created and its daemon running. A
// PID file naming a dead process is removed.
func Inspect(p paths.Paths) (State, error) {
	st := State{Instance: p.Instance, Name: p.Name, Socket: p.Socket}
	if _, err := os.Stat(p.EventLog); err == nil {
		st.Created = true
	} else if !errors.Is(err, fs.ErrNotExist) {
		return st, fmt.Errorf("inspect %s: %w", p.EventLog, err)
	}
	pid, err := RunningPID(p)
	if err != nil {
		return st, err
	}
	st.PID, st.Running = pid, pid != 0
	return st, nil
}

// RunningPID returns the PID in D/rdd.pid when that process is alive, else 0.
// A stale PID file is removed.
func RunningPID(p paths.Paths) (int, error) {
	b, err := os.ReadFile(p.PIDFile)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read pid file: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("pid file %s does not hold a process id (%q); remove it if no rdd daemon runs", p.PIDFile, bytes.TrimSpace(b))
	}
	if Alive(pid) {
		return pid, nil
	}
	if err := os.Remove(p.PIDFile); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return 0, fmt.Errorf("remove stale pid file: %w", err)
	}
	return 0, nil
}

// Alive reports whether process pid exists (signal 0; EPERM counts as alive).
// A zombie is dead: a SIGKILLed daemon stays one until something reaps it,
// and some init processes (containers, sandboxes) never do.
func Alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	if err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	return !deadOrZombie(pid)
}

// deadOrZombie reads the process state; a process reaped between the
// signal check and the read is dead too.
func deadOrZombie(pid int) bool {
	st, err := proc.ReadStat(pid)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ESRCH) {
		return true
	}
	return err == nil && st.Dead()
}

// StartOptions configure Start.
type StartOptions struct {
	Paths paths.Paths
	// Command is the daemon's argv, e.g. {exe, "--instance", "2", "daemon"}.
	Command []string
	// Env is the daemon's environment; nil means this process's environment.
	Env []string
	// Healthz answers nil once the daemon serves.
	Healthz func(ctx context.Context) error
	// Getenv reads RDD_KEEP_LOGS and RDD_LOG_TITLE; nil means os.Getenv.
	Getenv func(string) string
}

// Start makes sure the daemon serves, spawning it detached (its own session,
// stdio to L/rdd.stdout.log and L/rdd.stderr.log) unless a daemon process
// already runs, and waits until Healthz answers or ctx ends. It returns the
// PID of the process it spawned (0 when it spawned none), also on failure,
// when the process may still be running. A deadline error wraps
// context.DeadlineExceeded; failures carry the tail of the daemon's stderr log.
//
// Concurrent Starts of one instance (two CLIs both starting it implicitly)
// spawn at most one daemon: the first takes the start lock and spawns, the
// others wait for the lock and then find the daemon serving. Should a daemon
// started some other way win the event log anyway, Start waits for that one.
func Start(ctx context.Context, o StartOptions) (spawnedPID int, err error) {
	if probe(ctx, o.Healthz) == nil {
		return 0, nil
	}
	release, err := lockStart(ctx, o.Paths)
	if err != nil {
		return 0, err
	}
	defer release()
	if probe(ctx, o.Healthz) == nil {
		return 0, nil // started by the CLI that held the lock
	}
	pid, err := RunningPID(o.Paths)
	if err != nil {
		return 0, err
	}
	if pid != 0 {
		if err := waitHealthy(ctx, o, nil); err != nil {
			return 0, fmt.Errorf("wait for rdd daemon (pid %d) to serve on %s: %w", pid, o.Paths.Socket, err)
		}
		return 0, nil
	}
	pid, exited, err := spawn(o)
	if err != nil {
		return 0, err
	}
	if err := waitHealthy(ctx, o, exited); err != nil {
		if !Alive(pid) && eventLogHeld(o.Paths.EventLog) {
			// Ours lost the event log to a daemon started another way
			// (`rdd daemon` in a terminal, an older rdd): use that one.
			if err := waitHealthy(ctx, o, nil); err != nil {
				return pid, fmt.Errorf("wait for the rdd daemon that holds %s to serve on %s: %w", o.Paths.EventLog, o.Paths.Socket, err)
			}
			return pid, nil
		}
		return pid, fmt.Errorf("start rdd daemon: %w%s", err, logHint(o.Paths))
	}
	return pid, nil
}

// spawn starts the daemon and returns its PID and a channel that receives
// its exit error.
func spawn(o StartOptions) (int, <-chan error, error) {
	if len(o.Command) == 0 {
		return 0, nil, errors.New("start rdd daemon: no command")
	}
	p := o.Paths
	if err := p.EnsureDirs(); err != nil {
		return 0, nil, err
	}
	getenv := o.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	keepAll := getenv("RDD_KEEP_LOGS") != ""
	title := getenv("RDD_LOG_TITLE")
	stdout, err := logfile.Create(p.DaemonStdoutLog, keepAll, title)
	if err != nil {
		return 0, nil, err
	}
	defer stdout.Close()
	stderr, err := logfile.Create(p.DaemonStderrLog, keepAll, title)
	if err != nil {
		return 0, nil, err
	}
	defer stderr.Close()
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return 0, nil, fmt.Errorf("start rdd daemon: %w", err)
	}
	defer devnull.Close()

	cmd := exec.Command(o.Command[0], o.Command[1:]...)
	cmd.Env = o.Env
	cmd.Stdin, cmd.Stdout, cmd.Stderr = devnull, stdout, stderr
	cmd.Dir = "/"
	// A new session: the daemon outlives this command and the terminal's
	// signals (Ctrl-C in the shell that ran `rdd set`) do not reach it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return 0, nil, fmt.Errorf("start rdd daemon %s: %w", o.Command[0], err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	return cmd.Process.Pid, exited, nil
}

// waitHealthy polls Healthz every PollInterval until it answers, ctx ends or
// the spawned process exits (exited may be nil).
func waitHealthy(ctx context.Context, o StartOptions, exited <-chan error) error {
	t := time.NewTicker(PollInterval)
	defer t.Stop()
	for {
		if probe(ctx, o.Healthz) == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-exited:
			if err == nil {
				return errors.New("the daemon exited before it served")
			}
			return fmt.Errorf("the daemon exited before it served (%w)", err)
		case <-t.C:
		}
	}
}

// probeTimeout bounds one health probe, so a hung daemon does not use up
// the whole start budget in one call.
const probeTimeout = 2 * time.Second

func probe(ctx context.Context, healthz func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	return healthz(ctx)
}

// logHint is the tail of the daemon's stderr log and where to read the rest.
func logHint(p paths.Paths) string {
	tail := Tail(p.DaemonStderrLog, 20)
	if tail == "" {
		return "\nsee " + p.DaemonStderrLog + " and " + p.DaemonLog
	}
	return "\n" + tail + "see " + p.DaemonStderrLog
}

// Tail returns the last n lines of the file at path ("" when it is missing or empty).
func Tail(path string, n int) string {
	s, err := logfile.Tail(path, n)
	if err != nil || s == "" {
		return ""
	}
	return s + "\n"
}

// waitExit returns once pid has exited or ctx ends. With a pidfd it wakes
// on the exit itself; without one it polls every PollInterval.
func waitExit(ctx context.Context, pid, pidfd int, havePidfd bool) error {
	if havePidfd {
		fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
		for {
			// Short slices so a cancelled ctx is noticed promptly.
			n, err := unix.Poll(fds, 50)
			if n > 0 {
				return nil
			}
			if err != nil && !errors.Is(err, unix.EINTR) {
				break // fall back to polling
			}
			if err := ctx.Err(); err != nil {
				return err
			}
		}
	}
	t := time.NewTicker(PollInterval)
	defer t.Stop()
	for Alive(pid) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

// removePIDFile removes D/rdd.pid if it still names pid (the daemon normally
// removes it itself).
func removePIDFile(p paths.Paths, pid int) error {
	b, err := os.ReadFile(p.PIDFile)
	if err != nil || strings.TrimSpace(string(b)) != strconv.Itoa(pid) {
		return nil
	}
	if err := os.Remove(p.PIDFile); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove pid file: %w", err)
	}
	return nil
}

// DeleteOptions configure Delete.
type DeleteOptions struct {
	// KeepLogs keeps L.
	KeepLogs bool
	// Grace is how long the daemon gets to exit after SIGINT before it is
	// killed (StopOrKill); 0 means no limit and no kill.
	Grace time.Duration
	// Release, when set, stops what the daemon supervised (its engine or
	// VM) and is called when no daemon stopped gracefully: one that was
	// killed, or none running (it crashed earlier). A graceful stop stops
	// them itself; after a kill nothing else would, and the files that
	// record them are about to go.
	Release func(ctx context.Context) error
}

// DeleteReport says what Delete did.
type DeleteReport struct {
	// Existed is true when anything of the instance existed.
	Existed bool
	// Stop is what stopping the daemon did.
	Stop StopReport
}

// Delete stops the daemon like StopOrKill, calls o.Release when the daemon
// did not stop gracefully, then removes L (unless o.KeepLogs), H and D.
// When ctx ends before the daemon is gone, or Release fails, nothing is
// removed: the files still record what may run, for a later delete.
func Delete(ctx context.Context, p paths.Paths, o DeleteOptions) (DeleteReport, error) {
	r, err := StopOrKill(ctx, p, o.Grace)
	rep := DeleteReport{Existed: r.PID != 0, Stop: r}
	if err != nil {
		return rep, err
	}
	if o.Release != nil && (r.PID == 0 || r.Killed) {
		if err := o.Release(ctx); err != nil {
			return rep, err
		}
	}
	dirs := []string{p.ShortDir, p.ServiceDir}
	if !o.KeepLogs {
		dirs = append(dirs, p.LogDir)
	}
	for _, d := range dirs {
		if _, err := os.Lstat(d); err == nil {
			rep.Existed = true
		}
		if err := os.RemoveAll(d); err != nil {
			return rep, fmt.Errorf("delete %s: %w", d, err)
		}
	}
	return rep, nil
}
