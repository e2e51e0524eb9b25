package store

import (
	"bytes"
	"errors"
	"fmt"
	"math/bits"

	bolt "go.etcd.io/bbolt"
)

// SaveCheckpoint implements EventLog.
func (l *Log) SaveCheckpoint(seq uint64, data []byte) error {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if l.closed.Load() {
		return closedError(l.path)
	}
	if err := checkCheckpoint(l.path, seq, data, l.compacted.Load(), l.last.Load()); err != nil {
		return err
	}
	err := l.update("save checkpoint", func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketCheckpoints)
		if b == nil {
			return corruptError(l.path, "the checkpoints bucket is gone", nil)
		}
		if err := b.Put(seqKey(seq), frame(seq, data)); err != nil {
			return err
		}
		var seqs []uint64
		if err := b.ForEach(func(k, _ []byte) error {
			s, ok := keySeq(k)
			if !ok {
				return corruptError(l.path, fmt.Sprintf("bad checkpoint key %x", k), nil)
			}
			seqs = append(seqs, s)
			return nil
		}); err != nil {
			return err
		}
		for _, s := range checkpointsToDrop(seqs) {
			if err := b.Delete(seqKey(s)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return l.wrap("save checkpoint to", err)
	}
	return nil
}

// checkCheckpoint validates SaveCheckpoint's arguments (shared with Mem).
func checkCheckpoint(path string, seq uint64, data []byte, compacted, last uint64) error {
	switch {
	case len(data) == 0:
		return fmt.Errorf("store: save checkpoint to %s: empty checkpoint at seq %d", path, seq)
	case seq == 0 || seq > last:
		return fmt.Errorf("store: save checkpoint to %s: seq %d is not an event (last is %d)", path, seq, last)
	case seq < compacted:
		return fmt.Errorf("store: save checkpoint to %s: seq %d is below the compaction mark %d", path, seq, compacted)
	}
	return nil
}

// LatestCheckpoint implements EventLog.
func (l *Log) LatestCheckpoint() (uint64, []byte, bool, error) {
	return l.checkpoint(func(c *bolt.Cursor) ([]byte, []byte) { return c.Last() })
}

// CheckpointAtOrBefore implements EventLog.
func (l *Log) CheckpointAtOrBefore(at uint64) (uint64, []byte, bool, error) {
	return l.checkpoint(func(c *bolt.Cursor) ([]byte, []byte) {
		key := seqKey(at)
		k, v := c.Seek(key)
		switch {
		case k == nil:
			return c.Last()
		case bytes.Equal(k, key):
			return k, v
		}
		return c.Prev()
	})
}

// checkpoint reads the checkpoint that pick positions the cursor on.
func (l *Log) checkpoint(pick func(*bolt.Cursor) ([]byte, []byte)) (uint64, []byte, bool, error) {
	if l.closed.Load() {
		return 0, nil, false, closedError(l.path)
	}
	var (
		seq  uint64
		data []byte
	)
	err := l.view("read checkpoint", func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketCheckpoints)
		if b == nil {
			return corruptError(l.path, "the checkpoints bucket is gone", nil)
		}
		k, v := pick(b.Cursor())
		if k == nil {
			return nil
		}
		s, ok := keySeq(k)
		if !ok {
			return corruptError(l.path, fmt.Sprintf("a checkpoint has a %d-byte key", len(k)), nil)
		}
		body, _, err := unframe(s, v)
		if err == nil && len(body) == 0 {
			err = errors.New("it is empty")
		}
		if err != nil {
			return corruptError(l.path, fmt.Sprintf("checkpoint %d", s), err)
		}
		seq, data = s, bytes.Clone(body)
		return nil
	})
	if err != nil {
		return 0, nil, false, l.wrap("read checkpoint from", err)
	}
	return seq, data, data != nil, nil
}

// checkpointsToDrop applies the retention policy to the checkpoint seqs
// (ascending, unique) and returns the ones to delete. It keeps the newest
// RecentCheckpoints; of the older ones it keeps, for each k, the oldest
// checkpoint whose distance d to the newest satisfies 2^k <= d < 2^(k+1),
// and, for each block of CheckpointStride seqs, the oldest checkpoint in it.
// That keeps at most RecentCheckpoints+64+LastSeq/CheckpointStride
// checkpoints, spaced roughly exponentially into the past but never further
// apart than a block, and always the oldest one.
func checkpointsToDrop(seqs []uint64) []uint64 {
	if len(seqs) <= RecentCheckpoints {
		return nil
	}
	newest := seqs[len(seqs)-1]
	var drop []uint64
	seen := uint64(0) // bit k set: band k already has a checkpoint
	block := uint64(0)
	for i, s := range seqs[:len(seqs)-RecentCheckpoints] {
		band := uint(bits.Len64(newest-s) - 1)
		firstInBlock := i == 0 || s/CheckpointStride != block
		block = s / CheckpointStride
		if seen&(1<<band) != 0 && !firstInBlock {
			drop = append(drop, s)
			continue
		}
		seen |= 1 << band
	}
	return drop
}
