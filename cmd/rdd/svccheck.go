package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/spf13/cobra"

	"github.com/rdd-project/rdd/internal/events"
	"github.com/rdd-project/rdd/internal/store"
)

// errLogDamaged makes svc check exit 1 after its report said why.
var errLogDamaged = errors.New("the event log is damaged: run `rdd svc repair` to keep every intact event in a new log (the damaged file is kept aside)")

func newSvcCheckCommand(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "check",
		Short: "Check the event log: structure, checksums, replay against checkpoints",
		Long: `
			Check the instance's event log while the daemon is stopped: the bbolt
			page structure, the checksum and decoding of every event and
			checkpoint, and a replay of every event through the projector,
			compared with each stored checkpoint. Prints a report and exits 0
			when the log is intact, 1 when it is damaged (then see svc repair).`,
		Example: `
			rdd svc stop && rdd svc check`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := e.instance()
			if err != nil {
				return err
			}
			return checkLog(e.stdout, p.EventLog)
		},
	}
}

func newSvcRepairCommand(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "repair",
		Short: "Salvage the intact events of a damaged event log into a new log",
		Long: `
			Salvage a damaged event log while the daemon is stopped: read every
			page of the file, keep the events from the first one up to the first
			that is missing or fails its checksum (and the checkpoints among them)
			in a new log at the same path, and keep the damaged file next to it as
			events.db.damaged-TIME. Nothing is deleted. An intact log is left as
			it is.`,
		Example: `
			rdd svc stop && rdd svc repair && rdd svc start`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := e.instance()
			if err != nil {
				return err
			}
			if err := openable(p.EventLog); err != nil {
				return err
			}
			if l, err := store.Open(p.EventLog, store.Options{}); err == nil {
				err = l.Check()
				_ = l.Close()
				if err == nil {
					fmt.Fprintf(e.stdout, "%s is intact: nothing to repair\n", p.EventLog)
					return nil
				}
			} else if errors.Is(err, store.ErrLocked) {
				return daemonRunning(p.EventLog)
			}
			r, err := store.Repair(p.EventLog, store.Options{Instance: p.Name})
			if errors.Is(err, store.ErrLocked) {
				return daemonRunning(p.EventLog)
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "kept events %d..%d and %d checkpoints in %s\n", r.First, r.Last, r.Checkpoints, r.Path)
			if r.Lost > 0 {
				fmt.Fprintf(e.stdout, "not kept: %d intact events after the first missing one (seq %d)\n", r.Lost, r.Last+1)
			}
			fmt.Fprintf(e.stdout, "the damaged file is kept as %s\n", r.DamagedCopy)
			return nil
		},
	}
}

// openable refuses to go on when the log does not exist: store.Open would
// create it.
func openable(path string) error {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		if _, merr := os.Stat(path + ".created"); merr == nil {
			return fmt.Errorf("%s is missing, but this instance had an event log: restore it from a backup, or move %s.created aside to start a new log", path, path)
		}
		return fmt.Errorf("%s does not exist: the instance has no event log yet", path)
	} else if err != nil {
		return fmt.Errorf("inspect %s: %w", path, err)
	}
	return nil
}

func daemonRunning(path string) error {
	return fmt.Errorf("the daemon holds %s: stop it with `rdd svc stop`, then run this again", path)
}

// checkLog writes the report of svc check on the log at path to w; it
// returns errLogDamaged when the log is damaged.
func checkLog(w io.Writer, path string) error {
	if err := openable(path); err != nil {
		return err
	}
	l, err := store.Open(path, store.Options{})
	if errors.Is(err, store.ErrLocked) {
		return daemonRunning(path)
	}
	fmt.Fprintf(w, "log:          %s\n", path)
	if err != nil {
		fmt.Fprintf(w, "structure:    %v\n", err)
		return errLogDamaged
	}
	defer func() { _ = l.Close() }()
	fmt.Fprintf(w, "events:       %d..%d (schema %d)\n", l.CompactedThrough()+1, l.LastSeq(), l.Info().Schema)
	damaged := false
	if err := l.Check(); err != nil {
		damaged = true
		fmt.Fprintf(w, "consistency:  %v\n", err)
	} else {
		fmt.Fprintf(w, "consistency:  ok (every page, checksum and event)\n")
	}
	replayed, compared, err := replayAgainstCheckpoints(l)
	if err != nil {
		damaged = true
		fmt.Fprintf(w, "replay:       %d events folded, %d checkpoints matched, then: %v\n", replayed, compared, err)
	} else {
		fmt.Fprintf(w, "replay:       ok (%d events folded, %d checkpoints matched)\n", replayed, compared)
	}
	if damaged {
		return errLogDamaged
	}
	fmt.Fprintf(w, "result:       intact\n")
	return nil
}

// replayAgainstCheckpoints folds every event through a projector and
// compares its checkpoint with each stored one at the same seq.
func replayAgainstCheckpoints(l *store.Log) (replayed, compared int, err error) {
	seqs, err := l.CheckpointSeqs()
	if err != nil {
		return 0, 0, err
	}
	proj := events.NewProjector()
	from := l.CompactedThrough()
	if from > 0 {
		seq, data, ok, err := l.CheckpointAtOrBefore(from)
		if err != nil {
			return 0, 0, err
		}
		if !ok || seq != from {
			return 0, 0, fmt.Errorf("the log is compacted through %d but has no checkpoint there to start from", from)
		}
		snap, err := events.UnmarshalCheckpoint(data)
		if err == nil {
			err = proj.Restore(snap)
		}
		if err != nil {
			return 0, 0, fmt.Errorf("checkpoint %d: %w", from, err)
		}
	}
	next := 0
	for next < len(seqs) && seqs[next] <= from {
		next++
	}
	err = l.Range(from, 0, func(ev events.Envelope) error {
		if err := proj.Apply(ev); err != nil {
			return fmt.Errorf("event %d does not fold: %w", ev.Seq, err)
		}
		replayed++
		for ; next < len(seqs) && seqs[next] == ev.Seq; next++ {
			if err := compareCheckpoint(l, proj, ev.Seq); err != nil {
				return err
			}
			compared++
		}
		return nil
	})
	return replayed, compared, err
}

func compareCheckpoint(l *store.Log, proj *events.Projector, seq uint64) error {
	_, data, _, err := l.CheckpointAtOrBefore(seq)
	if err != nil {
		return err
	}
	snap, err := events.UnmarshalCheckpoint(data)
	if err != nil {
		return fmt.Errorf("checkpoint %d: %w", seq, err)
	}
	stored, err := events.MarshalCheckpoint(snap)
	if err != nil {
		return fmt.Errorf("checkpoint %d: %w", seq, err)
	}
	folded, err := proj.Checkpoint()
	if err != nil {
		return fmt.Errorf("fold at %d: %w", seq, err)
	}
	if !bytes.Equal(stored, folded) {
		return fmt.Errorf("checkpoint %d differs from the replay of the events up to it", seq)
	}
	return nil
}
