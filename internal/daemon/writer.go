package daemon

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/rdd-project/rdd/internal/api"
	"github.com/rdd-project/rdd/internal/events"
	"github.com/rdd-project/rdd/internal/spec"
	"github.com/rdd-project/rdd/internal/store"
)

// eventLog is what the writer needs of the store.
type eventLog interface {
	Append(envs ...events.Envelope) ([]events.Envelope, error)
	Range(since uint64, limit int, fn func(events.Envelope) error) error
	LastSeq() uint64
	SaveCheckpoint(seq uint64, data []byte) error
}

// update is one committed event and the snapshot right after it.
type update struct {
	env  events.Envelope
	snap events.Snapshot
}

// ringSize bounds the recent updates kept in memory for resuming watchers;
// older resumes are folded from the log.
const ringSize = 1024

// defaultCheckpointEvery is how many events may pass between checkpoints,
// which bounds the replay at start-up.
const defaultCheckpointEvery = 4096

// maxWatchBatch bounds the snapshots handed to a watch's fn at once, and so
// the bytes one stream write carries.
const maxWatchBatch = 64

// errWriterStopped is returned to requests that arrive after shutdown.
var errWriterStopped = errors.New("daemon is shutting down")

// writer is the single owner of appends and of the current snapshot
// (design.md principle 4). Controllers and API handlers send it requests; it
// validates, appends to the log, folds into the projector, and publishes each
// resulting snapshot to watchers in seq order.
//
// Fan-out is a broadcast, so that a commit costs the same with one watcher
// or a thousand: publish appends to the ring and closes changed; each
// watcher keeps its own cursor (the last seq it was given), reads what
// follows it from the ring and waits on changed when there is nothing. A
// watcher whose next seq has left the ring fell more than ringSize behind
// and is cut off (api.ErrWatcherTooSlow): the ring is the bounded buffer
// of design.md §6, shared by every watcher instead of one per watcher.
//
// Lock order: mu guards snap, ring, changed and closed.
type writer struct {
	log    eventLog
	proj   *events.Projector
	clock  func() time.Time
	logger *zap.Logger
	reqs   chan writeReq
	done   chan struct{}

	mu              sync.RWMutex
	snap            events.Snapshot
	ring            []update      // the last ringSize updates, a circular buffer
	ringHead        int           // index of the oldest update once ring is full
	changed         chan struct{} // closed and replaced by every publish
	kicks           []chan struct{}
	sinceCheckpoint int
	closed          bool

	// checkpointEvery and retain are set before run starts. retain > 0 keeps
	// that many events before the latest checkpoint and compacts the rest
	// (design.md §2); 0 keeps everything.
	checkpointEvery int
	retain          uint64

	// lastTime is the time of the newest event in the log; commits are
	// stamped no earlier, so event times never decrease with seq and `status
	// --at TIME` can binary-search them (store.TimeIndex) even when the wall
	// clock steps back. Only run's goroutine touches it after newWriter.
	lastTime time.Time
}

type writeReq struct {
	ctx      context.Context
	payloads []events.Payload
	// spec, when non-nil, is a spec change computed against the current
	// snapshot inside the writer, so concurrent sets serialise cleanly.
	spec  *specReq
	reply chan writeResult
}

type specReq struct {
	req api.SetRequest
	src api.Source
}

type writeResult struct {
	envs []events.Envelope
	set  api.SetResponse
	err  error
}

func newWriter(log eventLog, proj *events.Projector, clock func() time.Time, logger *zap.Logger) *writer {
	return &writer{
		log: log, proj: proj, clock: clock, logger: logger,
		reqs: make(chan writeReq, 64), done: make(chan struct{}),
		snap: proj.Snapshot(), ring: make([]update, 0, ringSize), changed: make(chan struct{}),
		checkpointEvery: defaultCheckpointEvery,
		lastTime:        newestTime(log),
	}
}

// newestTime is the time of the log's newest event, zero when it has none or
// it cannot be read (then the first commit's clock reading starts the order).
func newestTime(log eventLog) time.Time {
	g, ok := log.(interface {
		Get(seq uint64) (events.Envelope, error)
	})
	if !ok || log.LastSeq() == 0 {
		return time.Time{}
	}
	e, err := g.Get(log.LastSeq())
	if err != nil {
		return time.Time{}
	}
	return e.Time
}

