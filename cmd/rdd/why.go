package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/rdd-project/rdd/internal/api"
	"github.com/rdd-project/rdd/internal/api/client"
	"github.com/rdd-project/rdd/internal/cli/render"
	"github.com/rdd-project/rdd/internal/events"
)

func newWhyCommand(e *env) *cobra.Command {
	var out outputFlags
	formats := []render.Format{render.Text, render.JSON}
	cmd := &cobra.Command{
		Use:   "why CONDITION",
		Short: "Explain how a condition got its current reason",
		Long: `
			Explain a condition of the App (Created, Running, ContainerEngineReady,
			KubernetesReady or Settled): its status and reason now, the event that
			set that reason, the spec change that event answers, and how long the
			condition spent in each reason since that spec change. It replays the
			daemon's event log (the log on disk when the daemon is not running,
			which the answer then says). When the daemon's
			retention policy removed the oldest events, the history starts at the
			oldest snapshot the daemon can rebuild, and the answer says so.`,
		Example: `
			rdd why Settled
			rdd why kubernetesready -o json`,
		ValidArgs: conditionNames(),
		Args:      usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := out.format(formats...)
			if err != nil {
				return err
			}
			t, err := parseConditionType(args[0])
			if err != nil {
				return usageErr(err)
			}
			l, err := e.readLog(cmd.Context(), func(c logReader) (daemonLog, error) { return fetchWhyLog(cmd.Context(), c, t) })
			if err != nil {
				return err
			}
			r, err := explain(l, t, e.now())
			if err != nil {
				return err
			}
			r.DaemonRunning = !l.Offline
			if l.Offline && f != render.JSON {
				fmt.Fprintf(e.stdout, "The rdd daemon of instance %s is not running; this is what its event log records.\n", e.paths.Instance)
			}
			if f == render.JSON {
				return render.WriteJSON(e.stdout, r)
			}
			return r.writeText(e.stdout, e.now())
		},
	}
	out.add(cmd, formats...)
	return cmd
}

// whyWindow is how many events before the reason event fetchWhyLog first
// looks through for the spec change; it quadruples until one turns up.
var whyWindow uint64 = 4096

// fetchWhyLog fetches the part of the log that why reads: from the latest
// spec change at or before the event that set t's reason (where its answer
// starts) to the head, onto the snapshot after that spec change. The
// rest of the log cannot change the answer, and reading all of it cost
// `rdd why` most of its time on a long log. It falls back to the whole log
// (fetchLogFrom) when no spec change precedes the reason or the retention
// policy removed events on the way.
func fetchWhyLog(ctx context.Context, c logReader, t events.ConditionType) (daemonLog, error) {
	cur, err := c.Status(ctx)
	if err != nil {
		return daemonLog{}, err
	}
	cond, ok := cur.Condition(t)
	if !cur.Exists || !ok {
		return fetchLogFrom(ctx, c, 0)
	}
	limit := cond.ReasonSeq
	if limit == 0 || limit > cur.Seq {
		limit = cur.Seq
	}
	var spec uint64 // seq of the latest SpecChanged at or before limit
	for w := whyWindow; spec == 0; w *= 4 {
		from := limit - min(w, limit)
		envs, err := listEvents(ctx, c, from, limit)
		if _, gone := client.ResumeSeq(err); gone {
			return fetchLogFrom(ctx, c, 0)
		}
		if err != nil {
			return daemonLog{}, err
		}
		for i := len(envs) - 1; i >= 0 && spec == 0; i-- {
			if envs[i].Type == events.TypeSpecChanged {
				spec = envs[i].Seq
			}
		}
		if spec == 0 && from == 0 {
			return fetchLogFrom(ctx, c, 0)
		}
	}
	base, err := c.StatusAt(ctx, api.At{Seq: spec})
	if _, gone := client.ResumeSeq(err); gone {
		return fetchLogFrom(ctx, c, 0)
	}
	if err != nil {
		return daemonLog{}, err
	}
	envs, err := listEvents(ctx, c, spec-1, 0)
	if _, gone := client.ResumeSeq(err); gone {
		return fetchLogFrom(ctx, c, 0)
	}
	if err != nil {
		return daemonLog{}, err
	}
	return daemonLog{Base: &base, Envs: envs}, nil
}

func conditionNames() []string {
	names := make([]string, len(events.ConditionOrder))
	for i, t := range events.ConditionOrder {
		names[i] = string(t)
	}
	return names
}

