package render

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/rdd-project/rdd/internal/events"
)

// TimeFormat is how event and condition times appear in text output: UTC with
// milliseconds, fixed width so columns line up.
const TimeFormat = "2006-01-02T15:04:05.000Z07:00"

// EventLine is one line of `rdd events -o text`: "SEQ TIME TYPE summary".
func EventLine(e events.Envelope) string {
	return fmt.Sprintf("%-6d %s %-14s %s", e.Seq, e.Time.UTC().Format(TimeFormat), e.Type, EventSummary(e))
}

// EventSummary describes the payload of e in one line, e.g.
// "vm stopped→starting (start) gen=2". An undecodable payload is summarised
// by its decoding error rather than failing the listing.
func EventSummary(e events.Envelope) string {
	p, err := events.Decode(e)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	var b strings.Builder
	switch p := p.(type) {
	case *events.DaemonStarted:
		fmt.Fprintf(&b, "version=%s pid=%d", p.Version, p.PID)
		if p.VMDriver != "" {
			fmt.Fprintf(&b, " vmDriver=%s", p.VMDriver)
			if p.VMDriverReason != "" {
				fmt.Fprintf(&b, " (%s)", p.VMDriverReason)
			}
		}
	case *events.DaemonStopping:
		fmt.Fprintf(&b, "reason=%q", p.Reason)
	case *events.SpecChanged:
		fmt.Fprintf(&b, "gen=%d changed=%s", p.Generation, strings.Join(p.Changed, ","))
		writeSource(&b, p.Source)
	case *events.AppDeleted:
		b.WriteString("App deleted")
		writeSource(&b, p.Source)
	case *events.Transition:
		fmt.Fprintf(&b, "%s %s→%s (%s) gen=%d", p.Machine, p.From, p.To, p.Event, p.Generation)
		if p.Reason != "" {
			fmt.Fprintf(&b, " reason=%s", p.Reason)
		}
		writeFacts(&b, p.Facts)
		if p.Message != "" {
			fmt.Fprintf(&b, ": %s", oneLine(p.Message))
		}
	case *events.Observed:
		fmt.Fprintf(&b, "%s gen=%d", p.Machine, p.Generation)
		writeFacts(&b, p.Facts)
	case *events.Recovered:
		fmt.Fprintf(&b, "%s believed=%s found=%s", p.Machine, p.Believed, p.Found)
		if p.PID != 0 {
			fmt.Fprintf(&b, " pid=%d", p.PID)
		}
		if p.Message != "" {
			fmt.Fprintf(&b, ": %s", oneLine(p.Message))
		}
	case *events.EffectFailed:
		fmt.Fprintf(&b, "%s %s failed", p.Machine, p.Effect)
		if p.Generation != 0 {
			fmt.Fprintf(&b, " gen=%d", p.Generation)
		}
		fmt.Fprintf(&b, ": %s", oneLine(p.Message))
	default:
		fmt.Fprintf(&b, "%s", e.Data)
	}
	return b.String()
}

func writeSource(b *strings.Builder, s events.Source) {
	if s.Command != "" {
		fmt.Fprintf(b, " by %q", s.Command)
	}
	fmt.Fprintf(b, " uid=%d", s.UID)
	if s.PID != 0 {
		fmt.Fprintf(b, " pid=%d", s.PID)
	}
}

// writeFacts prints the non-zero facts a patch sets, so a legacy whole-facts
// payload prints as it always did.
func writeFacts(b *strings.Builder, f events.FactsPatch) {
	for _, kv := range []struct {
		k string
		v *int
	}{
		{"pid", f.PID}, {"restartCount", f.RestartCount}, {"port", f.Port},
		{"containers", f.Containers}, {"images", f.Images}, {"volumes", f.Volumes},
		{"ambiguousStreak", f.AmbiguousStreak},
	} {
		if kv.v != nil && *kv.v != 0 {
			b.WriteString(" " + kv.k + "=" + strconv.Itoa(*kv.v))
		}
	}
	if f.TemplateHash != nil && *f.TemplateHash != "" {
		fmt.Fprintf(b, " template=%q", *f.TemplateHash)
	}
	if f.RestartKey != nil && *f.RestartKey != "" {
		fmt.Fprintf(b, " restartKey=%q", *f.RestartKey)
	}
}

// ConditionChangeLine is one line of `rdd replay -o text`: the seq and time
// of the event that changed the condition, then its ConditionLine and
// observed generation.
func ConditionChangeLine(seq uint64, t time.Time, c events.Condition) string {
	return fmt.Sprintf("%-6d %s %s gen=%d", seq, t.UTC().Format(TimeFormat), ConditionLine(c), c.ObservedGeneration)
}