// kick returns a channel that receives a signal after every commit. Each
// controller takes one; signals coalesce.
func (w *writer) kick() <-chan struct{} {
	ch := make(chan struct{}, 1)
	w.mu.Lock()
	w.kicks = append(w.kicks, ch)
	w.mu.Unlock()
	return ch
}

// Snapshot is the current snapshot (a copy the caller may keep).
func (w *writer) Snapshot() events.Snapshot {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return w.snap
}

// run serves requests until ctx ends. It drains queued requests into one
// append, so bursts cost one fsync.
func (w *writer) run(ctx context.Context) {
	defer close(w.done)
	for {
		select {
		case <-ctx.Done():
			w.shutdown()
			return
		case r := <-w.reqs:
			batch := []writeReq{r}
		drain:
			for len(batch) < 256 {
				select {
				case r := <-w.reqs:
					batch = append(batch, r)
				default:
					break drain
				}
			}
			w.commit(batch)
		}
	}
}

func (w *writer) shutdown() {
	w.mu.Lock()
	w.closed = true
	close(w.changed) // not replaced: every watcher sees closed and ends
	w.mu.Unlock()
	// Answer whatever is still queued so no caller hangs.
	for {
		select {
		case r := <-w.reqs:
			r.reply <- writeResult{err: errWriterStopped}
		default:
			return
		}
	}
}

// commit folds and appends the batch. Each request's events are folded
// into the projector first, with the seqs the log will assign: a request whose
// events the projector refuses, whose payloads do not encode, or whose spec
// change validation rejects, fails alone and leaves no trace. The rest share
// one append; only after it succeeds are their snapshots published. A failed
// append rolls the projector back, so the snapshot never runs ahead of the log.
func (w *writer) commit(batch []writeReq) {
	now := w.clock().UTC()
	if now.Before(w.lastTime) {
		now = w.lastTime
	}
	results := make([]writeResult, len(batch))
	before := w.Snapshot()
	cur := before // the snapshot after the last accepted request
	next := w.log.LastSeq() + 1
	var pending []update
	var owners []int // request index of each pending update
	for i, r := range batch {
		if r.ctx.Err() != nil {
			results[i].err = r.ctx.Err()
			continue
		}
		payloads := r.payloads
		if r.spec != nil {
			p, resp, err := planSpecChange(cur, r.spec)
			results[i].set = resp
			if err != nil {
				results[i].err = err
				continue
			}
			if p == nil {
				continue // nothing changed, or a dry run
			}
			payloads = []events.Payload{p}
		}
		ups, err := w.fold(payloads, now, next+uint64(len(pending)))
		if err != nil {
			results[i].err = err
			if rerr := w.proj.Restore(cur); rerr != nil {
				w.logger.Error("roll back the projector", zap.Error(rerr))
			}
			continue
		}
		if len(ups) > 0 {
			cur = ups[len(ups)-1].snap
		}
		pending = append(pending, ups...)
		for range ups {
			owners = append(owners, i)
		}
	}
	if len(pending) > 0 {
		envs := make([]events.Envelope, len(pending))
		for k, u := range pending {
			envs[k] = u.env
		}
		stored, err := w.log.Append(envs...)
		if err == nil && (len(stored) != len(envs) || stored[0].Seq != envs[0].Seq) {
			err = fmt.Errorf("the log assigned seq %d, the writer expected %d", stored[0].Seq, envs[0].Seq)
		}
		if err != nil {
			err = fmt.Errorf("append to event log: %w", err)
			for _, i := range owners {
				results[i].err = err
			}
			if rerr := w.proj.Restore(before); rerr != nil {
				w.logger.Error("roll back the projector", zap.Error(rerr))
			}
		} else {
			for k := range pending {
				pending[k].env = stored[k]
				i := owners[k]
				results[i].envs = append(results[i].envs, stored[k])
				if batch[i].spec != nil && stored[k].Type == events.TypeSpecChanged {
					results[i].set.Seq = stored[k].Seq
				}
			}
			w.lastTime = now
			w.publish(pending)
		}
	}
	for i, r := range batch {
		r.reply <- results[i]
	}
}

