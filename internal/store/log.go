package store

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
	"go.uber.org/zap"

	"github.com/rdd-project/rdd/internal/events"
)

// Log is the bbolt-backed EventLog. It owns the only *bolt.DB of its file.
// Create it with Open; all methods are safe for concurrent use.
type Log struct {
	db   *bolt.DB
	path string
	log  *zap.Logger
	info Info // set by Open, read-only afterwards

	// wmu serializes the writers (Append, SaveCheckpoint, Compact) and Check,
	// so that last and compacted, written only under wmu after a commit,
	// predict the next sequence number exactly.
	wmu       sync.Mutex
	last      atomic.Uint64 // seq of the newest committed event
	compacted atomic.Uint64 // highest seq removed by Compact
	closed    atomic.Bool
	broken    atomic.Pointer[error] // set once a write found the file damaged
	// lazy, set by OpenReader, holds the leaves of the events bucket whose
	// headers are read before bbolt may reach them (checkEvents); such a
	// Log never writes.
	lazy *lazyLeaves
}

// Path returns the file the log was opened from.
func (l *Log) Path() string { return l.path }

// Info returns what the file's meta bucket records.
func (l *Log) Info() Info { return l.info }

// LastSeq implements EventLog.
func (l *Log) LastSeq() uint64 { return l.last.Load() }

// CompactedThrough implements Compactor.
func (l *Log) CompactedThrough() uint64 { return l.compacted.Load() }