// parseConditionType matches s case-insensitively against the condition types.
func parseConditionType(s string) (events.ConditionType, error) {
	for _, t := range events.ConditionOrder {
		if strings.EqualFold(s, string(t)) {
			return t, nil
		}
	}
	return "", fmt.Errorf("unknown condition %q; valid conditions: %s", s, strings.Join(conditionNames(), ", "))
}

// whyReport is the answer of `rdd why`.
type whyReport struct {
	Condition  events.Condition `json:"condition"`
	Generation int64            `json:"generation"`
	// ReasonEvent set the current reason (the event at Condition.ReasonSeq).
	ReasonEvent *events.Envelope `json:"reasonEvent,omitempty"`
	// SpecChange is the latest SpecChanged at or before ReasonEvent.
	SpecChange *events.Envelope `json:"specChange,omitempty"`
	// Since is the seq from which Reasons are counted.
	Since   uint64       `json:"since"`
	Reasons []reasonTime `json:"reasons"`
	// Retention is set when the daemon's retention policy removed the
	// oldest events: the history starts at ReplayedFrom.
	Retention *retentionInfo `json:"retention,omitempty"`
	// Failures are failed effects still standing on the machines that feed
	// the condition (EffectFailed: a delete, an inspect, …).
	Failures []machineFailure `json:"failures,omitempty"`
	// DaemonRunning is false when the answer comes from the log on disk.
	DaemonRunning bool `json:"daemonRunning"`
}

type machineFailure struct {
	Machine events.Machine `json:"machine"`
	events.Failure
}

// feeding lists the machines whose state a condition is derived from.
func feeding(t events.ConditionType) []events.Machine {
	switch t {
	case events.CondCreated, events.CondRunning:
		return []events.Machine{events.MachineVM}
	case events.CondContainerEngineReady:
		return []events.Machine{events.MachineEngine}
	case events.CondKubernetesReady:
		return []events.Machine{events.MachineK3s, events.MachineKubeconfig}
	}
	return []events.Machine{events.MachineVM, events.MachineEngine, events.MachineK3s, events.MachineKubeconfig}
}

// retentionInfo says where a history cut by the retention policy starts.
type retentionInfo struct {
	RemovedThrough uint64 `json:"removedThrough"`
	ReplayedFrom   uint64 `json:"replayedFrom"`
}

// reasonTime is the total time the condition spent with one reason.
type reasonTime struct {
	Reason   string        `json:"reason"`
	Duration time.Duration `json:"durationNanos"`
	Current  bool          `json:"current,omitempty"`
}

