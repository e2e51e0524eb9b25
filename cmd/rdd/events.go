package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/rdd-project/rdd/internal/api"
	"github.com/rdd-project/rdd/internal/cli/render"
	"github.com/rdd-project/rdd/internal/events"
)

func newEventsCommand(e *env) *cobra.Command {
	var (
		out outputFlags
		q   api.EventQuery
	)
	formats := []render.Format{render.Text, render.JSON}
	cmd := &cobra.Command{
		Use:   "events [-o text|json] [--since SEQ] [--follow] [--limit N]",
		Short: "List the events of the daemon's log",
		Long: doc(`
			List the events of the instance's event log in seq order: spec
			changes, machine transitions and daemon starts and stops.

			-o text prints "SEQ TIME TYPE summary" per event. -o json prints the
			export format, one envelope per line exactly as the daemon sends it;
			rdd replay reads it back. --since SEQ lists only events after SEQ,
			--limit N at most N events, and --follow keeps listing new events
			until interrupted.`),
		Example: example(`
			rdd events
			rdd events --follow --since 120
			rdd events -o json > rdd-events.ndjson
			rdd events -o json | rdd replay - -o json`),
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
			err = c.Events(ctx, q, func(raw []byte, ev events.Envelope) error {
				if f == render.JSON {
					return writeLine(e.stdout, raw)
				}
				_, err := fmt.Fprintln(e.stdout, render.EventLine(ev))
				return err
			})
			if err != nil && q.Follow && ctx.Err() != nil {
				return nil // interrupted: the normal end of --follow
			}
			return err
		},
	}
	out.add(cmd, formats...)
	cmd.Flags().Uint64Var(&q.Since, "since", 0, "list events with a seq greater than SEQ")
	cmd.Flags().BoolVarP(&q.Follow, "follow", "f", false, "keep listing new events until interrupted")
	cmd.Flags().IntVar(&q.Limit, "limit", 0, "list at most N events (0: no limit)")
	return cmd
}
