package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/rdd-project/rdd/internal/api"
	"github.com/rdd-project/rdd/internal/api/client"
	"github.com/rdd-project/rdd/internal/cli/render"
	"github.com/rdd-project/rdd/internal/events"
)

func newEventsCommand(e *env) *cobra.Command {
	var (
		out   outputFlags
		q     api.EventQuery
		since string
	)
	formats := []render.Format{render.Text, render.JSON}
	cmd := &cobra.Command{
		Use:   "events [-o text|json] [--since SEQ|DURATION|TIME] [--follow] [--limit N]",
		Short: "List the events of the daemon's log",
		Long: `
			List the events of the instance's event log in seq order: spec
			changes, machine transitions and daemon starts and stops.

			-o text prints "SEQ TIME TYPE summary" per event. -o json prints the
			export format, one envelope per line exactly as the daemon sends it;
			rdd replay reads it back. --since SEQ lists only events after SEQ;
			--since 5m or --since TIME (RFC 3339) the events from then on;
			--limit N at most N events, and --follow keeps listing new events
			until interrupted. With the daemon down, the log is read from disk
			(a note on stderr says so; --follow needs the daemon).`,
		Example: `
			rdd events
			rdd events --follow --since 120
			rdd events --since 5m
			rdd events -o json > rdd-events.ndjson
			rdd events -o json | rdd replay - -o json`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := out.format(formats...)
			if err != nil {
				return err
			}
			if q.Limit < 0 {
				return usageErrf("--limit must not be negative")
			}
			c, err := e.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			list := func(r logReader) error {
				q := q
				var err error
				if q.Since, err = e.sinceSeq(cmd, r, since); err != nil {
					return err
				}
				return r.Events(ctx, q, func(raw []byte, ev events.Envelope) error {
					if f == render.JSON {
						if raw == nil {
							var err error
							if raw, err = events.Marshal(ev); err != nil {
								return err
							}
						}
						return writeLine(e.stdout, raw)
					}
					_, err := fmt.Fprintln(e.stdout, render.EventLine(ev))
					return err
				})
			}
			err = list(c)
			if client.IsDaemonNotRunning(err) {
				o, oerr := e.openOffline()
				if oerr != nil {
					return oerr
				}
				defer o.Close()
				// stderr: stdout is the export format, one envelope per line.
				fmt.Fprintf(e.stderr, "Note: the rdd daemon of instance %s is not running; listing its event log.\n", e.paths.Instance)
				err = list(o)
			}
			if err != nil && q.Follow && ctx.Err() != nil {
				return nil // interrupted: the normal end of --follow
			}
			return err
		},
	}
	out.add(cmd, formats...)
	cmd.Flags().StringVar(&since, "since", "", "list events after seq SEQ, or from DURATION ago (5m) or RFC 3339 TIME on")
	cmd.Flags().BoolVarP(&q.Follow, "follow", "f", false, "keep listing new events until interrupted")
	cmd.Flags().IntVar(&q.Limit, "limit", 0, "list at most N events (0: no limit)")
	return cmd
}

// sinceSeq turns --since into the seq to list after. A time becomes the seq
// of the last event before it, which the daemon finds from its checkpoints
// (status?at=TIME) instead of the CLI reading the whole log.
func (e *env) sinceSeq(cmd *cobra.Command, c logReader, since string) (uint64, error) {
	if since == "" {
		return 0, nil
	}
	a, err := parsePoint("--since", since, e.now())
	if err != nil {
		return 0, usageErr(err)
	}
	if a.Time.IsZero() {
		return a.Seq, nil
	}
	// An event at exactly that time belongs to the listing: ask for the
	// state just before it.
	s, err := c.StatusAt(cmd.Context(), api.At{Time: a.Time.Add(-time.Nanosecond)})
	if through, gone := client.ResumeSeq(err); gone {
		fmt.Fprintf(e.stderr, "Note: events up to seq %d were removed by the daemon's retention policy; listing from there.\n", through)
		return through, nil
	}
	if err != nil {
		return 0, err
	}
	return s.Seq, nil
}
