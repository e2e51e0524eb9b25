package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"

	"github.com/spf13/cobra"

	"github.com/rdd-project/rdd/internal/api"
	"github.com/rdd-project/rdd/internal/api/client"
	"github.com/rdd-project/rdd/internal/cli/render"
	"github.com/rdd-project/rdd/internal/events"
)

func newReplayCommand(e *env) *cobra.Command {
	var (
		out outputFlags
		to  uint64
	)
	formats := []render.Format{render.Text, render.JSON}
	cmd := &cobra.Command{
		Use:   "replay [FILE|-] [--to SEQ] [-o text|json]",
		Short: "Fold an event log into the App snapshot it produces",
		Long: `
			Fold events, in order, into the snapshot they produce, exactly as the
			daemon does. FILE holds events in the export format of rdd events -o
			json, one per line ("-" reads standard input); it is folded while it
			is read, in bounded memory, and works with no daemon running.
			Without FILE, the daemon's own log is replayed (read from disk when
			the daemon is not running, which a note says); when its retention
			policy (RDD_RETAIN_EVENTS) removed the oldest events, the replay
			starts from the oldest snapshot the daemon can rebuild and says so.

			--to SEQ stops after event SEQ. -o json prints the snapshot in the
			same bytes as rdd status -o json. -o text prints each condition
			change in order, then the status table.`,
		Example: `
			rdd events -o json | rdd replay - -o json
			rdd replay rdd-events.ndjson --to 57
			rdd replay`,
		Args: usageArgs(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := out.format(formats...)
			if err != nil {
				return err
			}
			var step func(events.Envelope, []events.Condition) error
			if f == render.Text {
				step = func(ev events.Envelope, changed []events.Condition) error {
					for _, c := range changed {
						if _, err := fmt.Fprintln(e.stdout, render.ConditionChangeLine(ev.Seq, ev.Time, c)); err != nil {
							return err
						}
					}
					return nil
				}
			}
			var (
				s      events.Snapshot
				folded int
			)
			if len(args) == 1 {
				// A file is folded while it is read: memory stays bounded
				// whatever its size.
				s, folded, err = e.replayFile(args[0], to, step)
			} else {
				s, folded, err = e.replayDaemon(cmd.Context(), f, to, step)
			}
			if err != nil {
				return err
			}
			if f == render.JSON {
				return render.WriteJSON(e.stdout, s)
			}
			if folded > 0 {
				fmt.Fprintln(e.stdout)
			}
			return render.StatusText(e.stdout, s, e.now())
		},
	}
	out.add(cmd, formats...)
	cmd.Flags().Uint64Var(&to, "to", 0, "stop after the event with this seq (0: replay everything)")
	return cmd
}

// replayDaemon folds the daemon's log (read from disk when it is not
// running, which a note says) up to seq to.
func (e *env) replayDaemon(ctx context.Context, f render.Format, to uint64, step func(events.Envelope, []events.Condition) error) (events.Snapshot, int, error) {
	l, err := e.fetchLog(ctx, to)
	if err != nil {
		return events.Snapshot{}, 0, err
	}
	// -o json prints the snapshot's bytes alone on stdout.
	w := e.stdout
	if f == render.JSON {
		w = e.stderr
	}
	if l.Offline {
		fmt.Fprintf(w, "Note: the rdd daemon of instance %s is not running; replaying its event log.\n", e.paths.Instance)
	}
	if note := l.retentionNote(); note != "" {
		if _, err := fmt.Fprintf(w, "Note: %s.\n", note); err != nil {
			return events.Snapshot{}, 0, err
		}
	}
	envs := l.toFold()
	s, err := replay(l.Base, func(fn func(events.Envelope) error) error {
		for _, ev := range envs {
			if err := fn(ev); err != nil {
				return err
			}
		}
		return nil
	}, step)
	return s, len(envs), err
}

// replayFile folds the events of path ("-" is stdin) up to seq to, reading
// one line at a time.
func (e *env) replayFile(path string, to uint64, step func(events.Envelope, []events.Condition) error) (events.Snapshot, int, error) {
	r := e.stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return events.Snapshot{}, 0, fmt.Errorf("read events: %w", err)
		}
		defer f.Close()
		r = f
	}
	n := 0
	s, err := replay(nil, func(fn func(events.Envelope) error) error {
		return readEvents(r, to, func(ev events.Envelope) error { n++; return fn(ev) })
	}, step)
	if err != nil {
		return events.Snapshot{}, 0, fmt.Errorf("replay events from %s: %w", displayName(path), err)
	}
	return s, n, nil
}

func displayName(path string) string {
	if path == "-" {
		return "standard input"
	}
	return path
}

