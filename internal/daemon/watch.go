package daemon

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rdd-project/rdd/internal/api"
	"github.com/rdd-project/rdd/internal/events"
	"github.com/rdd-project/rdd/internal/store"
)

// checkpointLog is the optional part of the log used to answer `status --at`
// and old resumes without folding from seq 1.
type checkpointLog interface {
	CheckpointAtOrBefore(seq uint64) (uint64, []byte, bool, error)
}

// subscribe registers a watcher that receives every update with seq > since.
// The backlog comes from the ring when it covers since; otherwise it is folded
// from the log first. Registration happens under the writer lock, so nothing
// is missed or reordered between backlog and live updates.
func (w *writer) subscribe(ctx context.Context, since uint64) (backlog []update, s *subscriber, err error) {
	for attempt := 0; attempt < 3; attempt++ {
		w.mu.Lock()
		if w.closed {
			w.mu.Unlock()
			return nil, nil, errWriterStopped
		}
		cur := w.snap.Seq
		covered := since >= cur || (len(w.ring) > 0 && w.ring[0].env.Seq <= since+1)
		if covered {
			for _, u := range w.ring {
				if u.env.Seq > since {
					backlog = append(backlog, u)
				}
			}
			s = &subscriber{ch: make(chan *update, watcherBuffer)}
			w.subs[s] = struct{}{}
			w.mu.Unlock()
			return backlog, s, nil
		}
		w.mu.Unlock()
		// Fold the part the ring no longer holds, then try again from there.
		old, err := w.foldRange(ctx, since, cur)
		if err != nil {
			return nil, nil, err
		}
		backlog = append(backlog, old...)
		since = cur
	}
	return nil, nil, errors.New("watch: the log grows faster than a resume can catch up; retry")
}

func (w *writer) unsubscribe(s *subscriber) {
	w.mu.Lock()
	if !s.closed {
		s.closed = true
		delete(w.subs, s)
	}
	w.mu.Unlock()
}

// foldRange returns the updates for seq in (since, to], folded from the log.
func (w *writer) foldRange(ctx context.Context, since, to uint64) ([]update, error) {
	p, err := w.projectorAt(since)
	if err != nil {
		return nil, err
	}
	var out []update
	err = w.log.Range(since, int(to-since), func(e events.Envelope) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := p.Apply(e); err != nil {
			return fmt.Errorf("fold seq %d: %w", e.Seq, err)
		}
		out = append(out, update{env: e, snap: p.Snapshot()})
		return nil
	})
	return out, err
}

// projectorAt returns a projector holding the snapshot at seq.
func (w *writer) projectorAt(seq uint64) (*events.Projector, error) {
	p, err := w.projectorFromCheckpoint(seq)
	if err != nil {
		return nil, w.explainCompacted(err)
	}
	return p, nil
}

func (w *writer) projectorFromCheckpoint(seq uint64) (*events.Projector, error) {
	p := events.NewProjector()
	from := uint64(0)
	if cl, ok := w.log.(checkpointLog); ok && seq > 0 {
		cseq, data, found, err := cl.CheckpointAtOrBefore(seq)
		if err != nil {
			return nil, err
		}
		if found {
			snap, err := events.UnmarshalCheckpoint(data)
			if err != nil {
				return nil, fmt.Errorf("read checkpoint at seq %d: %w", cseq, err)
			}
			if err := p.Restore(snap); err != nil {
				return nil, fmt.Errorf("restore checkpoint at seq %d: %w", cseq, err)
			}
			from = cseq
		}
	}
	if seq > from {
		err := w.log.Range(from, int(seq-from), func(e events.Envelope) error { return p.Apply(e) })
		if err != nil {
			return nil, fmt.Errorf("fold the log up to seq %d: %w", seq, err)
		}
	}
	return p, nil
}

