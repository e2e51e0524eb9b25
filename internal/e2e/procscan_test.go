package e2e

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/rdd-project/rdd/internal/proc"
	"github.com/rdd-project/rdd/internal/spec"
)

// procInfo is one process as /proc showed it.
type procInfo struct {
	PID, PPID, PGID int
	State           byte
	StartTicks      uint64
	Cmdline         []byte // NUL-separated, as /proc/<pid>/cmdline
}

// name is the base name of argv[0].
func (p procInfo) name() string {
	argv0, _, _ := bytes.Cut(p.Cmdline, []byte{0})
	return filepath.Base(string(argv0))
}

func (p procInfo) String() string {
	age := "?"
	if a := proc.Age(p.StartTicks); a > 0 {
		age = a.Round(10 * time.Millisecond).String()
	}
	args := strings.ReplaceAll(strings.TrimRight(string(p.Cmdline), "\x00"), "\x00", " ")
	return fmt.Sprintf("%d %d %d %c %d %s %s", p.PID, p.PPID, p.PGID, p.State, p.StartTicks, age, args)
}

// scanProcs lists the processes (but this one) whose command line contains
// home, with their parent, group and start time.
func scanProcs(home string) []procInfo {
	var out []procInfo
	pids, _ := proc.PIDs()
	for _, pid := range pids {
		if pid == os.Getpid() {
			continue
		}
		cmdline, err := proc.Cmdline(pid)
		if err != nil || !bytes.Contains(cmdline, []byte(home)) {
			continue
		}
		st, err := proc.ReadStat(pid)
		if err != nil {
			continue // gone since
		}
		out = append(out, procInfo{PID: pid, PPID: st.PPID, PGID: st.PGID, State: st.State, StartTicks: st.StartTicks, Cmdline: cmdline})
	}
	return out
}

// unexecedForks splits ps into the processes and the forks of one of them
// that have not called exec yet: a child whose command line is still its
// parent's. dockerd and containerd fork to run helpers (runc --version and
// docker-init --version for every GET /info, which a reconnecting engine
// watcher sends), and between the fork and the exec the child shows the
// engine's own command line. It is part of the engine process, not a second
// engine; a second engine that rdd spawned is a child of rdd (or of init
// once that rdd died), never of the engine.
func unexecedForks(ps []procInfo) (procs, forks []procInfo) {
	byPID := make(map[int]procInfo, len(ps))
	for _, p := range ps {
		byPID[p.PID] = p
	}
	for _, p := range ps {
		if parent, ok := byPID[p.PPID]; ok && bytes.Equal(parent.Cmdline, p.Cmdline) {
			forks = append(forks, p)
			continue
		}
		procs = append(procs, p)
	}
	return procs, forks
}

// onlyEngineOf checks that ps (the processes of an instance) are exactly
// those of engine, with enginePID its engine process: one containerd and one
// dockerd (enginePID) for moby, one containerd (enginePID) alone for the
// containerd engine. A second containerd, or a dockerd left from before a
// switch, is an orphan. An engine's fork that has not exec'd yet is the
// engine's (unexecedForks).
func onlyEngineOf(ps []procInfo, engine spec.EngineName, enginePID int) error {
	procs, _ := unexecedForks(ps)
	byName := map[string][]int{}
	for _, p := range procs {
		byName[p.name()] = append(byName[p.name()], p.PID)
	}
	ok := len(byName["containerd"]) == 1
	if engine == spec.EngineContainerd {
		ok = ok && len(byName) == 1 && byName["containerd"][0] == enginePID
	} else {
		ok = ok && len(byName) == 2 && len(byName["dockerd"]) == 1 && byName["dockerd"][0] == enginePID
	}
	if !ok {
		return fmt.Errorf("processes of the instance: %v; want only the %s engine's, engine process %d", byName, engine, enginePID)
	}
	return nil
}
