package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/rdd-project/rdd/internal/api"
	"github.com/rdd-project/rdd/internal/api/client"
	"github.com/rdd-project/rdd/internal/cli/exit"
	"github.com/rdd-project/rdd/internal/cli/render"
	"github.com/rdd-project/rdd/internal/events"
)

// outputFlags adds -o/--output and its --json shorthand.
type outputFlags struct {
	output string
	json   bool
}

func (o *outputFlags) add(cmd *cobra.Command, allowed ...render.Format) {
	names := ""
	for i, f := range allowed {
		if i > 0 {
			names += ", "
		}
		names += string(f)
	}
	cmd.Flags().StringVarP(&o.output, "output", "o", string(allowed[0]), "output format: "+names)
	_ = cmd.RegisterFlagCompletionFunc("output", func(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
		out := make([]cobra.Completion, len(allowed))
		for i, f := range allowed {
			out[i] = string(f)
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	})
	cmd.Flags().BoolVar(&o.json, "json", false, "shorthand for -o json")
}

func (o *outputFlags) format(allowed ...render.Format) (render.Format, error) {
	if o.json {
		return render.JSON, nil
	}
	f, err := render.ParseFormat(o.output, allowed...)
	if err != nil {
		return "", usageErr(err)
	}
	return f, nil
}

func newStatusCommand(e *env) *cobra.Command {
	var (
		out   outputFlags
		watch bool
		at    string
	)
	formats := []render.Format{render.Text, render.JSON, render.YAML}
	cmd := &cobra.Command{
		Use:   "status [-o text|json|yaml] [--watch] [--at SEQ|DURATION|TIME]",
		Short: "Show the App's conditions, spec and generation",
		Long: `
			Show the App snapshot: its conditions (type, status, reason, age,
			message), generation, spec and Kubernetes port. -o json prints the
			snapshot exactly as the daemon serves it (GET /v1/status).

			--watch prints the snapshot again after every change: with -o json
			one JSON object per line, with -o text the table again.
			--at shows the snapshot as of a past event: its seq, a duration
			ago (5m) or an RFC 3339 time; a point after the last event is an
			error.

			status never starts the daemon. When it is not running, status
			reads the instance's event log instead, says so (text: a first
			line; JSON and YAML: "daemonRunning": false) and exits 5.`,
		Example: `
			rdd status
			rdd status -o json | jq '.status.conditions[] | select(.type=="Settled")'
			rdd status --watch -o json
			rdd status --at 42
			rdd status --at 10m
			rdd status --at 2026-01-02T15:04:05Z -o yaml`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := out.format(formats...)
			if err != nil {
				return err
			}
			if watch && at != "" {
				return usageErrf("--watch and --at cannot be combined")
			}
			c, err := e.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if watch {
				return e.watchStatus(ctx, f)
			}
			err = e.showStatus(ctx, c, f, at)
			if !client.IsDaemonNotRunning(err) {
				return err
			}
			o, err := e.openOffline()
			if err != nil {
				return err
			}
			defer o.Close()
			return e.showStatus(ctx, o, f, at)
		},
	}
	out.add(cmd, formats...)
	cmd.Flags().BoolVarP(&watch, "watch", "w", false, "print the snapshot again after every change")
	cmd.Flags().StringVar(&at, "at", "", "show the snapshot as of event SEQ, DURATION ago (5m) or RFC 3339 TIME")
	return cmd
}

// showStatus prints the snapshot now or at --at, from the daemon (r is
// *client.Client) or from the log (*offlineLog: marked, exit 5).
func (e *env) showStatus(ctx context.Context, r logReader, f render.Format, at string) error {
	_, offline := r.(*offlineLog)
	var s events.Snapshot
	var err error
	switch {
	case at != "":
		var a api.At
		if a, err = e.checkAt(ctx, r, at); err != nil {
			return err
		}
		s, err = r.StatusAt(ctx, a)
	case f == render.JSON && !offline:
		// The daemon's bytes as they are: no decode and re-encode.
		raw, err := r.(*client.Client).RawStatus(ctx)
		if err != nil {
			return err
		}
		return writeLine(e.stdout, raw)
	default:
		s, err = r.Status(ctx)
	}
	if err != nil {
		return err
	}
	if !offline {
		return e.printSnapshot(f, s)
	}
	if err := e.printOfflineSnapshot(f, s); err != nil {
		return err
	}
	return exit.Silent(exit.CodeDaemonDown)
}