// readEvents calls fn for each event of r, one JSON envelope per line (the
// export format of rdd events -o json), blank lines skipped; with to > 0 it
// stops after seq to. It holds at most one line, and refuses a line longer
// than events.MaxEncodedBytes, the largest event the store writes, as soon
// as it gets that long.
func readEvents(r io.Reader, to uint64, fn func(events.Envelope) error) error {
	br := bufio.NewReaderSize(r, 64<<10)
	var line []byte
	for n := 1; ; n++ {
		n += skipNewlines(br)
		line = line[:0]
		var err error
		for {
			var chunk []byte
			chunk, err = br.ReadSlice('\n')
			if len(line)+len(bytes.TrimRight(chunk, "\r\n")) > events.MaxEncodedBytes {
				return fmt.Errorf("line %d is longer than %d bytes, the largest event rdd writes: this is not an export of rdd events -o json (one event per line)", n, events.MaxEncodedBytes)
			}
			line = append(line, chunk...)
			if !errors.Is(err, bufio.ErrBufferFull) {
				break
			}
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("line %d: %w", n, err)
		}
		if text := bytes.TrimSpace(line); len(text) > 0 {
			ev, derr := events.Unmarshal(text)
			if derr != nil {
				return fmt.Errorf("line %d: %w", n, derr)
			}
			if to > 0 && ev.Seq > to {
				return nil
			}
			if ferr := fn(ev); ferr != nil {
				return ferr
			}
		}
		if err != nil { // io.EOF
			return nil
		}
		if cap(line) > 1<<20 {
			line = nil // one long line must not pin its buffer for the rest
		}
	}
}

// skipNewlines discards the empty lines at the head of br's buffer in bulk
// and returns how many there were: a flood of newlines costs a byte scan,
// not a line read each.
func skipNewlines(br *bufio.Reader) int {
	skipped := 0
	for {
		if br.Buffered() == 0 {
			if _, err := br.Peek(1); err != nil {
				return skipped // ReadSlice reports it
			}
		}
		b, _ := br.Peek(br.Buffered())
		k := 0
		for k < len(b) && b[k] == '\n' {
			k++
		}
		if k == 0 {
			return skipped
		}
		_, _ = br.Discard(k)
		skipped += k
	}
}

// errStopEvents ends an event listing early; it never reaches the user.
var errStopEvents = errors.New("stop listing events")

// daemonLog is what the daemon's log offers a replay: the events in order
// and, when its retention policy removed the oldest ones, the snapshot the
// remaining events fold onto.
type daemonLog struct {
	// Base is nil when Envs start at seq 1. Otherwise only the Envs after
	// Base.Seq fold onto Base; the earlier ones still name spec changes and
	// reasons. Envs are every event the daemon kept, from RemovedThrough+1,
	// or, when RemovedThrough is 0, the events from a seq on that is all
	// the reader needs (why: from the spec change its answer starts at).
	Base *events.Snapshot
	// RemovedThrough is the last seq the retention policy removed (0: none).
	RemovedThrough uint64
	Envs           []events.Envelope
	// Offline is true when the log was read from disk: the daemon is not running.
	Offline bool
}

// toFold returns the events that fold onto Base (all of them without one).
func (l daemonLog) toFold() []events.Envelope {
	if l.Base == nil {
		return l.Envs
	}
	i, _ := slices.BinarySearchFunc(l.Envs, l.Base.Seq+1, func(e events.Envelope, seq uint64) int { return cmp.Compare(e.Seq, seq) })
	return l.Envs[i:]
}

// retentionNote tells the reader that the history starts late, or is "".
func (l daemonLog) retentionNote() string {
	if l.Base == nil || l.RemovedThrough == 0 {
		return ""
	}
	return fmt.Sprintf("events up to seq %d were removed by the daemon's retention policy (RDD_RETAIN_EVENTS); replayed from its snapshot at seq %d", l.RemovedThrough, l.Base.Seq)
}

// fetchLog reads the daemon's log up to seq to (all when to is 0). When the
// retention policy compacted the log, it starts from the oldest snapshot the
// daemon can still rebuild instead of failing on the removed events.
func (e *env) fetchLog(ctx context.Context, to uint64) (daemonLog, error) {
	return e.readLog(ctx, func(c logReader) (daemonLog, error) { return fetchLogFrom(ctx, c, to) })
}

// readLog runs fetch against the daemon, or against the log on disk when
// the daemon is not running.
func (e *env) readLog(ctx context.Context, fetch func(logReader) (daemonLog, error)) (daemonLog, error) {
	c, err := e.client()
	if err != nil {
		return daemonLog{}, err
	}
	l, err := fetch(c)
	if !client.IsDaemonNotRunning(err) {
		return l, err
	}
	o, err := e.openOffline()
	if err != nil {
		return daemonLog{}, err
	}
	defer o.Close()
	l, err = fetch(o)
	l.Offline = true
	return l, err
}

