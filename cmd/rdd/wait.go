package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rdd-project/rdd/internal/api/client"
	"github.com/rdd-project/rdd/internal/cli/exit"
	"github.com/rdd-project/rdd/internal/cli/render"
	"github.com/rdd-project/rdd/internal/events"
)

// heartbeatInterval bounds the silence of a wait: a user who sees nothing
// for longer assumes a hang. Ticks come more often so that the silence
// after a condition line, not the ticker's phase, decides when it is due.
const (
	heartbeatInterval = 5 * time.Second
	tickInterval      = time.Second
)

// errAppDeleted ends a wait whose App was deleted meanwhile.
var errAppDeleted = errors.New("the App was deleted while waiting for it to settle")

// ticker returns the heartbeat ticks of a wait and its stop function.
func (e *env) ticker() (<-chan time.Time, func()) {
	if e.newTicker != nil {
		return e.newTicker(tickInterval)
	}
	t := time.NewTicker(tickInterval)
	return t.C, t.Stop
}

// deadline returns a channel that fires after d and its stop function; d = 0
// never fires.
func (e *env) deadline(d time.Duration) (<-chan time.Time, func()) {
	if d <= 0 {
		return nil, func() {}
	}
	if e.newTimer != nil {
		return e.newTimer(d)
	}
	t := time.NewTimer(d)
	return t.C, func() { t.Stop() }
}

// waitSettled watches the App until Settled is True with observedGeneration ≥
// target and returns that snapshot. On stderr it prints a line for each
// condition at target or later whose status, reason or message changes
// (behavior.md §9.2 step 7, F14, F19) and, when nothing was printed for
// heartbeatInterval, a heartbeat naming the blocking condition. noop says the
// write changed nothing: the conditions of the first snapshot are then the
// state before the command, not news, and are not printed. A timeout of 0
// means no deadline.
func (e *env) waitSettled(ctx context.Context, target int64, timeout time.Duration, noop bool) (events.Snapshot, error) {
	c, err := e.client()
	if err != nil {
		return events.Snapshot{}, err
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	snaps := make(chan events.Snapshot)
	watchDone := make(chan error, 1)
	go func() { watchDone <- watchSnapshots(wctx, c, snaps) }()

	start := e.now()
	tick, stopTick := e.ticker()
	defer stopTick()
	expired, stopTimer := e.deadline(timeout)
	defer stopTimer()
	out := render.NewProgress(e.stderr, e.stderrTTY)
	defer out.Done()

	var (
		p       progress
		last    events.Snapshot
		have    bool
		lastOut = start // when the last line went out
	)
	for {
		select {
		case s := <-snaps:
			if !have && noop {
				p.seed(s)
			}
			last, have = s, true
			if !s.Exists {
				return last, errAppDeleted
			}
			for _, line := range p.update(s, target) {
				out.Line(line)
				lastOut = e.now()
			}
			if settledAt(s, target) {
				return s, nil
			}
		case <-tick:
			now := e.now()
			if now.Sub(lastOut) < heartbeatInterval {
				continue
			}
			lastOut = now
			blocking := events.Condition{Type: events.CondSettled, Status: events.StatusUnknown, Reason: "NoStatus", Message: "no status from the daemon yet"}
			if have {
				blocking = render.Blocking(last, target)
			}
			out.Heartbeat(render.WaitingLine(now.Sub(start), blocking))
		case <-expired:
			out.Done()
			return last, timeoutError(timeout, target, last, have, noop)
		case err := <-watchDone:
			if ctx.Err() != nil {
				return last, ctx.Err()
			}
			return last, fmt.Errorf("watch App state: %w", err)
		}
	}
}

// timeoutError is the post-mortem of a wait that reached its deadline: what
// blocks, and that the change stands (the daemon keeps working on it), so
// the user neither retries the write nor assumes it was rolled back.
func timeoutError(timeout time.Duration, target int64, last events.Snapshot, have, noop bool) error {
	state := fmt.Sprintf("the change was applied (generation %d) and the daemon is still working on it", target)
	if noop {
		state = fmt.Sprintf("nothing changed, and the daemon is still working on generation %d", target)
	}
	if !have {
		return &exit.Error{Code: exit.CodeTimeout, Err: fmt.Errorf("timed out after %s waiting for the App to settle, before the daemon's first status; %s; see rdd status", timeout, state)}
	}
	b := render.Blocking(last, target)
	msg := fmt.Sprintf("timed out after %s waiting for the App to settle: %s=%s, reason %s", timeout, b.Type, b.Status, b.Reason)
	if m := b.Message; m != "" {
		msg += ": " + m
	}
	return &exit.Error{Code: exit.CodeTimeout, Err: fmt.Errorf("%s; %s; run 'rdd why %s' for the history", msg, state, b.Type)}
}

// watchSnapshots sends the App's snapshots to out until ctx ends or the
// watch fails; a watch the daemon cut off as too slow resumes after the last
// snapshot read.
func watchSnapshots(ctx context.Context, c *client.Client, out chan<- events.Snapshot) error {
	var seen uint64
	for {
		w, err := c.Watch(ctx, seen)
		if err != nil {
			return err
		}
		err = forwardSnapshots(ctx, w, out, &seen)
		w.Close()
		if !client.IsTooSlow(err) || seen == 0 {
			return err
		}
	}
}

func forwardSnapshots(ctx context.Context, w *client.Watcher, out chan<- events.Snapshot, seen *uint64) error {
	for {
		s, err := w.Next()
		if err != nil {
			return err
		}
		*seen = s.Seq
		select {
		case out <- s:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// progress remembers the last reported state of each condition.
type progress struct {
	last map[events.ConditionType]events.Condition
}

// seed records s's conditions as already reported.
func (p *progress) seed(s events.Snapshot) {
	if p.last == nil {
		p.last = make(map[events.ConditionType]events.Condition)
	}
	for _, c := range s.Status.Conditions {
		p.last[c.Type] = c
	}
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
