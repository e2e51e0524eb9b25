package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/rdd-project/rdd/internal/api"
	"github.com/rdd-project/rdd/internal/api/client"
	"github.com/rdd-project/rdd/internal/events"
	"github.com/rdd-project/rdd/internal/store"
)

// logReader is what status, events, why and replay read: the daemon through
// its socket (*client.Client) or, when it is not running, its event log.
type logReader interface {
	Status(ctx context.Context) (events.Snapshot, error)
	StatusAt(ctx context.Context, at api.At) (events.Snapshot, error)
	// Events calls fn with each event and its wire bytes; raw is nil when
	// there are none (the log on disk), for the caller to marshal e only if
	// it prints it.
	Events(ctx context.Context, q api.EventQuery, fn func(raw []byte, e events.Envelope) error) error
}

var (
	_ logReader = (*client.Client)(nil)
	_ logReader = (*offlineLog)(nil)
)

// offlineLockTimeout bounds the wait for the log's lock: a holder is a
// daemon that does not answer on its socket (starting or stopping), and
// waiting longer would only hide that.
const offlineLockTimeout = 200 * time.Millisecond

// offlineLog reads the instance's event log directly, opened for reading
// only (store.OpenReader): a shared lock for the duration of one command,
// which a daemon starting meanwhile waits for (store.DefaultTimeout), and
// checks proportional to what is read, not to the log's size.
type offlineLog struct {
	log *store.Log
}

// openOffline opens the instance's log when the daemon is not running.
func (e *env) openOffline() (*offlineLog, error) {
	p, err := e.instance()
	if err != nil {
		return nil, err
	}
	// store.Open would create a missing log: reading must not create an instance.
	if _, err := os.Stat(p.EventLog); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("the rdd daemon of instance %s is not running and the instance has no event log (%s): nothing to show; start it with rdd svc start", p.Instance, p.EventLog)
	}
	l, err := store.OpenReader(p.EventLog, store.Options{Timeout: offlineLockTimeout})
	if errors.Is(err, store.ErrLocked) {
		return nil, fmt.Errorf("the rdd daemon of instance %s does not answer on its socket but holds its event log (starting or stopping?): try again, or see rdd svc status", p.Instance)
	}
	if err != nil {
		return nil, fmt.Errorf("read the event log of instance %s without its daemon: %w", p.Instance, err)
	}
	return &offlineLog{log: l}, nil
}

func (o *offlineLog) Close() error { return o.log.Close() }

func (o *offlineLog) Status(ctx context.Context) (events.Snapshot, error) {
	return o.StatusAt(ctx, api.At{Seq: o.log.LastSeq()})
}

// StatusAt folds the log up to at from the nearest checkpoint, as the daemon
// does for GET /v1/status?at=.
func (o *offlineLog) StatusAt(_ context.Context, at api.At) (events.Snapshot, error) {
	seq := at.Seq
	if seq == 0 || seq > o.log.LastSeq() {
		seq = o.log.LastSeq()
	}
	if !at.Time.IsZero() {
		var err error
		if seq, err = o.seqAt(at.Time); err != nil {
			return events.Snapshot{}, err
		}
	}
	p := events.NewProjector()
	from := uint64(0)
	if seq > 0 {
		cseq, data, ok, err := o.log.CheckpointAtOrBefore(seq)
		if err != nil {
			return events.Snapshot{}, err
		}
		if ok {
			snap, err := events.UnmarshalCheckpoint(data)
			if err == nil {
				err = p.Restore(snap)
			}
			if err != nil {
				return events.Snapshot{}, fmt.Errorf("read the checkpoint at seq %d: %w", cseq, err)
			}
			from = cseq
		}
	}
	if seq > from {
		err := o.log.Range(from, int(seq-from), p.Apply)
		if errors.Is(err, store.ErrCompacted) {
			return events.Snapshot{}, &client.APIError{Code: api.CodeConflict, Message: "removed by the retention policy", ResumeSeq: o.log.CompactedThrough()}
		}
		if err != nil {
			return events.Snapshot{}, fmt.Errorf("fold the event log up to seq %d: %w", seq, err)
		}
	}
	return p.Snapshot(), nil
}

// seqAt returns the seq of the last event at or before t, 0 when there is
// none. Events are appended in time order, so a binary search over Get
// reads about 17 events of a 100k-event log instead of all of them.
func (o *offlineLog) seqAt(t time.Time) (uint64, error) {
	lo, hi := o.log.CompactedThrough(), o.log.LastSeq() // the answer is in [lo, hi]
	for lo < hi {
		mid := hi - (hi-lo)/2
		ev, err := o.log.Get(mid)
		if err != nil {
			return 0, err
		}
		if ev.Time.After(t) {
			hi = mid - 1
		} else {
			lo = mid
		}
	}
	return lo, nil
}

// Events lists the log as GET /v1/events does; there is no daemon to follow.
func (o *offlineLog) Events(_ context.Context, q api.EventQuery, fn func(raw []byte, e events.Envelope) error) error {
	if q.Follow {
		return errors.New("--follow needs a running daemon: nothing is appended to the log without one")
	}
	// No bytes: why and replay only fold the events, and marshalling
	// each one cost them more than reading it.
	err := o.log.Range(q.Since, q.Limit, func(ev events.Envelope) error { return fn(nil, ev) })
	if errors.Is(err, store.ErrCompacted) {
		return &client.APIError{Code: api.CodeConflict, Message: "removed by the retention policy", ResumeSeq: o.log.CompactedThrough()}
	}
	return err
}
