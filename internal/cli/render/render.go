// Package render turns snapshots, conditions and events into the text, JSON
// and YAML that rdd commands print. It does no I/O beyond the writer it is
// given, and reads no clock: callers pass "now".
package render

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/rdd-project/rdd/internal/events"
)

// Format is an output format chosen with -o.
type Format string

// Output formats.
const (
	Text Format = "text"
	JSON Format = "json"
	YAML Format = "yaml"
)

// ParseFormat checks that s is one of allowed.
func ParseFormat(s string, allowed ...Format) (Format, error) {
	names := make([]string, len(allowed))
	for i, f := range allowed {
		if string(f) == s {
			return f, nil
		}
		names[i] = string(f)
	}
	return "", fmt.Errorf("invalid output format %q: valid formats: %s", s, strings.Join(names, ", "))
}

// WriteJSON writes v as one line of compact JSON. It uses json.Marshal, the
// encoding the daemon uses for GET /v1/status, so a snapshot prints the same
// bytes whichever side encoded it.
func WriteJSON(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode JSON: %w", err)
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// WriteYAML writes v as YAML (through its JSON form, so field names match).
func WriteYAML(w io.Writer, v any) error {
	b, err := yaml.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode YAML: %w", err)
	}
	_, err = w.Write(b)
	return err
}

// Age formats d the way kubectl does: 12s, 5m, 3h, 2d (one unit, rounded down).
func Age(d time.Duration) string {
	switch {
	case d < 0:
		return "0s"
	case d < time.Minute:
		return strconv.Itoa(int(d/time.Second)) + "s"
	case d < time.Hour:
		return strconv.Itoa(int(d/time.Minute)) + "m"
	case d < 48*time.Hour:
		return strconv.Itoa(int(d/time.Hour)) + "h"
	default:
		return strconv.Itoa(int(d/(24*time.Hour))) + "d"
	}
}

// Duration formats a duration for humans with at most two units: 850ms, 4.2s, 3m12s, 2h5m.
func Duration(d time.Duration) string {
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	case d < time.Hour:
		return d.Round(time.Second).String()
	default:
		return strings.TrimSuffix(d.Round(time.Minute).String(), "0s")
	}
}

// ConditionLine is the progress line of `rdd set`: "Type=Status: message (reason)".
func ConditionLine(c events.Condition) string {
	return fmt.Sprintf("%s=%s: %s (%s)", c.Type, c.Status, oneLine(c.Message), c.Reason)
}

// SameCondition reports whether a and b have equal status, reason and message,
// the fields whose change is reported (behavior.md §9.2 step 7).
func SameCondition(a, b events.Condition) bool {
	return a.Status == b.Status && a.Reason == b.Reason && a.Message == b.Message
}

// ChangedConditions returns the conditions of after that are new or whose
// status, reason or message differ from before, in after's order.
func ChangedConditions(before, after []events.Condition) []events.Condition {
	prev := events.Snapshot{Status: events.AppStatus{Conditions: before}}
	next := events.Snapshot{Status: events.AppStatus{Conditions: after}}
	var out []events.Condition
	for _, ch := range events.DiffConditions(&prev, &next) {
		// A change of observedGeneration alone is not news to a reader.
		if ch.New != nil && (ch.Old == nil || !SameCondition(*ch.Old, *ch.New)) {
			out = append(out, *ch.New)
		}
	}
	return out
}

// StatusText writes the human form of a snapshot: the conditions table, then
// the generation, spec, Kubernetes port and VM driver lines.
func StatusText(w io.Writer, s events.Snapshot, now time.Time) error {
	var b strings.Builder
	if !s.Exists {
		fmt.Fprintf(&b, "App does not exist (seq %d); create it with `rdd set` or `rdd start`\n", s.Seq)
		writeDaemon(&b, s.Daemon)
		_, err := io.WriteString(w, b.String())
		return err
	}
	rows := [][]string{{"TYPE", "STATUS", "REASON", "AGE", "MESSAGE"}}
	for _, c := range s.Status.Conditions {
		age := "-"
		if !c.LastTransitionTime.IsZero() {
			age = Age(now.Sub(c.LastTransitionTime))
		}
		rows = append(rows, []string{string(c.Type), string(c.Status), c.Reason, age, oneLine(c.Message)})
	}
	writeTable(&b, rows)
	fmt.Fprintf(&b, "\ngeneration:     %d (seq %d)\n", s.Generation, s.Seq)
	if s.Spec != nil {
		fmt.Fprintf(&b, "spec:           %s\n", SpecLine(s))
	}
	port := "-"
	if s.Status.KubernetesPort != 0 {
		port = strconv.Itoa(s.Status.KubernetesPort)
	}
	fmt.Fprintf(&b, "kubernetesPort: %s\n", port)
	writeDaemon(&b, s.Daemon)
	_, err := io.WriteString(w, b.String())
	return err
}

func writeDaemon(b *strings.Builder, d events.DaemonInfo) {
	if d.VMDriver == "" {
		return
	}
	fmt.Fprintf(b, "vmDriver:       %s", d.VMDriver)
	if d.VMDriverReason != "" {
		fmt.Fprintf(b, " (%s)", d.VMDriverReason)
	}
	b.WriteByte('\n')
}

// SpecLine renders the spec of s as PROP=VALUE pairs in `rdd set` syntax.
func SpecLine(s events.Snapshot) string {
	if s.Spec == nil {
		return ""
	}
	sp := s.Spec
	parts := []string{
		"running=" + strconv.FormatBool(sp.Running),
		"containerEngine.name=" + string(sp.ContainerEngine.Name),
		"kubernetes.enabled=" + strconv.FormatBool(sp.Kubernetes.Enabled),
	}
	if sp.Kubernetes.Version != "" {
		parts = append(parts, "kubernetes.version="+sp.Kubernetes.Version)
	}
	return strings.Join(parts, " ")
}

// writeTable left-aligns columns separated by two spaces; the last column is
// not padded.
func writeTable(b *strings.Builder, rows [][]string) {
	if len(rows) == 0 {
		return
	}
	widths := make([]int, len(rows[0]))
	for _, r := range rows {
		for i, cell := range r[:len(r)-1] {
			widths[i] = max(widths[i], len([]rune(cell)))
		}
	}
	for _, r := range rows {
		for i, cell := range r {
			if i == len(r)-1 {
				b.WriteString(cell)
				break
			}
			b.WriteString(cell)
			b.WriteString(strings.Repeat(" ", widths[i]-len([]rune(cell))+2))
		}
		b.WriteByte('\n')
	}
}

// Table writes rows (the first is the header) as aligned columns.
func Table(w io.Writer, rows [][]string) error {
	var b strings.Builder
	writeTable(&b, rows)
	_, err := io.WriteString(w, b.String())
	return err
}

// oneLine folds a multi-line message onto one line.
func oneLine(s string) string {
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	return strings.Join(strings.Fields(s), " ")
}