// fold encodes payloads as envelopes numbered from seq and folds them into
// the projector, returning the snapshot after each. On an error the caller
// rolls the projector back.
func (w *writer) fold(payloads []events.Payload, now time.Time, seq uint64) ([]update, error) {
	ups := make([]update, 0, len(payloads))
	for k, p := range payloads {
		e, err := events.New(now, p)
		if err != nil {
			return nil, err
		}
		e.Seq = seq + uint64(k)
		if err := e.Validate(); err != nil {
			return nil, err
		}
		if err := w.proj.Apply(e); err != nil {
			return nil, fmt.Errorf("refused %s event: %w", e.Type, err)
		}
		ups = append(ups, update{env: e, snap: w.proj.Snapshot()})
	}
	return ups, nil
}

// publish makes committed updates current and hands them to watchers and
// controllers, in seq order.
func (w *writer) publish(ups []update) {
	w.mu.Lock()
	for i := range ups {
		u := &ups[i]
		w.snap = u.snap
		w.ringAppendLocked(*u)
		w.sinceCheckpoint++
	}
	if len(ups) > 0 {
		close(w.changed)
		w.changed = make(chan struct{})
	}
	kicks := w.kicks
	needCheckpoint := w.sinceCheckpoint >= w.checkpointEvery
	if needCheckpoint {
		w.sinceCheckpoint = 0
	}
	snap := w.snap
	w.mu.Unlock()
	for _, k := range kicks {
		select {
		case k <- struct{}{}:
		default:
		}
	}
	if needCheckpoint {
		w.checkpoint(snap)
	}
}

func (w *writer) checkpoint(snap events.Snapshot) {
	data, err := events.MarshalCheckpoint(snap)
	if err == nil {
		err = w.log.SaveCheckpoint(snap.Seq, data)
	}
	if err != nil {
		// A missing checkpoint only costs start-up time.
		w.logger.Warn("save checkpoint", zap.Uint64("seq", snap.Seq), zap.Error(err))
		return
	}
	w.compact(snap.Seq)
}

// compact applies the retention policy after a checkpoint at checkpointSeq:
// the retain events before it stay, older ones go. The store refuses to drop
// anything no checkpoint covers.
func (w *writer) compact(checkpointSeq uint64) {
	c, ok := w.log.(store.Compactor)
	if !ok || w.retain == 0 || checkpointSeq <= w.retain {
		return
	}
	through := checkpointSeq - w.retain
	if through <= c.CompactedThrough() {
		return
	}
	removed, err := c.Compact(through)
	if err != nil {
		w.logger.Warn("apply the retention policy", zap.Uint64("through", through), zap.Error(err))
		return
	}
	w.logger.Info("retention policy removed old events", zap.Int("removed", removed), zap.Uint64("through-seq", through))
}

// compactedError explains a read from since that the retention policy made
// impossible, or returns nil.
func (w *writer) compactedError(since uint64) error {
	c, ok := w.log.(store.Compactor)
	if !ok || since >= c.CompactedThrough() {
		return nil
	}
	return w.retentionError(c.CompactedThrough())
}

// retentionError says where the log starts after a compaction through seq.
func (w *writer) retentionError(through uint64) error {
	return &api.Error{Code: api.CodeConflict, Message: fmt.Sprintf(
		"events up to seq %d were removed by the retention policy (RDD_RETAIN_EVENTS=%d); the log now starts after seq %d: ask again with since=%d (rdd events --since %d)",
		through, w.retain, through, through, through), ResumeSeq: through}
}

// explainCompacted turns the store's report of a compacted read into the
// retention answer; other errors pass through.
func (w *writer) explainCompacted(err error) error {
	var ce *store.CompactedError
	if errors.As(err, &ce) {
		return w.retentionError(ce.Through)
	}
	return err
}

func (w *writer) ringAppendLocked(u update) {
	if len(w.ring) < ringSize {
		w.ring = append(w.ring, u)
		return
	}
	w.ring[w.ringHead] = u
	w.ringHead = (w.ringHead + 1) % ringSize
}

