package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/rdd-project/rdd/internal/api"
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
	// noopMessage, when set, is printed when the write changed nothing.
	noopMessage string
	out         outputFlags
	// format is out's format once parsed; "" prints no result (rdd run).
	format render.Format
	// yes applies a change that restarts the machine without asking;
	// confirm says the command asks at all (set).
	yes, confirm bool
}

// resultFormats are the -o values of set, start and stop.
var resultFormats = []render.Format{render.Text, render.JSON, render.YAML}

// defaultWaitTimeout is the --timeout default of set, start, stop and run.
const defaultWaitTimeout = 5 * time.Minute

func addWaitFlags(cmd *cobra.Command, o *waitOptions) {
	cmd.Flags().BoolVar(&o.dryRun, "dry-run", false, "validate the change in the daemon and print what would change; writes nothing, not even an absent App")
	cmd.Flags().BoolVar(&o.wait, "wait", true, "wait until the App is settled at the new generation")
	cmd.Flags().DurationVar(&o.timeout, "timeout", defaultWaitTimeout, "how long to wait; 0 means no limit")
	o.out.add(cmd, resultFormats...)
	cmd.Flags().Lookup("output").Usage += " (json and yaml print the result: generation, seq, changed keys, final conditions)"
}

// parseFormat checks -o; commands call it before anything else.
func (o *waitOptions) parseFormat() error {
	f, err := o.out.format(resultFormats...)
	o.format = f
	return err
}

// setResult is what set, start and stop print with -o json|yaml.
type setResult struct {
	Generation int64 `json:"generation"`
	// Seq is the SpecChanged event's seq, 0 when nothing changed.
	Seq     uint64   `json:"seq"`
	Changed []string `json:"changed"`
	Created bool     `json:"created,omitempty"`
	DryRun  bool     `json:"dryRun,omitempty"`
	// Changes are the changed properties' old and new values; Restart says
	// applying the change restarts the running machine, which then held
	// Containers containers.
	Changes    []api.Change `json:"changes,omitempty"`
	Restart    bool         `json:"restart,omitempty"`
	Containers int          `json:"containers,omitempty"`
	// Settled is false when the command did not wait (--wait=false, a dry
	// run); Conditions are then absent.
	Settled    bool               `json:"settled"`
	Conditions []events.Condition `json:"conditions,omitempty"`
}

// printResult prints r in the data formats; text has its own lines.
func (e *env) printResult(f render.Format, r setResult) error {
	if r.Changed == nil {
		r.Changed = []string{}
	}
	switch f {
	case render.JSON:
		return render.WriteJSON(e.stdout, r)
	case render.YAML:
		return render.WriteYAML(e.stdout, r)
	}
	return nil
}

