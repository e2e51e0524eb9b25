package daemon

import (
	"context"
	"time"

	"go.uber.org/zap"
)

// A controller is driven by one loop: it decides from the snapshot and its
// own retry state (a pure function), then performs what it decided and
// appends the outcome. The loop below is the only place that waits.
type reconciler interface {
	// step decides and acts at most once. moved reports whether anything
	// was appended, so the loop knows to decide again.
	step(ctx context.Context) (moved bool, err error)
	// wakeAt is when the controller wants to decide again although nothing
	// changed (a retry or a crash-loop delay); zero means never.
	wakeAt() time.Time
}

// maxStepsPerPass bounds one pass, so a decision that keeps moving (a bug)
// cannot starve the loop's other inputs; the next kick resumes it.
const maxStepsPerPass = 32

// Retry delays after a failed step or effect: from retryMin, doubling to retryMax.
const (
	retryMin = 500 * time.Millisecond
	retryMax = 30 * time.Second
)

// backoff is a doubling delay between retryMin and retryMax.
type backoff struct {
	cur time.Duration
}

// next returns the delay to wait now and doubles it for the next failure.
func (b *backoff) next() time.Duration {
	switch {
	case b.cur == 0:
		b.cur = retryMin
	case b.cur < retryMax:
		b.cur = min(2*b.cur, retryMax)
	}
	return b.cur
}

func (b *backoff) reset() { b.cur = 0 }

// loop is the shared controller runtime: passes on every commit (kick), on
// messages from the controller's own watchers (inbox), and when the
// controller's wake time comes. A step that fails without an outcome in the
// log (the append itself failed) is retried with backoff.
type loop struct {
	name   string
	r      reconciler
	kick   <-chan struct{}
	inbox  chan func(context.Context)
	logger *zap.Logger

	failures backoff
	retryAt  time.Time // after a failed step; zero when none
}

func newLoop(name string, r reconciler, kick <-chan struct{}, logger *zap.Logger) *loop {
	return &loop{name: name, r: r, kick: kick, inbox: make(chan func(context.Context), 64), logger: logger}
}

// post hands fn to the loop's goroutine, which owns the controller's state.
// It gives up when ctx ends, so a watcher never blocks a stopped loop.
func (l *loop) post(ctx context.Context, fn func(context.Context)) {
	select {
	case l.inbox <- fn:
	case <-ctx.Done():
	}
}

func (l *loop) run(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		l.pass(ctx)
		if at := l.nextWake(); !at.IsZero() {
			timer.Reset(time.Until(at))
		}
		select {
		case <-ctx.Done():
			return
		case <-l.kick:
		case fn := <-l.inbox:
			fn(ctx)
		case <-timer.C:
		}
		timer.Stop()
	}
}

func (l *loop) nextWake() time.Time { return earliest(l.r.wakeAt(), l.retryAt) }

func (l *loop) pass(ctx context.Context) {
	if !l.retryAt.IsZero() && time.Now().Before(l.retryAt) {
		return
	}
	l.retryAt = time.Time{}
	for i := 0; i < maxStepsPerPass && ctx.Err() == nil; i++ {
		moved, err := l.r.step(ctx)
		if err != nil {
			if ctx.Err() == nil {
				d := l.failures.next()
				l.retryAt = time.Now().Add(d)
				l.logger.Error(l.name+" step failed; retrying", zap.Duration("in", d), zap.Error(err))
			}
			return
		}
		l.failures.reset()
		if !moved {
			return
		}
	}
}

// earliest is the earlier of two wake times, where zero means never.
func earliest(a, b time.Time) time.Time {
	switch {
	case a.IsZero():
		return b
	case b.IsZero() || a.Before(b):
		return a
	}
	return b
}
