package store

import (
	"fmt"
	"os"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"
	"go.uber.org/zap"

	"github.com/rdd-project/rdd/internal/events"
)

// compactChunk bounds the deletions per write transaction in Compact. A
// variable for tests.
var compactChunk = 10000

// readCompacted returns the compaction mark recorded in meta.
func readCompacted(tx *bolt.Tx) (uint64, error) {
	c := tx.Bucket(bucketMeta).Get(metaCompacted)
	if c == nil {
		return 0, nil
	}
	return strconv.ParseUint(string(c), 10, 64)
}

// Compact implements Compactor. Events are deleted oldest first, at most
// compactChunk per write transaction, and the compaction mark in meta moves
// with every transaction, so a crash mid-way leaves a consistent log.
func (l *Log) Compact(keepAfter uint64) (int, error) {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if l.closed.Load() {
		return 0, closedError(l.path)
	}
	start := time.Now()
	from := l.compacted.Load()
	if keepAfter <= from {
		return 0, nil
	}
	if err := l.view("compact", func(tx *bolt.Tx) error {
		return checkCovered(l.path, keepAfter, l.last.Load(), tx.Bucket(bucketCheckpoints).Cursor().Last)
	}); err != nil {
		return 0, l.wrap("compact", err)
	}
	removed := 0
	for from < keepAfter {
		to := min(keepAfter, from+uint64(compactChunk))
		err := l.update("compact", func(tx *bolt.Tx) error {
			b := tx.Bucket(bucketEvents)
			for s := from + 1; s <= to; s++ {
				if err := b.Delete(seqKey(s)); err != nil {
					return err
				}
			}
			if to == keepAfter {
				cps := tx.Bucket(bucketCheckpoints)
				var old [][]byte
				c := cps.Cursor()
				for k, _ := c.First(); k != nil; k, _ = c.Next() {
					if s, ok := keySeq(k); ok && s >= keepAfter {
						break
					}
					old = append(old, k)
				}
				for _, k := range old {
					if err := cps.Delete(k); err != nil {
						return err
					}
				}
			}
			return tx.Bucket(bucketMeta).Put(metaCompacted, []byte(strconv.FormatUint(to, 10)))
		})
		if err != nil {
			return removed, l.wrap("compact", err)
		}
		removed += int(to - from)
		from = to
		l.compacted.Store(to)
	}
	l.log.Info("compacted event log",
		zap.Uint64("compacted-through", keepAfter),
		zap.Int("removed", removed),
		zap.Duration("took", time.Since(start)))
	return removed, nil
}

// checkPages walks every page of the file (see walker) through its own
// descriptor; the writers are stopped (wmu), so the file is stable.
func (l *Log) checkPages() error {
	f, err := os.Open(l.path)
	if err != nil {
		return fmt.Errorf("store: check %s: %w", l.path, err)
	}
	defer func() { _ = f.Close() }()
	if _, err := preflight(f, true); err != nil {
		return corruptError(l.path, "page structure", err)
	}
	return nil
}

// checkCovered refuses a compaction that no checkpoint covers; latest returns
// the newest checkpoint's key.
func checkCovered(path string, keepAfter, last uint64, latest func() ([]byte, []byte)) error {
	if keepAfter > last {
		return fmt.Errorf("store: compact %s: keepAfter %d is beyond the last event %d", path, keepAfter, last)
	}
	k, _ := latest()
	if s, ok := keySeq(k); !ok || s < keepAfter {
		return fmt.Errorf("store: compact %s: no checkpoint at or after seq %d covers the events to drop", path, keepAfter)
	}
	return nil
}

// Check verifies the whole file: bbolt's page consistency check, the meta
// bucket, that events are contiguous from CompactedThrough()+1 to LastSeq()
// and each decodes strictly (envelope and typed payload), and that every
// checkpoint has a valid key and data. It reads the entire log and blocks
// writers while it runs: it is for tests and diagnostics, not for start-up.
func (l *Log) Check() (err error) {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if l.closed.Load() {
		return closedError(l.path)
	}
	if err := l.checkPages(); err != nil {
		return err
	}
	err = l.view("check", func(tx *bolt.Tx) error {
		compacted, err := readCompacted(tx)
		if err != nil || compacted != l.compacted.Load() {
			return corruptError(l.path, fmt.Sprintf("compaction mark is %d, expected %d", compacted, l.compacted.Load()), err)
		}
		b := tx.Bucket(bucketEvents)
		if b.Sequence() != l.last.Load() {
			return corruptError(l.path, fmt.Sprintf("sequence is %d, expected %d", b.Sequence(), l.last.Load()), nil)
		}
		want := compacted + 1
		err = b.ForEach(func(k, v []byte) error {
			if s, ok := keySeq(k); !ok || s != want {
				return corruptError(l.path, fmt.Sprintf("event %d is missing (found key %x)", want, k), nil)
			}
			e, err := decodeValue(want, v, true)
			if err == nil {
				_, err = events.Decode(e)
			}
			if err != nil {
				return badEventError(l.path, want, "it does not decode", err)
			}
			want++
			return nil
		})
		if err != nil {
			return err
		}
		if want-1 != b.Sequence() {
			return corruptError(l.path, fmt.Sprintf("events end at %d, the sequence is at %d", want-1, b.Sequence()), nil)
		}
		return tx.Bucket(bucketCheckpoints).ForEach(func(k, v []byte) error {
			s, ok := keySeq(k)
			if !ok || s == 0 || s < compacted || s > b.Sequence() {
				return corruptError(l.path, fmt.Sprintf("bad checkpoint key %x", k), nil)
			}
			if body, _, err := unframe(s, v); err != nil || len(body) == 0 {
				return corruptError(l.path, fmt.Sprintf("checkpoint %d is empty or fails its checksum", s), err)
			}
			return nil
		})
	})
	return l.wrap("check", err)
}