// Watch implements api.Backend.
func (w *writer) Watch(ctx context.Context, since uint64, fn func(events.Snapshot) error) error {
	var first []events.Snapshot
	backlog, s, err := w.subscribeForWatch(ctx, since, &first)
	if err != nil {
		return err
	}
	defer w.unsubscribe(s)
	for _, sn := range first {
		if err := fn(sn); err != nil {
			return err
		}
	}
	for _, u := range backlog {
		if err := fn(u.snap); err != nil {
			return err
		}
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case u, ok := <-s.ch:
			if !ok {
				return s.err
			}
			if err := fn(u.snap); err != nil {
				return err
			}
		}
	}
}

// subscribeForWatch: since == 0 means "current snapshot first, then changes".
func (w *writer) subscribeForWatch(ctx context.Context, since uint64, first *[]events.Snapshot) ([]update, *subscriber, error) {
	if since > 0 {
		return w.subscribe(ctx, since)
	}
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil, nil, errWriterStopped
	}
	*first = append(*first, w.snap)
	s := &subscriber{ch: make(chan *update, watcherBuffer)}
	w.subs[s] = struct{}{}
	w.mu.Unlock()
	return nil, s, nil
}

// Events implements api.Backend.
func (w *writer) Events(ctx context.Context, q api.EventQuery, fn func(events.Envelope) error) error {
	if err := w.compactedError(q.Since); err != nil {
		return err
	}
	sent := 0
	last := q.Since
	limitHit := func() bool { return q.Limit > 0 && sent >= q.Limit }
	// Historical part straight from the log.
	to := w.Snapshot().Seq
	if to > last {
		n := int(to - last)
		if q.Limit > 0 && q.Limit < n {
			n = q.Limit
		}
		err := w.log.Range(last, n, func(e events.Envelope) error {
			if err := fn(e); err != nil {
				return err
			}
			sent++
			last = e.Seq
			return nil
		})
		if err != nil {
			// Possibly compacted while we read: say where the log starts now.
			return w.explainCompacted(err)
		}
	}
	if !q.Follow || limitHit() {
		return nil
	}
	backlog, s, err := w.subscribe(ctx, last)
	if err != nil {
		return err
	}
	defer w.unsubscribe(s)
	emit := func(u update) error {
		if u.env.Seq <= last {
			return nil
		}
		last = u.env.Seq
		sent++
		return fn(u.env)
	}
	for _, u := range backlog {
		if err := emit(u); err != nil {
			return err
		}
		if limitHit() {
			return nil
		}
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case u, ok := <-s.ch:
			if !ok {
				return s.err
			}
			if err := emit(*u); err != nil {
				return err
			}
			if limitHit() {
				return nil
			}
		}
	}
}

// SnapshotAt implements api.Backend.
func (w *writer) SnapshotAt(ctx context.Context, at api.At) (events.Snapshot, error) {
	cur := w.Snapshot()
	seq := at.Seq
	if seq == 0 {
		if at.Time.IsZero() {
			return cur, nil
		}
		var err error
		if seq, err = w.seqAtTime(ctx, at.Time); err != nil {
			return events.Snapshot{}, err
		}
		if seq == 0 {
			return events.NewProjector().Snapshot(), nil
		}
	}
	if seq >= cur.Seq {
		return cur, nil
	}
	w.mu.RLock()
	for _, u := range w.ring {
		if u.env.Seq == seq {
			w.mu.RUnlock()
			return u.snap, nil
		}
	}
	w.mu.RUnlock()
	p, err := w.projectorAt(seq)
	if err != nil {
		return events.Snapshot{}, err
	}
	return p.Snapshot(), nil
}

// seqAtTime finds the last event appended at or before t: a binary search
// of the log's time index where the log has one (the store does), a scan
// otherwise (test fakes).
func (w *writer) seqAtTime(ctx context.Context, t time.Time) (uint64, error) {
	if ti, ok := w.log.(store.TimeIndex); ok {
		seq, err := ti.SeqAtTime(t)
		if err != nil {
			return 0, w.explainCompacted(err)
		}
		return seq, nil
	}
	var seq uint64
	stop := errors.New("stop")
	err := w.log.Range(0, 0, func(e events.Envelope) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if e.Time.After(t) {
			return stop
		}
		seq = e.Seq
		return nil
	})
	if err != nil && !errors.Is(err, stop) {
		return 0, err
	}
	return seq, nil
}