// explain replays l and builds the report for condition t; now ends the
// current reason's time.
func explain(l daemonLog, t events.ConditionType, now time.Time) (whyReport, error) {
	type point struct {
		seq    uint64
		time   time.Time
		reason string
	}
	envs := l.Envs
	p, err := projectorFrom(l.Base)
	if err != nil {
		return whyReport{}, err
	}
	reasonNow := func() string {
		if c, ok := p.Condition(t); ok {
			return c.Reason
		}
		return "(absent)"
	}
	fold := l.toFold()
	timeline := make([]point, 0, len(fold)+1)
	if l.Base != nil {
		// When the base reason began went with the removed events: count
		// it from the base's own event, else from the first one folded.
		at := now
		if kept := len(envs) - len(fold); kept > 0 {
			at = envs[kept-1].Time
		} else if len(fold) > 0 {
			at = fold[0].Time
		}
		timeline = append(timeline, point{seq: l.Base.Seq, time: at, reason: reasonNow()})
	}
	for _, ev := range fold {
		if err := p.Apply(ev); err != nil {
			return whyReport{}, fmt.Errorf("replay event %d (%s): %w", ev.Seq, ev.Type, err)
		}
		timeline = append(timeline, point{seq: ev.Seq, time: ev.Time, reason: reasonNow()})
	}
	s := p.Snapshot()
	if !s.Exists {
		return whyReport{}, fmt.Errorf("the App does not exist (seq %d), so it has no %s condition", s.Seq, t)
	}
	c, ok := s.Condition(t)
	if !ok {
		return whyReport{}, fmt.Errorf("the App has no %s condition yet (seq %d)", t, s.Seq)
	}
	r := whyReport{Condition: c, Generation: s.Generation}
	for _, m := range feeding(t) {
		if f := s.Machine(m).Failure; f != nil {
			r.Failures = append(r.Failures, machineFailure{Machine: m, Failure: *f})
		}
	}
	if l.Base != nil && l.RemovedThrough > 0 {
		r.Retention = &retentionInfo{RemovedThrough: l.RemovedThrough, ReplayedFrom: l.Base.Seq}
	}
	limit := c.ReasonSeq
	if limit == 0 {
		limit = s.Seq
	}
	for i := range envs {
		ev := &envs[i]
		if ev.Seq == c.ReasonSeq {
			r.ReasonEvent = ev
		}
		if ev.Type == events.TypeSpecChanged && ev.Seq <= limit {
			r.SpecChange = ev
		}
	}
	switch {
	case r.SpecChange != nil:
		r.Since = r.SpecChange.Seq
	case len(envs) > 0:
		r.Since = envs[0].Seq
	}
	if l.Base != nil {
		r.Since = max(r.Since, l.Base.Seq) // nothing before the base folds
	}
	// Sum the time in each reason from Since to now, in order of first appearance.
	idx := map[string]int{}
	var cur *point
	add := func(reason string, d time.Duration) {
		i, ok := idx[reason]
		if !ok {
			i = len(r.Reasons)
			idx[reason] = i
			r.Reasons = append(r.Reasons, reasonTime{Reason: reason})
		}
		r.Reasons[i].Duration += d
	}
	for i := range timeline {
		pt := &timeline[i]
		if pt.seq < r.Since {
			continue
		}
		if cur != nil && cur.reason == pt.reason {
			continue
		}
		if cur != nil {
			add(cur.reason, pt.time.Sub(cur.time))
		}
		cur = pt
	}
	if cur != nil {
		add(cur.reason, max(now.Sub(cur.time), 0))
		r.Reasons[idx[cur.reason]].Current = true
	}
	return r, nil
}

func (r whyReport) writeText(w io.Writer, now time.Time) error {
	var b strings.Builder
	c := r.Condition
	fmt.Fprintf(&b, "%s=%s (%s)", c.Type, c.Status, c.Reason)
	if !c.LastTransitionTime.IsZero() {
		fmt.Fprintf(&b, ", status since %s (%s ago)", c.LastTransitionTime.UTC().Format(render.TimeFormat), render.Age(now.Sub(c.LastTransitionTime)))
	}
	fmt.Fprintf(&b, "\n  message: %s\n  observedGeneration: %d (App generation %d)\n", c.Message, c.ObservedGeneration, r.Generation)
	gone := r.Retention != nil
	switch {
	case r.ReasonEvent != nil:
		fmt.Fprintf(&b, "Reason %s was set by:\n  %s\n", c.Reason, render.EventLine(*r.ReasonEvent))
	case gone && c.ReasonSeq > 0 && c.ReasonSeq <= r.Retention.RemovedThrough:
		fmt.Fprintf(&b, "Reason %s was set by seq %d, which the retention policy removed.\n", c.Reason, c.ReasonSeq)
	}
	switch {
	case r.SpecChange != nil:
		fmt.Fprintf(&b, "It answers the spec change:\n  %s\n", render.EventLine(*r.SpecChange))
	case gone:
		b.WriteString("The spec change it answers was removed by the retention policy.\n")
	default:
		b.WriteString("No spec change precedes it.\n")
	}
	for _, f := range r.Failures {
		fmt.Fprintf(&b, "Failed effect (seq %d): %s %s failed: %s\n", f.Seq, f.Machine, f.Effect, f.Message)
	}
	if gone {
		fmt.Fprintf(&b, "Note: events up to seq %d were removed by the daemon's retention policy (RDD_RETAIN_EVENTS); replayed from its snapshot at seq %d.\n", r.Retention.RemovedThrough, r.Retention.ReplayedFrom)
	}
	fmt.Fprintf(&b, "Time in each reason since seq %d:\n", r.Since)
	rows := make([][]string, 0, len(r.Reasons))
	for _, rt := range r.Reasons {
		d := render.Duration(rt.Duration)
		if rt.Current {
			d += " (current)"
		}
		rows = append(rows, []string{"  " + rt.Reason, d})
	}
	if err := writeRows(&b, rows); err != nil {
		return err
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// writeRows aligns rows without a header.
func writeRows(w io.Writer, rows [][]string) error {
	if len(rows) == 0 {
		return nil
	}
	return render.Table(w, rows)
}