// printOfflineSnapshot prints s, read from the log, saying so.
func (e *env) printOfflineSnapshot(f render.Format, s events.Snapshot) error {
	if f == render.Text {
		if _, err := fmt.Fprintf(e.stdout, "The rdd daemon of instance %s is not running; this is the state its event log records (seq %d).\n", e.paths.Instance, s.Seq); err != nil {
			return err
		}
		return e.printSnapshot(f, s)
	}
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	// A field first, so the rest stays the bytes the daemon would serve.
	b = append([]byte(`{"daemonRunning":false,`), b[1:]...)
	if f == render.JSON {
		return writeLine(e.stdout, b)
	}
	return render.WriteYAML(e.stdout, json.RawMessage(b))
}

// printSnapshot renders s in format f.
func (e *env) printSnapshot(f render.Format, s events.Snapshot) error {
	switch f {
	case render.JSON:
		return render.WriteJSON(e.stdout, s)
	case render.YAML:
		return render.WriteYAML(e.stdout, s)
	}
	return render.StatusText(e.stdout, s, e.now())
}

// watchStatus streams snapshots until the user interrupts it or the daemon
// closes the stream.
func (e *env) watchStatus(ctx context.Context, f render.Format) error {
	c, err := e.client()
	if err != nil {
		return err
	}
	w, err := c.Watch(ctx, 0)
	if err != nil {
		return err
	}
	defer w.Close()
	for n := 0; ; n++ {
		var s events.Snapshot
		var raw []byte
		if f == render.JSON {
			raw, err = w.NextRaw()
		} else {
			s, err = w.Next()
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil // interrupted: the normal end of --watch
			}
			return fmt.Errorf("watch status: %w", err)
		}
		switch f {
		case render.JSON:
			err = writeLine(e.stdout, raw)
		case render.YAML:
			if _, err = io.WriteString(e.stdout, "---\n"); err == nil {
				err = render.WriteYAML(e.stdout, s)
			}
		default:
			if n > 0 {
				_, err = io.WriteString(e.stdout, "\n")
			}
			if err == nil {
				err = render.StatusText(e.stdout, s, e.now())
			}
		}
		if err != nil {
			return err
		}
	}
}

// writeLine writes b followed by a newline unless b already ends in one.
func writeLine(w io.Writer, b []byte) error {
	if !bytes.HasSuffix(b, []byte("\n")) {
		b = append(b[:len(b):len(b)], '\n')
	}
	_, err := w.Write(b)
	return err
}

// checkAt parses --at and refuses a point after the log's last event: the
// daemon would answer with the current snapshot, which reads as history
// that has not happened.
func (e *env) checkAt(ctx context.Context, c logReader, at string) (api.At, error) {
	now := e.now()
	a, err := parsePoint("--at", at, now)
	if err != nil {
		return api.At{}, usageErr(err)
	}
	if a.Seq == 0 && a.Time.IsZero() {
		return api.At{}, usageErrf("--at 0 selects nothing: the first event is seq 1")
	}
	if a.Time.After(now) {
		return api.At{}, fmt.Errorf("--at %s is in the future", at)
	}
	if a.Seq > 0 {
		head, err := c.Status(ctx)
		if err != nil {
			return api.At{}, err
		}
		if a.Seq > head.Seq {
			return api.At{}, fmt.Errorf("--at %d is beyond the last event of the log (seq %d)", a.Seq, head.Seq)
		}
	}
	return a, nil
}