func newSetCommand(e *env) *cobra.Command {
	var (
		o    waitOptions
		list bool
	)
	cmd := &cobra.Command{
		Use:   "set [--dry-run] [--wait=BOOL] [--timeout=DUR] PROPERTY=VALUE... | set --list [PROPERTY...]",
		Short: "Change the App spec and wait until the App has settled",
		Long: `
			Set properties of the App spec, creating the App if it does not exist,
			then wait until the Settled condition is True at the new generation.
			While waiting, each condition change is printed on stderr as
			"Type=Status: message (reason)", and after 5 s without one a line
			"waiting 35s: Type=Status Reason — message" names the condition
			that blocks (on a terminal, one line updated in place).

			The daemon validates the change: an unknown property or a bad value
			is rejected (exit 3) and nothing is written. A value is split from
			its property at the first "="; an empty value clears a string
			property. When a property is given twice, the last one wins.
			A wait that reaches --timeout exits 4 and names the blocking
			condition; the change stays applied and the daemon keeps working on it.

			--dry-run validates the change and prints each property's old and
			new value and whether applying it restarts the machine, then exits
			without waiting. It writes nothing: an absent App stays absent
			(the reference creates it, F17; rdd deliberately does not).

			A change that restarts the machine (switching the engine; with a
			VM, any change of its template) stops the containers in it. When
			containers run, set asks before applying such a change if stdin and
			stderr are terminals; --yes applies it without asking, and scripts
			(no terminal, or --wait=false) are never asked, only warned on stderr.

			--list prints the values each property accepts (with PROPERTY, one
			value a line: for kubernetes.version the bundled versions, newest
			first, then the channels) and needs no daemon.` + propertiesHelp(),
		Example: `
			rdd set running=true
			rdd set kubernetes.enabled=true kubernetes.version=1.33
			rdd set --wait=false containerEngine.name=containerd
			rdd set --dry-run kubernetes.version=1.32.2
			rdd set --list kubernetes.version`,
		Args: func(cmd *cobra.Command, args []string) error {
			if list {
				return nil
			}
			return usageArgs(cobra.MinimumNArgs(1))(cmd, args)
		},
		ValidArgsFunction: completeSet,
		RunE: func(cmd *cobra.Command, args []string) error {
			if list {
				return e.writeValues(args)
			}
			props, err := spec.ParseAssignments(args)
			if err != nil {
				return usageErr(err)
			}
			if err := o.parseFormat(); err != nil {
				return err
			}
			if err := e.ensureDaemon(cmd.Context()); err != nil {
				return err
			}
			return e.applySpec(cmd.Context(), props, o, "rdd set "+strings.Join(args, " "))
		},
	}
	addWaitFlags(cmd, &o)
	o.confirm = true
	cmd.Flags().BoolVarP(&o.yes, "yes", "y", false, "apply a change that restarts the machine without asking")
	cmd.Flags().BoolVar(&list, "list", false, "print the values the properties accept, and change nothing")
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
	asked := false
	if o.confirm && !o.dryRun && !o.yes && o.wait && e.stdinTTY && e.stderrTTY {
		pre, err := c.Set(ctx, api.SetRequest{Set: props, DryRun: true, Command: command})
		if err != nil {
			return explainRejection(err, props)
		}
		if pre.Restart && pre.Containers > 0 {
			if err := e.confirmRestart(pre); err != nil {
				return err
			}
			asked = true
		}
	}
	resp, err := c.Set(ctx, api.SetRequest{Set: props, DryRun: o.dryRun, Command: command})
	if err != nil {
		return explainRejection(err, props)
	}
	r := setResult{Generation: resp.Generation, Seq: resp.Seq, Changed: resp.Changed, Created: resp.Created, DryRun: o.dryRun,
		Changes: resp.Changes, Restart: resp.Restart, Containers: resp.Containers}
	data := o.format == render.JSON || o.format == render.YAML
	if o.dryRun && data {
		return e.printResult(o.format, r)
	}
	if o.dryRun {
		return e.writeDryRun(resp)
	}
	if resp.Restart && resp.Containers > 0 && !asked {
		fmt.Fprintf(e.stderr, "Warning: %s.\n", restartText(resp))
	}
	// Seq 0 is the daemon's word for "nothing changed" (api.SetResponse).
	noop := resp.Seq == 0
	if noop && o.noopMessage != "" && !data {
		if _, err := fmt.Fprintln(e.stdout, o.noopMessage); err != nil {
			return err
		}
	}
	if !o.wait {
		return e.printResult(o.format, r)
	}
	s, err := e.waitSettled(ctx, resp.Generation, o.timeout, noop)
	if err != nil {
		return err
	}
	r.Settled, r.Conditions = true, s.Status.Conditions
	return e.printResult(o.format, r)
}

// writeDryRun prints a dry run's answer: what would change, each
// property's old and new value, and whether the machine would restart.
func (e *env) writeDryRun(resp api.SetResponse) error {
	var b strings.Builder
	changed := "no change"
	if len(resp.Changed) > 0 {
		changed = "would change " + strings.Join(resp.Changed, ", ")
	}
	fmt.Fprintf(&b, "dry run: %s (generation %d)\n", changed, resp.Generation)
	w := 0
	for _, c := range resp.Changes {
		w = max(w, len(c.Property))
	}
	for _, c := range resp.Changes {
		fmt.Fprintf(&b, "  %-*s  %s → %s\n", w, c.Property, quoteEmpty(c.Old), quoteEmpty(c.New))
	}
	switch {
	case resp.Restart:
		b.WriteString(restartText(resp) + "\n")
	case len(resp.Changes) > 0:
		b.WriteString("applying it does not restart the machine\n")
	}
	_, err := io.WriteString(e.stdout, b.String())
	return err
}

// quoteEmpty shows an empty value as "" rather than as nothing.
func quoteEmpty(s string) string {
	if s == "" {
		return `""`
	}
	return s
}

// restartText says that applying resp restarts the machine and what that
// stops. The engine counts its containers, running or not: the text does
// not claim they all run.
func restartText(resp api.SetResponse) string {
	if resp.Containers == 0 {
		return "applying it restarts the machine"
	}
	return fmt.Sprintf("applying it restarts the machine, stopping the containers in it (%d)", resp.Containers)
}

// confirmRestart asks on the terminal before a change restarts the machine
// with containers in it; anything but y or yes declines.
func (e *env) confirmRestart(pre api.SetResponse) error {
	fmt.Fprintf(e.stderr, "Warning: %s.\nApply it? [y/N] ", restartText(pre))
	line, _ := bufio.NewReader(e.stdin).ReadString('\n')
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return nil
	}
	return errors.New("not applied: the change would restart the machine and stop its containers; nothing was written (run again with --yes to apply it without asking)")
}