// Append implements EventLog. All envelopes are encoded before the write
// transaction starts, and stored in one bbolt Update (never Batch); the in-memory
// LastSeq advances only after the commit succeeded.
func (l *Log) Append(envs ...events.Envelope) ([]events.Envelope, error) {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if l.closed.Load() {
		return nil, closedError(l.path)
	}
	if len(envs) == 0 {
		return nil, nil
	}
	out, vals, err := encodeBatch(l.path, l.last.Load(), envs)
	if err != nil {
		return nil, err
	}
	err = l.update("append", func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketEvents)
		if b == nil {
			return corruptError(l.path, "the events bucket is gone", nil)
		}
		b.FillPercent = 1.0 // keys only ever grow: pack pages full
		for i, v := range vals {
			seq, err := b.NextSequence()
			if err != nil {
				return err
			}
			if seq != out[i].Seq {
				return corruptError(l.path, fmt.Sprintf("the sequence is at %d, expected %d", seq, out[i].Seq), nil)
			}
			if err := b.Put(seqKey(seq), v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, l.wrap("append to", err)
	}
	l.last.Store(out[len(out)-1].Seq)
	return out, nil
}

// encodeBatch validates and encodes envs as the events after last.
func encodeBatch(path string, last uint64, envs []events.Envelope) ([]events.Envelope, [][]byte, error) {
	out := make([]events.Envelope, len(envs))
	vals := make([][]byte, len(envs))
	for i, e := range envs {
		var err error
		seq := last + 1 + uint64(i)
		var body []byte
		if out[i], body, err = encodeEnvelope(e, seq); err != nil {
			return nil, nil, fmt.Errorf("store: append to %s: event %d of %d: %w", path, i+1, len(envs), err)
		}
		vals[i] = frame(seq, body)
	}
	return out, vals, nil
}

// Range implements EventLog. It decodes at most rangeChunk events per read
// transaction, copying them out, and calls fn after that transaction ended.
// When an event cannot be read, fn still gets every event before it, and
// Range then returns the error, which names that event (DamagedAt).
func (l *Log) Range(since uint64, limit int, fn func(events.Envelope) error) error {
	if l.closed.Load() {
		return closedError(l.path)
	}
	if c := l.compacted.Load(); since < c {
		return compactedError(l.path, since+1, c)
	}
	end := l.last.Load()
	if limit > 0 && uint64(limit) < end-min(since, end) {
		end = since + uint64(limit)
	}
	chunk := make([]events.Envelope, 0, min(end-min(since, end), uint64(rangeChunk)))
	for from := since; from < end; {
		chunk = chunk[:0]
		err := l.view("read", func(tx *bolt.Tx) error {
			b := tx.Bucket(bucketEvents)
			if b == nil {
				return corruptError(l.path, "the events bucket is gone", nil)
			}
			if err := l.checkEvents(from+1, min(end, from+uint64(rangeChunk))); err != nil {
				return err
			}
			c := b.Cursor()
			want := from + 1
			for k, v := c.Seek(seqKey(want)); want <= end && len(chunk) < rangeChunk; k, v = c.Next() {
				if seq, ok := keySeq(k); !ok || seq != want {
					return l.gap(tx, want, k)
				}
				e, err := l.decodeAt(want, v)
				if err != nil {
					return err
				}
				chunk = append(chunk, e)
				want++
			}
			return nil
		})
		for _, e := range chunk {
			if ferr := fn(e); ferr != nil {
				return ferr
			}
		}
		if err != nil {
			return l.wrap("read", l.atEvent(from+uint64(len(chunk))+1, err))
		}
		from += uint64(len(chunk))
	}
	return nil
}

// atEvent attributes a damage error without a seq to event seq, the first
// one not delivered; other errors pass unchanged.
func (l *Log) atEvent(seq uint64, err error) error {
	var se *storeError
	if !errors.As(err, &se) || se.kind != ErrCorrupt || se.seq != 0 {
		return err
	}
	return badEventError(l.path, seq, "its page cannot be read", err)
}

// gap classifies a missing event want (k is the key found instead): removed
// by a concurrent Compact, or lost.
func (l *Log) gap(tx *bolt.Tx, want uint64, k []byte) error {
	if c, err := readCompacted(tx); err == nil && want <= c {
		return compactedError(l.path, want, c)
	}
	found := "no further key"
	switch {
	case len(k) > 16:
		found = fmt.Sprintf("a %d-byte key", len(k))
	case k != nil:
		found = fmt.Sprintf("key %x", k)
	}
	return badEventError(l.path, want, "it is missing, found "+found+" instead", nil)
}

// Get implements EventLog.
func (l *Log) Get(seq uint64) (events.Envelope, error) {
	if l.closed.Load() {
		return events.Envelope{}, closedError(l.path)
	}
	if last := l.last.Load(); seq == 0 || seq > last {
		return events.Envelope{}, notFoundError(l.path, seq, last)
	}
	var e events.Envelope
	err := l.view("read", func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketEvents)
		if b == nil {
			return corruptError(l.path, "the events bucket is gone", nil)
		}
		if err := l.checkEvents(seq, seq); err != nil {
			return err
		}
		v := b.Get(seqKey(seq))
		if v == nil {
			return l.gap(tx, seq, nil)
		}
		var err error
		e, err = l.decodeAt(seq, v)
		return err
	})
	if err != nil {
		return events.Envelope{}, l.wrap("read", l.atEvent(seq, err))
	}
	return e, nil
}

// decodeAt verifies and decodes the value stored under seq; the result does
// not alias v.
func (l *Log) decodeAt(seq uint64, v []byte) (events.Envelope, error) {
	e, err := decodeValue(seq, v, false)
	if err != nil {
		return events.Envelope{}, badEventError(l.path, seq, "it does not decode", err)
	}
	return e, nil
}

// Close implements EventLog. It waits for transactions in flight.
func (l *Log) Close() error {
	if !l.closed.CompareAndSwap(false, true) {
		return nil
	}
	// Taking wmu lets a running Append or Compact finish first.
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if err := l.db.Close(); err != nil {
		return fmt.Errorf("store: close %s: %w", l.path, err)
	}
	l.log.Debug("closed event log", zap.Uint64("last-seq", l.last.Load()))
	return nil
}

// wrap adds the operation and the file to err, mapping bbolt's "not open" to
// ErrClosed; errors that already name the file pass unchanged.
func (l *Log) wrap(op string, err error) error {
	var se *storeError
	switch {
	case err == nil, errors.As(err, &se):
		return err
	case errors.Is(err, berrors.ErrDatabaseNotOpen):
		return closedError(l.path)
	}
	return fmt.Errorf("store: %s %s: %w", op, l.path, err)
}
