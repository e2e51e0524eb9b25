package host

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/rdd-project/rdd/internal/mounts"

	"go.uber.org/zap"
)

// forceGrace is the SIGTERM grace of Delete and of the clean-up of a broken
// machine before Start.
const forceGrace = 5 * time.Second

// Stop stops the machine: SIGTERM to the engine process, then to the rest of
// its process group (dockerd first, so it can stop its containers while its
// containerd still runs), each waited for until ctx's deadline (or
// Options.StopTimeout without one); whatever still runs then gets SIGKILL.
// It also kills what an interrupted start spawned without recording it,
// unmounts what the engine left mounted under its directories (a SIGKILLed
// dockerd keeps its mounts), removes the sockets, pid file and state file,
// and returns once the Exited channel of the stopped machine is closed.
// Stop works the same for a machine this Driver started and one it
// re-adopted, and is a no-op when nothing runs.
func (d *Driver) Stop(ctx context.Context) error {
	if err := d.acquire(ctx); err != nil {
		return err
	}
	defer d.release()
	ctx, cancel := d.stopDeadline(ctx)
	defer cancel()
	// k3s runs on the engine: it goes first.
	if err := d.stopKubernetesForMachine(ctx); err != nil {
		return err
	}
	return d.stopLocked(ctx, 0)
}

// stopLocked is Stop. The SIGTERM phase lasts until ctx ends, or at most
// grace when grace > 0.
func (d *Driver) stopLocked(ctx context.Context, grace time.Duration) error {
	st, ok, err := readState(d.l.stateFile)
	if err != nil {
		// Unreadable: nothing to signal. Remove it so the machine can start.
		d.log.Warn("removing unreadable engine state", zap.Error(err))
		ok = false
	}
	if !ok {
		if err == nil { // nothing recorded runs
			d.unmountLeftovers()
		}
		d.removeRuntimeFiles()
		d.teardownNetwork(ctx) // leftovers of an engine that died on its own
		return nil
	}
	if len(st.live()) > 0 {
		d.mu.Lock()
		if d.cur != nil && d.cur.st.sameProcs(st) {
			d.cur.stopping.Store(true)
		}
		d.mu.Unlock()
		d.log.Info("stopping engine", zap.String("engine", string(st.Engine)), zap.Int("pid", st.main().PID), zap.Int("pgid", st.PGID))
		gctx, cancel := context.WithCancel(ctx)
		if grace > 0 {
			gctx, cancel = context.WithTimeout(ctx, grace)
		}
		for i := len(st.Procs) - 1; i >= 0; i-- {
			p := st.Procs[i]
			if !p.alive() {
				continue
			}
			if p.PID == st.PGID {
				// The group leader goes last: this reaches it and every
				// straggler of the group.
				signalGroup(st.PGID, syscall.SIGTERM)
			} else {
				p.signal(syscall.SIGTERM)
			}
			if !waitUntil(gctx, func() bool { return !p.alive() }) {
				break
			}
		}
		cancel()
		if err := d.killRest(ctx, st); err != nil {
			return err
		}
	}
	d.killStrays(ctx, st)
	d.awaitWatcher(ctx, st)
	d.unmountLeftovers()
	d.removeRuntimeFiles()
	d.teardownNetwork(ctx)
	d.log.Info("engine stopped", zap.Int("pid", st.main().PID))
	return nil
}

// killRest sends SIGKILL to whatever of st (and its process group) still
// runs and waits up to killWait for it to vanish.
func (d *Driver) killRest(ctx context.Context, st state) error {
	if len(st.live()) == 0 && len(groupMembers(st.PGID)) == 0 {
		return nil
	}
	d.log.Warn("engine did not stop in time; killing its process group", zap.Int("pgid", st.PGID))
	for _, p := range st.Procs {
		p.signal(syscall.SIGKILL)
	}
	// The group was ours a moment ago (a recorded process was alive when
	// Stop began), so its id has not been reused.
	signalGroup(st.PGID, syscall.SIGKILL)
	kctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), killWait)
	defer cancel()
	if !waitUntil(kctx, func() bool { return len(st.live()) == 0 && len(groupMembers(st.PGID)) == 0 }) {
		// Keep the state file: Inspect will report the machine broken.
		return fmt.Errorf("host: engine process group %d still runs %v %s after SIGKILL", st.PGID, groupMembers(st.PGID), killWait)
	}
	return nil
}

// awaitWatcher waits (bounded) until the watcher of st has closed Exited, so
// that Stop's caller never sees a stopped machine whose Exited is still open.
func (d *Driver) awaitWatcher(ctx context.Context, st state) {
	d.mu.Lock()
	m := d.cur
	d.mu.Unlock()
	if m == nil || !m.st.sameProcs(st) {
		return
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), killWait)
	defer cancel()
	select {
	case <-m.exited:
	case <-m.done:
	case <-wctx.Done():
		d.log.Warn("engine watcher did not report the exit", zap.Int("pid", st.main().PID))
	}
}

func (d *Driver) removeRuntimeFiles() {
	for _, f := range d.l.runtimeFiles() {
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			d.log.Warn("cannot remove runtime file", zap.String("path", f), zap.Error(err))
		}
	}
}

// stopDeadline bounds a stop by Options.StopTimeout unless the caller
// already set a deadline.
func (d *Driver) stopDeadline(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, d.opts.StopTimeout)
}

// Delete stops the machine (SIGTERM with a short grace, then SIGKILL) and
// removes D/engine and H/run with everything in them. Engine logs in L are
// kept. Deleting a machine that was never created is a no-op.
func (d *Driver) Delete(ctx context.Context) error {
	if err := d.acquire(ctx); err != nil {
		return err
	}
	defer d.release()
	if err := d.deleteKubernetesLocked(ctx); err != nil {
		return err
	}
	if err := d.stopLocked(ctx, forceGrace); err != nil {
		return err
	}
	if err := mounts.UnmountUnder(d.l.dataRoot, d.l.runDir); err != nil {
		return fmt.Errorf("host: delete: %w", err)
	}
	for _, dir := range []string{d.l.dataRoot, d.l.runDir} {
		if err := os.RemoveAll(dir); err != nil {
			return fmt.Errorf("host: delete %s: %w", dir, err)
		}
	}
	d.log.Info("engine data deleted", zap.String("data-root", d.l.dataRoot))
	return nil
}

// Close stops every watcher goroutine and waits for them. Engine processes
// keep running (a later Driver re-adopts them); Exited channels that are
// still open stay open. Every method called after Close returns ErrClosed.
// Close may be called more than once.
func (d *Driver) Close() error {
	d.closeKubernetes()
	d.mu.Lock()
	d.closed = true
	ws := d.watchers
	d.watchers, d.cur = nil, nil
	d.mu.Unlock()
	for _, m := range ws {
		m.cancel()
		<-m.done
	}
	return nil
}