// fetchLogFrom is fetchLog from the daemon or from the log on disk.
func fetchLogFrom(ctx context.Context, c logReader, to uint64) (daemonLog, error) {
	var (
		l   daemonLog
		err error
	)
	// A compaction can move the mark between our requests: each attempt
	// starts over from the mark the daemon names.
	for attempt := 0; ; attempt++ {
		l.Envs, err = listEvents(ctx, c, l.RemovedThrough, to)
		through, compacted := client.ResumeSeq(err)
		if !compacted || attempt == 3 {
			if err != nil {
				return daemonLog{}, err
			}
			return l, nil
		}
		base, err := oldestSnapshot(ctx, c, through)
		if err != nil {
			return daemonLog{}, err
		}
		if to > 0 && to < base.Seq {
			return daemonLog{}, fmt.Errorf("events up to seq %d were removed by the daemon's retention policy (RDD_RETAIN_EVENTS) and the oldest state it can rebuild is at seq %d: use --to %d or later, or replay an export taken before the compaction", through, base.Seq, base.Seq)
		}
		l.Base, l.RemovedThrough = &base, through
	}
}

// listEvents lists the daemon's events after since, up to seq to (all when
// to is 0).
func listEvents(ctx context.Context, c logReader, since, to uint64) ([]events.Envelope, error) {
	q := api.EventQuery{Since: since}
	if to > since && to-since < 1<<31 {
		q.Limit = int(to - since)
	}
	var envs []events.Envelope
	err := c.Events(ctx, q, func(_ []byte, ev events.Envelope) error {
		if to > 0 && ev.Seq > to {
			return errStopEvents
		}
		envs = append(envs, ev)
		return nil
	})
	if err != nil && !errors.Is(err, errStopEvents) {
		return nil, err
	}
	return envs, nil
}

// oldestSnapshot returns the oldest snapshot the daemon can rebuild in a log
// compacted through seq through. The API names no checkpoint, but the daemon
// rebuilds a past snapshot from the nearest checkpoint at or before it (or
// from its ring of recent ones), and compaction drops every checkpoint below
// the mark: the seqs it can rebuild are a suffix of the log, so a binary
// search over status?at= finds the oldest in a few requests.
func oldestSnapshot(ctx context.Context, c logReader, through uint64) (events.Snapshot, error) {
	best, err := c.Status(ctx)
	if err != nil {
		return events.Snapshot{}, err
	}
	lo, hi := through, best.Seq // hi can be rebuilt; below lo nothing can
	for lo < hi {
		mid := lo + (hi-lo)/2
		s, err := c.StatusAt(ctx, api.At{Seq: mid})
		if _, gone := client.ResumeSeq(err); gone {
			lo = mid + 1
			continue
		}
		if err != nil {
			return events.Snapshot{}, err
		}
		best, hi = s, mid
	}
	return best, nil
}

// replay folds the events src yields onto base (a fresh projector when base
// is nil), as src yields them. step, when non-nil, is called after each event
// with the conditions whose status, reason or message it changed (possibly
// none).
func replay(base *events.Snapshot, src func(fn func(events.Envelope) error) error, step func(ev events.Envelope, changed []events.Condition) error) (events.Snapshot, error) {
	p, err := projectorFrom(base)
	if err != nil {
		return events.Snapshot{}, err
	}
	// Snapshots are deep copies: take one per event only when step needs
	// them, and reuse it as the next event's "before".
	var before []events.Condition
	if base != nil && step != nil {
		before = p.Snapshot().Status.Conditions
	}
	err = src(func(ev events.Envelope) error {
		if err := p.Apply(ev); err != nil {
			return fmt.Errorf("replay event %d (%s): %w", ev.Seq, ev.Type, err)
		}
		if step != nil {
			after := p.Snapshot().Status.Conditions
			if err := step(ev, render.ChangedConditions(before, after)); err != nil {
				return err
			}
			before = after
		}
		return nil
	})
	if err != nil {
		return events.Snapshot{}, err
	}
	return p.Snapshot(), nil
}

// projectorFrom returns a projector holding base, or a fresh one.
func projectorFrom(base *events.Snapshot) (*events.Projector, error) {
	p := events.NewProjector()
	if base != nil {
		if err := p.Restore(*base); err != nil {
			return nil, fmt.Errorf("restore the daemon's snapshot at seq %d: %w", base.Seq, err)
		}
	}
	return p, nil
}
