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

// catchUp returns the updates with seq > since that the ring no longer
// holds, folded from the log, and the cursor from which the ring takes
// over. A since the ring covers costs nothing.
func (w *writer) catchUp(ctx context.Context, since uint64) (backlog []update, cursor uint64, err error) {
	for attempt := 0; attempt < 3; attempt++ {
		w.mu.RLock()
		closed := w.closed
		_, covered := w.ringAfterLocked(since, 0, nil)
		cur := w.snap.Seq
		w.mu.RUnlock()
		switch {
		case closed:
			return nil, 0, errWriterStopped
		case covered:
			return backlog, since, nil
		}
		// Fold the part the ring no longer holds, then try again from there.
		old, err := w.foldRange(ctx, since, cur)
		if err != nil {
			return nil, 0, err
		}
		backlog = append(backlog, old...)
		since = cur
	}
	return nil, 0, errors.New("watch: the log grows faster than a resume can catch up; retry")
}

// next calls fn with the updates after cursor, at most max, waiting for
// the next publish when there are none, and returns the seq of the last.
// It fails with api.ErrWatcherTooSlow when the ring has moved past cursor,
// errWriterStopped after shutdown, and ctx's error when ctx ends first.
// fn runs under the writer's read lock: it only copies.
func (w *writer) next(ctx context.Context, cursor uint64, max int, fn func(*update)) (uint64, error) {
	var last uint64
	collect := func(u *update) { last = u.env.Seq; fn(u) }
	for {
		w.mu.RLock()
		n, covered := w.ringAfterLocked(cursor, max, collect)
		closed := w.closed
		w.mu.RUnlock()
		switch {
		case n > 0:
			return last, nil
		case closed:
			return 0, errWriterStopped
		case !covered:
			return 0, api.ErrWatcherTooSlow
		}
		if err := w.await(ctx, cursor); err != nil {
			return 0, err
		}
	}
}

// await returns once an update follows cursor or the writer stopped (next
// then reports it), or with ctx's error.
func (w *writer) await(ctx context.Context, cursor uint64) error {
	for {
		w.mu.RLock()
		ready := w.snap.Seq > cursor || w.closed
		changed := w.changed
		w.mu.RUnlock()
		if ready {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		}
	}
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

// Watch implements api.Backend. A waiting watcher holds its cursor and a
// small batch buffer, no queue.
func (w *writer) Watch(ctx context.Context, since uint64, fn func([]events.Snapshot) error) error {
	return w.WatchReady(ctx, since, nil, fn)
}

// WatchReady implements api.ReadyWatcher: Watch, calling ready (when
// non-nil) between the wait for updates and their collection.
func (w *writer) WatchReady(ctx context.Context, since uint64, ready func() error, fn func([]events.Snapshot) error) error {
	var first []update
	cursor := since
	if since == 0 {
		w.mu.RLock()
		snap, closed := w.snap, w.closed
		w.mu.RUnlock()
		if closed {
			return errWriterStopped
		}
		first, cursor = []update{{snap: snap}}, snap.Seq
	} else {
		var err error
		if first, cursor, err = w.catchUp(ctx, since); err != nil {
			return err
		}
	}
	for len(first) > 0 {
		n := min(len(first), maxWatchBatch)
		batch := make([]events.Snapshot, n)
		for i := range batch {
			batch[i] = first[i].snap
		}
		if err := fn(batch); err != nil {
			return err
		}
		first = first[n:]
	}
	// The batch buffer is reused: a change is a burst of updates for every
	// watcher, and an allocation per watcher per update made the garbage
	// collector (which scans every watcher's stack) a quarter of the work.
	var batch []events.Snapshot
	add := func(u *update) { batch = append(batch, u.snap) }
	for {
		if ready != nil {
			if err := w.await(ctx, cursor); err != nil {
				return err
			}
			if err := ready(); err != nil {
				return err
			}
		}
		last, err := w.next(ctx, cursor, maxWatchBatch, add)
		if err != nil {
			return err
		}
		cursor = last
		if err := fn(batch); err != nil {
			return err
		}
		clear(batch) // the snapshots' maps stay reachable otherwise
		if batch = batch[:0]; cap(batch) > keptWatchBatch {
			batch = nil
		}
	}
}

// keptWatchBatch bounds the batch buffer a watcher keeps between batches.
const keptWatchBatch = 8

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
	backlog, cursor, err := w.catchUp(ctx, last)
	if err != nil {
		return err
	}
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
	var ups []update
	add := func(u *update) { ups = append(ups, *u) }
	for {
		ups = ups[:0]
		last, err := w.next(ctx, cursor, maxWatchBatch, add)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		cursor = last
		for _, u := range ups {
			if err := emit(u); err != nil {
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
