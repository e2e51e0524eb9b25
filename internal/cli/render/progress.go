package render

import (
	"fmt"
	"io"
	"time"

	"github.com/rdd-project/rdd/internal/events"
)

// Progress writes the lines of a wait to w (stderr). Lasting lines (a
// condition changed) stay; a heartbeat replaces the previous heartbeat on a
// terminal, so a long wait shows one updating line there, and is a plain line
// anywhere else, where "\r" would garble logs.
type Progress struct {
	w   io.Writer
	tty bool
	// pending is true while a heartbeat without its newline is on screen.
	pending bool
}

// NewProgress returns a Progress writing to w; tty says w is a terminal.
func NewProgress(w io.Writer, tty bool) *Progress { return &Progress{w: w, tty: tty} }

// clearLine erases the heartbeat on a terminal: back to column 0, erase to
// the end of the line.
const clearLine = "\r\x1b[K"

// Line writes a lasting line.
func (p *Progress) Line(s string) {
	if p.pending {
		io.WriteString(p.w, clearLine)
		p.pending = false
	}
	fmt.Fprintln(p.w, s)
}

// Heartbeat writes s in place of the previous heartbeat on a terminal, else
// as a line.
func (p *Progress) Heartbeat(s string) {
	if !p.tty {
		fmt.Fprintln(p.w, s)
		return
	}
	io.WriteString(p.w, clearLine+s)
	p.pending = true
}

// Done erases a heartbeat left on a terminal, so what follows starts on a
// clean line.
func (p *Progress) Done() {
	if p.pending {
		io.WriteString(p.w, clearLine)
		p.pending = false
	}
}

// WaitingLine is the heartbeat of a wait: "waiting 35s: KubernetesReady=False
// Probing — message". Elapsed time is shown in whole seconds: tenths would
// make every heartbeat look like news.
func WaitingLine(elapsed time.Duration, blocking events.Condition) string {
	s := fmt.Sprintf("waiting %s: %s=%s %s", elapsed.Truncate(time.Second), blocking.Type, blocking.Status, blocking.Reason)
	if m := oneLine(blocking.Message); m != "" {
		s += " — " + m
	}
	return s
}

// Blocking returns the condition that keeps the App from settling at target.
// Settled forwards the reason of the condition it waits for (computeSettled),
// so that condition is the one whose reason Settled carries; when none does
// (ApplyingTemplate, a stale Settled), Settled itself is the answer.
func Blocking(s events.Snapshot, target int64) events.Condition {
	st, ok := s.Condition(events.CondSettled)
	if !ok {
		return events.Condition{Type: events.CondSettled, Status: events.StatusUnknown, Reason: "Absent", Message: "the daemon has not computed Settled yet"}
	}
	if st.ObservedGeneration < target {
		st.Message = fmt.Sprintf("still describes generation %d; the daemon has not evaluated generation %d yet", st.ObservedGeneration, target)
		return st
	}
	if st.Status == events.StatusTrue {
		return st
	}
	for _, t := range events.ConditionOrder {
		if t == events.CondSettled {
			continue
		}
		if c, ok := s.Condition(t); ok && c.Reason == st.Reason {
			return c
		}
	}
	return st
}
