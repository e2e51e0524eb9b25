package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/rdd-project/rdd/internal/cli/render"
	"github.com/rdd-project/rdd/internal/events"
)

func newWhyCommand(e *env) *cobra.Command {
	var out outputFlags
	formats := []render.Format{render.Text, render.JSON}
	cmd := &cobra.Command{
		Use:   "why CONDITION",
		Short: "Explain how a condition got its current reason",
		Long: doc(`
			Explain a condition of the App (Created, Running, ContainerEngineReady,
			KubernetesReady or Settled): its status and reason now, the event that
			set that reason, the spec change that event answers, and how long the
			condition spent in each reason since that spec change. It replays the
			daemon's event log, so it needs a running daemon.`),
		Example: example(`
			rdd why Settled
			rdd why kubernetesready -o json`),
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
			envs, err := e.fetchEvents(cmd.Context(), 0)
			if err != nil {
				return err
			}
			r, err := explain(envs, t, e.now())
			if err != nil {
				return err
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
}

// reasonTime is the total time the condition spent with one reason.
type reasonTime struct {
	Reason   string        `json:"reason"`
	Duration time.Duration `json:"durationNanos"`
	Current  bool          `json:"current,omitempty"`
}

// explain replays envs and builds the report for condition t; now ends the
// current reason's time.
func explain(envs []events.Envelope, t events.ConditionType, now time.Time) (whyReport, error) {
	type point struct {
		seq    uint64
		time   time.Time
		reason string
	}
	timeline := make([]point, 0, len(envs))
	p := events.NewProjector()
	for _, ev := range envs {
		if err := p.Apply(ev); err != nil {
			return whyReport{}, fmt.Errorf("replay event %d (%s): %w", ev.Seq, ev.Type, err)
		}
		pt := point{seq: ev.Seq, time: ev.Time, reason: "(absent)"}
		snap := p.Snapshot()
		if c, ok := snap.Condition(t); ok {
			pt.reason = c.Reason
		}
		timeline = append(timeline, pt)
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
	if r.SpecChange != nil {
		r.Since = r.SpecChange.Seq
	} else if len(envs) > 0 {
		r.Since = envs[0].Seq
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
	if r.ReasonEvent != nil {
		fmt.Fprintf(&b, "Reason %s was set by:\n  %s\n", c.Reason, render.EventLine(*r.ReasonEvent))
	}
	if r.SpecChange != nil {
		fmt.Fprintf(&b, "It answers the spec change:\n  %s\n", render.EventLine(*r.SpecChange))
	} else {
		b.WriteString("No spec change precedes it.\n")
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