// ringAfterLocked calls fn with the updates with seq > cursor, oldest
// first, at most max of them, and returns how many. covered is false when
// the ring no longer holds the update right after cursor (nor does the
// snapshot equal cursor): the reader fell too far behind, or resumes from
// before the ring. fn must copy what it keeps: the ring is reused.
func (w *writer) ringAfterLocked(cursor uint64, max int, fn func(*update)) (n int, covered bool) {
	if cursor >= w.snap.Seq {
		return 0, true
	}
	if len(w.ring) == 0 {
		return 0, false
	}
	oldest := w.ring[w.ringHead].env.Seq
	if cursor+1 < oldest {
		return 0, false
	}
	// The ring holds consecutive seqs: commit numbers them so and publish
	// appends every one.
	for i := int(cursor + 1 - oldest); i < len(w.ring) && n < max; i++ {
		fn(&w.ring[(w.ringHead+i)%len(w.ring)])
		n++
	}
	return n, true
}

// Append durably appends payloads and returns once they are folded into the
// snapshot. It is the fsm.Appender of every machine.
func (w *writer) Append(ctx context.Context, payloads ...events.Payload) ([]events.Envelope, error) {
	r := writeReq{ctx: ctx, payloads: payloads, reply: make(chan writeResult, 1)}
	res, err := w.send(ctx, r)
	if err != nil {
		return nil, err
	}
	return res.envs, res.err
}

func (w *writer) appendOne(ctx context.Context, p events.Payload) error {
	_, err := w.Append(ctx, p)
	return err
}

// SetSpec plans and appends a spec change inside the writer.
func (w *writer) SetSpec(ctx context.Context, req api.SetRequest, src api.Source) (api.SetResponse, error) {
	r := writeReq{ctx: ctx, spec: &specReq{req: req, src: src}, reply: make(chan writeResult, 1)}
	res, err := w.send(ctx, r)
	if err != nil {
		return api.SetResponse{}, err
	}
	return res.set, res.err
}

func (w *writer) send(ctx context.Context, r writeReq) (writeResult, error) {
	select {
	case w.reqs <- r:
	case <-ctx.Done():
		return writeResult{}, ctx.Err()
	case <-w.done:
		return writeResult{}, errWriterStopped
	}
	select {
	case res := <-r.reply:
		return res, nil
	case <-w.done:
		// The writer answers everything queued before done closes.
		select {
		case res := <-r.reply:
			return res, nil
		default:
			return writeResult{}, errWriterStopped
		}
	}
}

// planSpecChange validates a set request against the current snapshot and
// returns the SpecChanged to append (nil when nothing changes or on a dry run).
func planSpecChange(cur events.Snapshot, r *specReq) (*events.SpecChanged, api.SetResponse, error) {
	var current *spec.Spec
	if cur.Exists && cur.Spec != nil {
		c := *cur.Spec
		current = &c
	}
	if len(r.req.Set) == 0 {
		return nil, api.SetResponse{Generation: cur.Generation}, &api.RejectedError{Message: "no properties to set"}
	}
	next, changed, err := spec.Apply(current, r.req.Set)
	if err != nil {
		var verr *spec.ValidationError
		if errors.As(err, &verr) {
			return nil, api.SetResponse{Generation: cur.Generation}, &api.RejectedError{Message: verr.Message}
		}
		return nil, api.SetResponse{Generation: cur.Generation}, err
	}
	resp := api.SetResponse{Generation: cur.Generation, Changed: changed, Spec: next}
	for _, name := range changed {
		c := api.Change{Property: name, New: next.Value(name)}
		if current != nil {
			c.Old = current.Value(name)
		}
		resp.Changes = append(resp.Changes, c)
	}
	if current == nil {
		resp.Created = true
		resp.Generation = 1
		if changed == nil {
			changed = []string{}
		}
	} else if len(changed) == 0 {
		return nil, resp, nil
	} else {
		resp.Generation = cur.Generation + 1
	}
	if r.req.DryRun {
		// A dry run never writes, not even the App's creation (a deliberate
		// difference from the reference, F17).
		return nil, resp, nil
	}
	return &events.SpecChanged{
		Generation: resp.Generation, Spec: next, Changed: changed,
		Source: events.Source{UID: r.src.UID, PID: r.src.PID, Command: r.req.Command},
	}, resp, nil
}
