package main

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/rdd-project/rdd/internal/api"
	"github.com/rdd-project/rdd/internal/api/client"
	"github.com/rdd-project/rdd/internal/cli/render"
	"github.com/rdd-project/rdd/internal/events"
	"github.com/rdd-project/rdd/internal/spec"
)

// setArg is one PROPERTY=VALUE argument.
type setArg struct {
	Name, Value string
}

// waitOptions are the flags shared by set, start and stop.
type waitOptions struct {
	dryRun  bool
	wait    bool
	timeout time.Duration
}

// defaultWaitTimeout is the --timeout default of set, start, stop and run.
const defaultWaitTimeout = 5 * time.Minute

func addWaitFlags(cmd *cobra.Command, o *waitOptions) {
	cmd.Flags().BoolVar(&o.dryRun, "dry-run", false, "validate the change in the daemon and print what would change; writes nothing, not even an absent App")
	cmd.Flags().BoolVar(&o.wait, "wait", true, "wait until the App is settled at the new generation")
	cmd.Flags().DurationVar(&o.timeout, "timeout", defaultWaitTimeout, "how long to wait; 0 means no limit")
}

func newSetCommand(e *env) *cobra.Command {
	var o waitOptions
	cmd := &cobra.Command{
		Use:   "set [--dry-run] [--wait=BOOL] [--timeout=DUR] PROPERTY=VALUE...",
		Short: "Change the App spec and wait until the App has settled",
		Long: doc(`
			Set properties of the App spec, creating the App if it does not exist,
			then wait until the Settled condition is True at the new generation.
			While waiting, each condition change is printed on stderr as
			"Type=Status: message (reason)".

			The daemon validates the change: an unknown property or a bad value
			is rejected (exit 3) and nothing is written. A value is split from
			its property at the first "="; an empty value clears a string
			property. When a property is given twice, the last one wins.
			A wait that reaches --timeout exits 4.

			--dry-run validates the change and prints what it would change, then
			exits without waiting. It writes nothing: an absent App stays absent
			(the reference creates it, F17; rdd deliberately does not).`) + propertiesHelp(),
		Example: example(`
			rdd set running=true
			rdd set kubernetes.enabled=true kubernetes.version=1.33
			rdd set --wait=false containerEngine.name=containerd
			rdd set --dry-run kubernetes.version=1.32.2`),
		Args: usageArgs(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			props, err := spec.ParseAssignments(args)
			if err != nil {
				return err
			}
			if err := e.ensureDaemon(cmd.Context()); err != nil {
				return err
			}
			return e.applySpec(cmd.Context(), props, o, "rdd set "+strings.Join(args, " "))
		},
	}
	addWaitFlags(cmd, &o)
	return cmd
}

// propertiesHelp is the "Available properties:" section of `set --help`,
// from the spec schema; namespace is never settable and never listed.
func propertiesHelp() string {
	props := spec.Properties()
	if len(props) == 0 {
		return ""
	}
	var rows [][]string
	for _, p := range props {
		if p.Name == "namespace" {
			continue
		}
		rows = append(rows, []string{p.Name, "(" + p.Label() + ")", firstSentence(p.Description)})
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i][0] < rows[j][0] })
	var b strings.Builder
	b.WriteString("\n\nAvailable properties:\n")
	w := 0
	for _, r := range rows {
		w = max(w, len(r[0])+1+len(r[1]))
	}
	for _, r := range rows {
		left := r[0] + " " + r[1]
		fmt.Fprintf(&b, "  %s%s  %s\n", left, strings.Repeat(" ", w-len(left)), r[2])
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// firstSentence returns s up to and including its first ". " or up to its end.
func firstSentence(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.Index(s, ". "); i >= 0 {
		return s[:i+1]
	}
	return s
}

// applySpec posts props to the daemon and, unless o says otherwise, waits
// until the App has settled at the resulting generation. The daemon must be
// serving already.
func (e *env) applySpec(ctx context.Context, props map[string]string, o waitOptions, command string) error {
	c, err := e.client()
	if err != nil {
		return err
	}
	resp, err := c.Set(ctx, api.SetRequest{Set: props, DryRun: o.dryRun, Command: command})
	if err != nil {
		return err
	}
	if o.dryRun {
		changed := "no change"
		if len(resp.Changed) > 0 {
			changed = "would change " + strings.Join(resp.Changed, ", ")
		}
		_, err := fmt.Fprintf(e.stdout, "dry run: %s (generation %d)\n", changed, resp.Generation)
		return err
	}
	if !o.wait {
		return nil
	}
	return e.waitSettled(ctx, resp.Generation, o.timeout)
}

// errAppDeleted ends a wait whose App was deleted meanwhile.
var errAppDeleted = errors.New("the App was deleted while waiting for it to settle")

// waitSettled watches the App until Settled is True with observedGeneration ≥
// target, printing a progress line on stderr for each condition at target
// or later whose status, reason or message changes (behavior.md §9.2 step 7,
// F14, F19). A timeout of 0 means no deadline.
func (e *env) waitSettled(ctx context.Context, target int64, timeout time.Duration) error {
	c, err := e.client()
	if err != nil {
		return err
	}
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	watchErr := func(err error) error {
		if ctxErr := ctx.Err(); errors.Is(ctxErr, context.DeadlineExceeded) {
			return fmt.Errorf("timed out waiting for App state: %w", ctxErr)
		} else if ctxErr != nil {
			return ctxErr
		}
		return fmt.Errorf("watch App state: %w", err)
	}
	var (
		p    progress
		seen uint64 // seq of the last snapshot read, to resume a cut-off watch
	)
	for {
		w, err := c.Watch(ctx, seen)
		if err != nil {
			return watchErr(err)
		}
		settled, err := e.followSettle(w, target, &p, &seen)
		w.Close()
		if settled {
			return nil
		}
		if !client.IsTooSlow(err) || seen == 0 {
			return watchErr(err)
		}
		// The daemon cut this slow reader off: resume after the last snapshot.
	}
}

// followSettle reads w until the App has settled at target (true) or the
// stream fails, reporting progress lines.
func (e *env) followSettle(w *client.Watcher, target int64, p *progress, seen *uint64) (bool, error) {
	for {
		s, err := w.Next()
		if err != nil {
			return false, err
		}
		*seen = s.Seq
		if !s.Exists {
			return false, errAppDeleted
		}
		for _, line := range p.update(s, target) {
			fmt.Fprintln(e.stderr, line)
		}
		if settledAt(s, target) {
			return true, nil
		}
	}
}

// progress remembers the last reported state of each condition.
type progress struct {
	last map[events.ConditionType]events.Condition
}

// update returns the progress lines for s: one per condition with
// observedGeneration ≥ target whose (status, reason, message) differs from
// the last one reported.
func (p *progress) update(s events.Snapshot, target int64) []string {
	if p.last == nil {
		p.last = make(map[events.ConditionType]events.Condition)
	}
	var lines []string
	for _, c := range s.Status.Conditions {
		if c.ObservedGeneration < target {
			continue
		}
		if prev, ok := p.last[c.Type]; ok && render.SameCondition(prev, c) {
			continue
		}
		p.last[c.Type] = c
		lines = append(lines, render.ConditionLine(c))
	}
	return lines
}

// settledAt reports whether Settled is True with observedGeneration ≥ target.
func settledAt(s events.Snapshot, target int64) bool {
	c, ok := s.Condition(events.CondSettled)
	return ok && c.Status == events.StatusTrue && c.ObservedGeneration >= target
}
