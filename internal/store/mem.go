package store

import (
	"bytes"
	"fmt"
	"slices"
	"sync"

	"github.com/rdd-project/rdd/internal/events"
)

// memPath names a Mem log in error messages.
const memPath = "(memory)"

// Mem is the in-memory EventLog, for tests of the log's consumers. It stores
// the same encoded bytes Log would and runs the same validation, sequence and
// checkpoint-retention rules, so storetest.Run holds for both. It persists
// nothing. Safe for concurrent use.
type Mem struct {
	mu        sync.RWMutex
	vals      [][]byte // vals[i] is the event compacted+1+i
	compacted uint64
	cpSeqs    []uint64 // ascending
	cps       map[uint64][]byte
	closed    bool
}

// NewMem returns an empty in-memory log.
func NewMem() *Mem { return &Mem{cps: map[uint64][]byte{}} }

func (m *Mem) lastLocked() uint64 { return m.compacted + uint64(len(m.vals)) }

// LastSeq implements EventLog.
func (m *Mem) LastSeq() uint64 {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.lastLocked()
}

// CompactedThrough implements Compactor.
func (m *Mem) CompactedThrough() uint64 {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.compacted
}

// Append implements EventLog.
func (m *Mem) Append(envs ...events.Envelope) ([]events.Envelope, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, closedError(memPath)
	}
	if len(envs) == 0 {
		return nil, nil
	}
	out, vals, err := encodeBatch(memPath, m.lastLocked(), envs)
	if err != nil {
		return nil, err
	}
	m.vals = append(m.vals, vals...)
	return out, nil
}

// Range implements EventLog; like Log, it calls fn without holding the lock.
func (m *Mem) Range(since uint64, limit int, fn func(events.Envelope) error) error {
	m.mu.RLock()
	closed, compacted, end := m.closed, m.compacted, m.lastLocked()
	m.mu.RUnlock()
	switch {
	case closed:
		return closedError(memPath)
	case since < compacted:
		return compactedError(memPath, since+1, compacted)
	}
	if limit > 0 && uint64(limit) < end-min(since, end) {
		end = since + uint64(limit)
	}
	chunk := make([]events.Envelope, 0, min(end-min(since, end), uint64(rangeChunk)))
	for from := since; from < end; from += uint64(len(chunk)) {
		chunk = chunk[:0]
		err := m.readChunk(from, end, &chunk)
		for _, e := range chunk {
			if ferr := fn(e); ferr != nil {
				return ferr
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// readChunk decodes events from+1.. (at most rangeChunk, up to end) into chunk.
func (m *Mem) readChunk(from, end uint64, chunk *[]events.Envelope) error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	switch {
	case m.closed:
		return closedError(memPath)
	case from < m.compacted:
		return compactedError(memPath, from+1, m.compacted)
	}
	for s := from + 1; s <= end && len(*chunk) < rangeChunk; s++ {
		e, err := decodeValue(s, m.vals[s-m.compacted-1], false)
		if err != nil {
			return badEventError(memPath, s, "it does not decode", err)
		}
		*chunk = append(*chunk, e)
	}
	return nil
}

// Get implements EventLog.
func (m *Mem) Get(seq uint64) (events.Envelope, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	switch last := m.lastLocked(); {
	case m.closed:
		return events.Envelope{}, closedError(memPath)
	case seq == 0 || seq > last:
		return events.Envelope{}, notFoundError(memPath, seq, last)
	case seq <= m.compacted:
		return events.Envelope{}, compactedError(memPath, seq, m.compacted)
	}
	e, err := decodeValue(seq, m.vals[seq-m.compacted-1], false)
	if err != nil {
		return events.Envelope{}, badEventError(memPath, seq, "it does not decode", err)
	}
	return e, nil
}

// SaveCheckpoint implements EventLog.
func (m *Mem) SaveCheckpoint(seq uint64, data []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return closedError(memPath)
	}
	if err := checkCheckpoint(memPath, seq, data, m.compacted, m.lastLocked()); err != nil {
		return err
	}
	if i, found := slices.BinarySearch(m.cpSeqs, seq); !found {
		m.cpSeqs = slices.Insert(m.cpSeqs, i, seq)
	}
	m.cps[seq] = frame(seq, data)
	for _, s := range checkpointsToDrop(m.cpSeqs) {
		delete(m.cps, s)
	}
	m.cpSeqs = slices.DeleteFunc(m.cpSeqs, func(s uint64) bool { _, ok := m.cps[s]; return !ok })
	return nil
}

// LatestCheckpoint implements EventLog.
func (m *Mem) LatestCheckpoint() (uint64, []byte, bool, error) {
	return m.CheckpointAtOrBefore(^uint64(0))
}

// CheckpointAtOrBefore implements EventLog.
func (m *Mem) CheckpointAtOrBefore(at uint64) (uint64, []byte, bool, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return 0, nil, false, closedError(memPath)
	}
	i, found := slices.BinarySearch(m.cpSeqs, at)
	if found {
		i++
	}
	if i == 0 {
		return 0, nil, false, nil
	}
	s := m.cpSeqs[i-1]
	data, _, err := unframe(s, m.cps[s])
	if err != nil {
		return 0, nil, false, corruptError(memPath, fmt.Sprintf("checkpoint %d", s), err)
	}
	return s, bytes.Clone(data), true, nil
}

// Compact implements Compactor.
func (m *Mem) Compact(keepAfter uint64) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return 0, closedError(memPath)
	}
	if keepAfter <= m.compacted {
		return 0, nil
	}
	latest := func() ([]byte, []byte) {
		if len(m.cpSeqs) == 0 {
			return nil, nil
		}
		return seqKey(m.cpSeqs[len(m.cpSeqs)-1]), nil
	}
	if err := checkCovered(memPath, keepAfter, m.lastLocked(), latest); err != nil {
		return 0, err
	}
	n := int(keepAfter - m.compacted)
	m.vals = slices.Clone(m.vals[n:])
	m.compacted = keepAfter
	for len(m.cpSeqs) > 0 && m.cpSeqs[0] < keepAfter {
		delete(m.cps, m.cpSeqs[0])
		m.cpSeqs = m.cpSeqs[1:]
	}
	return n, nil
}

// Close implements EventLog.
func (m *Mem) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	return nil
}
