package host

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/rdd-project/rdd/internal/mounts"
	"github.com/rdd-project/rdd/internal/proc"
	"github.com/rdd-project/rdd/internal/spec"
	"github.com/rdd-project/rdd/internal/vm"
)

// An rdd killed during Start leaves a half-started machine: a state file
// that names fewer processes than the engine needs (containerd up, dockerd
// never spawned), or names a containerd about to be spawned that was never
// recorded, plus sockets, pid files and the mounts a SIGKILLed dockerd does
// not undo. Nothing was ever served by such a machine, so the driver stops
// it at once (Inspect reports it stopped) instead of probing it, waiting
// and calling it broken.

// halfStartGrace is the SIGTERM grace of a half-started machine's clean-up:
// a containerd that has just started exits on SIGTERM in milliseconds, and
// nothing it runs is worth a longer wait.
const halfStartGrace = 2 * time.Second

// acceptGrace is how long after its start an engine process may still not
// accept connections on its socket and be waited for (its start is being
// finished) rather than reported broken. dockerd opens its socket well within
// a second of starting, even on a loaded machine.
const acceptGrace = 3 * time.Second

// testHoldEnv names the point after which Start blocks until its ctx ends:
// "containerd" (containerd recorded and answering, dockerd not spawned),
// "dockerd-spawned" (dockerd spawned, only its intent recorded) or
// "dockerd" (dockerd recorded, not yet answering). It exists so the crash
// tests can kill rdd at a known point of Start; unset, Start never blocks.
const testHoldEnv = "RDD_HOST_TEST_HOLD"

// testHold blocks until ctx ends when the test hook asks to hold after
// point, and then fails the start.
func (d *Driver) testHold(ctx context.Context, point string) error {
	if d.holdAfter != point {
		return nil
	}
	d.log.Warn("holding the engine start for a test ("+testHoldEnv+")", zap.String("after", point))
	<-ctx.Done()
	return fmt.Errorf("host: start held after %s (%s): %w", point, testHoldEnv, ctx.Err())
}

// spawnIntent is recorded in the state file just before a process is
// spawned, so that a crash between the spawn and the state update leaves
// the process findable: by its exact command line (which names this
// instance's files) and a start no earlier than the rdd that recorded the
// intent.
type spawnIntent struct {
	Argv      []string `json:"argv"`
	NotBefore uint64   `json:"notBefore"` // start ticks of the recording rdd
}

// recordIntent adds the intent to spawn argv to st and writes st.
func (d *Driver) recordIntent(st *state, argv []string) error {
	self, err := proc.ReadStat(os.Getpid())
	if err != nil {
		return fmt.Errorf("host: read own start time: %w", err)
	}
	st.Spawning = &spawnIntent{Argv: argv, NotBefore: self.StartTicks}
	return writeState(d.l.stateFile, *st)
}

// strays lists the live processes that match st's spawn intent and are not
// recorded in st: started after the rdd that recorded the intent, with
// exactly the intended command line.
func (s state) strays() []procRecord {
	if s.Spawning == nil || len(s.Spawning.Argv) == 0 {
		return nil
	}
	want := []byte(strings.Join(s.Spawning.Argv, "\x00") + "\x00")
	pids, _ := proc.PIDs()
	var out []procRecord
	for _, pid := range pids {
		if s.records(pid) {
			continue
		}
		cmdline, err := proc.Cmdline(pid)
		if err != nil || !bytes.Equal(cmdline, want) {
			continue
		}
		st, err := proc.ReadStat(pid)
		if err != nil || st.Dead() || st.StartTicks < s.Spawning.NotBefore {
			continue
		}
		out = append(out, procRecord{Name: filepath.Base(s.Spawning.Argv[0]), PID: pid, StartTicks: st.StartTicks})
	}
	return out
}

func (s state) records(pid int) bool {
	for _, p := range s.Procs {
		if p.PID == pid {
			return true
		}
	}
	return false
}

// wantProcs is how many processes a whole machine of engine e runs.
func wantProcs(e spec.EngineName) int {
	if e == spec.EngineMoby {
		return 2 // containerd, dockerd
	}
	return 1
}

