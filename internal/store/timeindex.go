package store

import (
	"bytes"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"
)

// TimeIndex is implemented by logs that answer "which event was the newest at
// time t" without reading the whole log. Both Log and Mem implement it.
//
// The answer relies on event times being non-decreasing in seq, which the
// daemon's writer guarantees by stamping each commit with max(previous, now).
// On a log written without that guarantee (a clock stepped back), the answer
// is still some seq s with Time(s) <= t < Time(s+1), one boundary among
// several.
type TimeIndex interface {
	// SeqAtTime returns the seq of the newest event whose Time is at or before
	// t, 0 when there is none (empty log, or t before the first event). It
	// reads about log2(n) events. If the answer lies among the compacted
	// events it returns ErrCompacted.
	SeqAtTime(t time.Time) (uint64, error)
}

var (
	_ TimeIndex = (*Log)(nil)
	_ TimeIndex = (*Mem)(nil)
)

// searchTime is the binary search shared by Log and Mem over the events
// lo..hi (both present): the largest seq whose time is <= t, lo-1 if none.
// timeAt reads one event's time.
func searchTime(lo, hi uint64, t time.Time, timeAt func(uint64) (time.Time, error)) (uint64, error) {
	var ferr error
	// sort.Search over [0, n) finds the first index whose event is after t.
	n := int(hi - lo + 1)
	i := sort.Search(n, func(i int) bool {
		if ferr != nil {
			return true
		}
		et, err := timeAt(lo + uint64(i))
		if err != nil {
			ferr = err
			return true
		}
		return et.After(t)
	})
	if ferr != nil {
		return 0, ferr
	}
	return lo + uint64(i) - 1, nil
}

// valueTime returns the time of the event stored as v under seq, verifying
// its checksum. It parses only the envelope's leading "seq" and "time" keys,
// as Append writes them, and falls back to a full decode otherwise.
func valueTime(seq uint64, v []byte) (time.Time, error) {
	body, _, err := unframe(seq, v)
	if err != nil {
		return time.Time{}, err
	}
	if rest, ok := bytes.CutPrefix(body, []byte(`{"seq":`)); ok {
		if s, rest, ok := cutUint(rest); ok && s == seq {
			if rest, ok := bytes.CutPrefix(rest, []byte(`,"time":"`)); ok {
				if ts, _, ok := bytes.Cut(rest, []byte{'"'}); ok {
					if t, ok := parseUTC(ts); ok {
						return t, nil
					}
				}
			}
		}
	}
	e, err := decodeValue(seq, v, false)
	if err != nil {
		return time.Time{}, err
	}
	return e.Time, nil
}

// SeqAtTime implements TimeIndex: one read transaction, one point lookup per
// probe.
func (l *Log) SeqAtTime(t time.Time) (uint64, error) {
	if l.closed.Load() {
		return 0, closedError(l.path)
	}
	last := l.last.Load()
	var seq uint64
	err := l.view("read", func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketEvents)
		if b == nil {
			return corruptError(l.path, "the events bucket is gone", nil)
		}
		// Read in the transaction: a concurrent Compact may have moved it.
		compacted, err := readCompacted(tx)
		if err != nil {
			return err
		}
		if compacted >= last {
			if compacted > 0 {
				return compactedError(l.path, compacted, compacted)
			}
			return nil
		}
		seq, err = searchTime(compacted+1, last, t, func(s uint64) (time.Time, error) {
			v := b.Get(seqKey(s))
			if v == nil {
				return time.Time{}, l.gap(tx, s, nil)
			}
			et, err := valueTime(s, v)
			if err != nil {
				return time.Time{}, badEventError(l.path, s, "it does not decode", err)
			}
			return et, nil
		})
		if err == nil && seq == compacted && compacted > 0 {
			// Every retained event is after t: the answer was compacted away.
			return compactedError(l.path, compacted, compacted)
		}
		return err
	})
	if err != nil {
		return 0, l.wrap("search", err)
	}
	return seq, nil
}

// SeqAtTime implements TimeIndex.
func (m *Mem) SeqAtTime(t time.Time) (uint64, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return 0, closedError(memPath)
	}
	last := m.lastLocked()
	if m.compacted >= last {
		if m.compacted > 0 {
			return 0, compactedError(memPath, m.compacted, m.compacted)
		}
		return 0, nil
	}
	seq, err := searchTime(m.compacted+1, last, t, func(s uint64) (time.Time, error) {
		et, err := valueTime(s, m.vals[s-m.compacted-1])
		if err != nil {
			return time.Time{}, badEventError(memPath, s, "it does not decode", err)
		}
		return et, nil
	})
	if err != nil {
		return 0, err
	}
	if seq == m.compacted && m.compacted > 0 {
		return 0, compactedError(memPath, m.compacted, m.compacted)
	}
	return seq, nil
}
