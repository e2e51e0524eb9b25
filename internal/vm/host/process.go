package host

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/rdd-project/rdd/internal/proc"
)

// procRecord identifies one process of the machine. PID alone is not enough:
// after the process exits the kernel may hand the number to another process,
// so StartTicks (field 22 of /proc/<pid>/stat, the start time in clock ticks
// since boot) must match as well.
type procRecord struct {
	Name       string `json:"name"` // "dockerd" or "containerd"
	PID        int    `json:"pid"`
	StartTicks uint64 `json:"startTicks"`
	Log        string `json:"log"` // the file that receives its stdout and stderr
}

// alive reports whether p still runs: its pid exists, is not a zombie and
// started at the recorded time (so it is not a reused pid).
func (p procRecord) alive() bool {
	if p.PID <= 0 {
		return false
	}
	st, err := proc.ReadStat(p.PID)
	return err == nil && !st.Dead() && st.StartTicks == p.StartTicks
}

// signal sends sig to p if p is still the recorded process.
func (p procRecord) signal(sig syscall.Signal) {
	if p.alive() {
		_ = syscall.Kill(p.PID, sig)
	}
}

// groupMembers lists the live (non-zombie) processes whose process group is
// pgid, by scanning /proc.
func groupMembers(pgid int) []int {
	if pgid <= 0 {
		return nil
	}
	all, _ := proc.PIDs()
	var pids []int
	for _, pid := range all {
		st, err := proc.ReadStat(pid)
		if err == nil && st.PGID == pgid && !st.Dead() {
			pids = append(pids, pid)
		}
	}
	return pids
}

// signalGroup sends sig to the process group pgid. It does nothing when no
// live member remains, so a reused group id is never hit long after the
// group is gone.
func signalGroup(pgid int, sig syscall.Signal) {
	if len(groupMembers(pgid)) > 0 {
		_ = syscall.Kill(-pgid, sig)
	}
}

// pollInterval is how often waits on process state re-check /proc.
const pollInterval = 50 * time.Millisecond

// waitUntil polls cond every pollInterval until it holds (true) or ctx ends
// (false).
func waitUntil(ctx context.Context, cond func() bool) bool {
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	for {
		if cond() {
			return true
		}
		select {
		case <-ctx.Done():
			return cond()
		case <-t.C:
		}
	}
}

// spawn starts a detached process: its own process group (pgid 0 makes it the
// leader of a new group, otherwise it joins pgid), stdin /dev/null, stdout and
// stderr appended to logPath, working directory /. It does not use
// exec.CommandContext: the process must outlive ctx and rdd itself.
func spawn(bin string, args []string, logPath string, pgid int) (*exec.Cmd, procRecord, error) {
	return spawnEnv(bin, args, logPath, pgid, childEnv(os.Environ()))
}

// spawnEnv is spawn with the child's environment given.
func spawnEnv(bin string, args []string, logPath string, pgid int, env []string) (*exec.Cmd, procRecord, error) {
	logf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, procRecord{}, fmt.Errorf("open log %s: %w", logPath, err)
	}
	defer logf.Close() // the child holds its own copy
	cmd := exec.Command(bin, args...)
	cmd.Dir = "/"
	cmd.Env = env
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pgid: pgid}
	if err := cmd.Start(); err != nil {
		return nil, procRecord{}, fmt.Errorf("start %s: %w", bin, err)
	}
	rec := procRecord{Name: filepath.Base(bin), PID: cmd.Process.Pid, Log: logPath}
	st, err := proc.ReadStat(rec.PID)
	if err != nil {
		// The child is unreaped, so /proc/<pid> exists unless procfs is missing.
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, procRecord{}, fmt.Errorf("read start time of %s (pid %d): %w", bin, rec.PID, err)
	}
	rec.StartTicks = st.StartTicks
	return cmd, rec, nil
}

// childEnv is the environment of engine processes: rdd's own, minus variables
// that would make the engine talk to rdd's supervisor (NOTIFY_SOCKET would
// make dockerd report readiness for rdd's systemd unit).
func childEnv(env []string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		if strings.HasPrefix(kv, "NOTIFY_SOCKET=") || strings.HasPrefix(kv, "LISTEN_FDS=") || strings.HasPrefix(kv, "LISTEN_PID=") {
			continue
		}
		out = append(out, kv)
	}
	return out
}