// halfStarted says what makes st a leftover rather than a machine ("" when
// it is whole): a spawn that was never recorded, processes never started,
// or some recorded process gone while others run (nobody tore the rest down
// because rdd was not running).
func (s state) halfStarted() string {
	var parts []string
	for _, p := range s.Procs {
		if p.alive() {
			parts = append(parts, fmt.Sprintf("%s (pid %d) runs", p.Name, p.PID))
		} else {
			parts = append(parts, fmt.Sprintf("%s (pid %d) exited", p.Name, p.PID))
		}
	}
	half := len(s.live()) < len(s.Procs)
	if s.Spawning != nil {
		half = true
		name := filepath.Base(s.Spawning.Argv[0])
		strays := s.strays()
		if len(strays) == 0 {
			parts = append(parts, name+" was being spawned")
		}
		for _, p := range strays {
			parts = append(parts, fmt.Sprintf("%s (pid %d) runs unrecorded", name, p.PID))
		}
	}
	if len(s.Procs) < wantProcs(s.Engine) {
		half = true
		if s.Spawning == nil {
			parts = append(parts, "dockerd was never started")
		}
	}
	if !half {
		return ""
	}
	return strings.Join(parts, ", ")
}

// cleanHalfStarted stops a half-started machine (recorded processes, their
// process group and strays; a short SIGTERM grace, then SIGKILL), unmounts
// what it left mounted and removes its runtime files.
func (d *Driver) cleanHalfStarted(ctx context.Context, st state, found string) (vm.Info, error) {
	d.log.Warn("found a half-started engine (an interrupted start); stopping it", zap.String("found", found))
	if err := d.stopLocked(ctx, halfStartGrace); err != nil {
		return vm.Info{Phase: vm.PhaseBroken, TemplateHash: st.TemplateHash,
			Message: fmt.Sprintf("half-started engine (%s) could not be stopped: %v", found, err)}, nil
	}
	return vm.Info{Phase: vm.PhaseStopped, TemplateHash: st.TemplateHash,
		Message: fmt.Sprintf("found a half-started engine (%s); stopped it and removed its leftovers", found)}, nil
}

// killStrays SIGKILLs the processes st's spawn intent left unrecorded and
// waits (bounded) until they are gone.
func (d *Driver) killStrays(ctx context.Context, st state) {
	strays := st.strays()
	if len(strays) == 0 {
		return
	}
	for _, p := range strays {
		d.log.Warn("killing an engine process spawned by an interrupted start", zap.String("process", p.Name), zap.Int("pid", p.PID))
		p.signal(syscall.SIGKILL)
		signalGroup(p.PID, syscall.SIGKILL) // it led a group; dockerd may have joined it
	}
	kctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), killWait)
	defer cancel()
	waitUntil(kctx, func() bool {
		for _, p := range strays {
			if p.alive() {
				return false
			}
		}
		return true
	})
}

// unmountLeftovers removes the mounts an engine left under its directories
// when it did not exit cleanly: a SIGKILLed dockerd keeps its data-root bind
// mount (and overlay, shm and netns mounts), and the next dockerd stacks a
// second one on top. Only called once no process of the machine runs.
func (d *Driver) unmountLeftovers() {
	if err := mounts.UnmountUnder(d.l.dataRoot, d.l.runDir); err != nil {
		d.log.Warn("cannot unmount what the engine left mounted", zap.Error(err))
	}
}

// processAge is how long ago p started.
func processAge(p procRecord) time.Duration { return proc.Age(p.StartTicks) }

// probeEngine checks that the engine process of a whole machine answers on
// st.Socket in its own protocol. A process that does not accept connections
// yet is waited for only while it is younger than acceptGrace (its start is
// being finished); one that accepts gets up to inspectProbe to answer, so a
// busy dockerd is not taken for a broken one.
func (d *Driver) probeEngine(ctx context.Context, st state) error {
	main := st.main()
	dctx, cancel := context.WithTimeout(ctx, max(d.acceptGrace-processAge(main), 0))
	defer cancel()
	var derr error
	if !waitUntil(dctx, func() bool { derr = dialSocket(ctx, st.Socket); return derr == nil }) {
		if derr == nil {
			derr = dctx.Err()
		}
		return fmt.Errorf("does not accept connections (%w)", derr)
	}
	return probeUntil(ctx, d.inspectProbe, st.Socket, func(ctx context.Context, sock string) error {
		return probeProcess(ctx, main.Name, sock)
	})
}
