package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/rdd-project/rdd/internal/api"
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
		Long: doc(`
			Fold events, in order, into the snapshot they produce, exactly as the
			daemon does. FILE holds events in the export format of rdd events -o
			json ("-" reads standard input); this works with no daemon running.
			Without FILE, the daemon's own log is replayed.

			--to SEQ stops after event SEQ. -o json prints the snapshot in the
			same bytes as rdd status -o json. -o text prints each condition
			change in order, then the status table.`),
		Example: example(`
			rdd events -o json | rdd replay - -o json
			rdd replay rdd-events.ndjson --to 57
			rdd replay`),
		Args: usageArgs(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := out.format(formats...)
			if err != nil {
				return err
			}
			var envs []events.Envelope
			if len(args) == 1 {
				envs, err = e.readEventFile(args[0], to)
			} else {
				envs, err = e.fetchEvents(cmd.Context(), to)
			}
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
			s, err := replay(envs, step)
			if err != nil {
				return err
			}
			if f == render.JSON {
				return render.WriteJSON(e.stdout, s)
			}
			if len(envs) > 0 {
				fmt.Fprintln(e.stdout)
			}
			return render.StatusText(e.stdout, s, e.now())
		},
	}
	out.add(cmd, formats...)
	cmd.Flags().Uint64Var(&to, "to", 0, "stop after the event with this seq (0: replay everything)")
	return cmd
}

// readEventFile decodes the events of path ("-" is stdin) up to seq to.
func (e *env) readEventFile(path string, to uint64) ([]events.Envelope, error) {
	r := e.stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("read events: %w", err)
		}
		defer f.Close()
		r = f
	}
	envs, err := decodeEnvelopes(r, to)
	if err != nil {
		return nil, fmt.Errorf("read events from %s: %w", displayName(path), err)
	}
	return envs, nil
}

func displayName(path string) string {
	if path == "-" {
		return "standard input"
	}
	return path
}

// decodeEnvelopes reads whitespace-separated JSON envelopes (NDJSON) and
// validates each; with to > 0 it stops after seq to.
func decodeEnvelopes(r io.Reader, to uint64) ([]events.Envelope, error) {
	dec := json.NewDecoder(r)
	var envs []events.Envelope
	for n := 1; ; n++ {
		var raw json.RawMessage
		if err := dec.Decode(&raw); errors.Is(err, io.EOF) {
			return envs, nil
		} else if err != nil {
			return nil, fmt.Errorf("event #%d: %w", n, err)
		}
		ev, err := events.Unmarshal(raw)
		if err != nil {
			return nil, fmt.Errorf("event #%d: %w", n, err)
		}
		if to > 0 && ev.Seq > to {
			return envs, nil
		}
		envs = append(envs, ev)
	}
}

// errStopEvents ends an event listing early; it never reaches the user.
var errStopEvents = errors.New("stop listing events")

// fetchEvents lists the daemon's events up to seq to (all when to is 0).
func (e *env) fetchEvents(ctx context.Context, to uint64) ([]events.Envelope, error) {
	c, err := e.client()
	if err != nil {
		return nil, err
	}
	q := api.EventQuery{}
	if to > 0 && to < 1<<31 {
		q.Limit = int(to)
	}
	var envs []events.Envelope
	err = c.Events(ctx, q, func(_ []byte, ev events.Envelope) error {
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

// replay folds envs with a fresh projector. step, when non-nil, is called
// after each event with the conditions whose status, reason or message it
// changed (possibly none).
func replay(envs []events.Envelope, step func(ev events.Envelope, changed []events.Condition) error) (events.Snapshot, error) {
	p := events.NewProjector()
	// Snapshots are deep copies: take one per event only when step needs
	// them, and reuse it as the next event's "before".
	var before []events.Condition
	for _, ev := range envs {
		if err := p.Apply(ev); err != nil {
			return events.Snapshot{}, fmt.Errorf("replay event %d (%s): %w", ev.Seq, ev.Type, err)
		}
		if step != nil {
			after := p.Snapshot().Status.Conditions
			if err := step(ev, render.ChangedConditions(before, after)); err != nil {
				return events.Snapshot{}, err
			}
			before = after
		}
	}
	return p.Snapshot(), nil
}
