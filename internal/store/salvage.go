package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
)

// CheckpointSeqs returns the seqs of the stored checkpoints, ascending.
func (l *Log) CheckpointSeqs() ([]uint64, error) {
	if l.closed.Load() {
		return nil, closedError(l.path)
	}
	var seqs []uint64
	err := l.view("list checkpoints", func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketCheckpoints)
		if b == nil {
			return corruptError(l.path, "the checkpoints bucket is gone", nil)
		}
		return b.ForEach(func(k, _ []byte) error {
			s, ok := keySeq(k)
			if !ok {
				return corruptError(l.path, fmt.Sprintf("a checkpoint has a %d-byte key", len(k)), nil)
			}
			seqs = append(seqs, s)
			return nil
		})
	})
	if err != nil {
		return nil, l.wrap("list checkpoints of", err)
	}
	return seqs, nil
}

// Repaired describes what Repair kept.
type Repaired struct {
	Path        string // the new log, at the old log's path
	DamagedCopy string // where the damaged file now is
	First, Last uint64 // the events kept (First-1 is the compaction mark)
	Checkpoints int    // checkpoints kept
	Lost        uint64 // events found after the first missing one, not kept
}

// valueLoc is where a value lies in the damaged file.
type valueLoc struct {
	off int64
	n   int
}

// Repair salvages the log at path into a new log and keeps the damaged file
// aside (path.damaged-TIME); it never deletes it. It reads every page of the
// file with read(2), trusting none of bbolt's structure: each value stored
// under an 8-byte key that passes its checksum (or, unframed, decodes as the
// event of that seq) is a candidate. The new log holds the events from 1
// (or, in a compacted log, from just after a salvaged checkpoint) up to the
// first seq that could not be found intact, and the checkpoints within that
// range. The daemon must not run: Repair takes the file's lock.
func Repair(path string, opts Options) (Repaired, error) {
	r := Repaired{Path: path}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return r, fmt.Errorf("store: repair %s: %w", path, err)
	}
	defer func() { _ = f.Close() }()
	if err := flockRetry(f, syscall.LOCK_EX, opts.timeout()); err != nil {
		return r, lockedError(path, err)
	}
	evs, cps, err := scanValues(f)
	if err != nil {
		return r, fmt.Errorf("store: repair %s: %w", path, err)
	}
	first := uint64(1)
	if _, ok := evs[1]; !ok {
		first = 0
		for _, s := range slices.Sorted(mapKeys(cps)) {
			if _, ok := evs[s+1]; ok {
				first = s + 1
				break
			}
		}
	}
	if first == 0 {
		return r, fmt.Errorf("store: repair %s: neither event 1 nor a checkpoint followed by its next event is intact: nothing to salvage; the file is unchanged", path)
	}
	last := first - 1
	for {
		if _, ok := evs[last+1]; !ok {
			break
		}
		last++
	}
	for s := range evs {
		if s > last+1 {
			r.Lost++
		}
	}
	r.First, r.Last = first, last

	tmp := path + ".repair"
	if _, err := os.Lstat(tmp); err == nil {
		return r, fmt.Errorf("store: repair %s: %s exists (a previous repair was interrupted?): move it aside and run the repair again", path, tmp)
	}
	if r.Checkpoints, err = writeSalvaged(f, tmp, opts, evs, cps, first, last); err != nil {
		return r, fmt.Errorf("store: repair %s: write the salvaged log to %s (left there for inspection): %w", path, tmp, err)
	}
	r.DamagedCopy = path + ".damaged-" + time.Now().UTC().Format("20060102T150405Z")
	for n := 1; ; n++ {
		// Rename would replace an earlier damaged copy of the same second.
		if _, err := os.Lstat(r.DamagedCopy); errors.Is(err, os.ErrNotExist) {
			break
		}
		r.DamagedCopy = fmt.Sprintf("%s.damaged-%s.%d", path, time.Now().UTC().Format("20060102T150405Z"), n)
	}
	if err := os.Rename(path, r.DamagedCopy); err != nil {
		return r, fmt.Errorf("store: repair %s: keep the damaged file aside: %w; the salvaged log is %s", path, err, tmp)
	}
	if err := os.Rename(tmp, path); err != nil {
		return r, fmt.Errorf("store: repair %s: put the salvaged log %s in place: %w; the damaged file is now %s", path, tmp, err, r.DamagedCopy)
	}
	return r, syncDir(filepath.Dir(path))
}

func mapKeys(m map[uint64]valueLoc) func(func(uint64) bool) {
	return func(yield func(uint64) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// writeSalvaged writes events first..last and the checkpoints in
// [first-1, last] into a new log at tmp; it returns how many checkpoints.
func writeSalvaged(f *os.File, tmp string, opts Options, evs, cps map[uint64]valueLoc, first, last uint64) (int, error) {
	opts.noMarker = true
	l, err := Open(tmp, opts)
	if err != nil {
		return 0, err
	}
	defer func() { _ = l.Close() }()
	read := func(loc valueLoc) ([]byte, error) {
		b := make([]byte, loc.n)
		_, err := f.ReadAt(b, loc.off)
		return b, err
	}
	for from := first; from <= last; from += uint64(compactChunk) {
		to := min(last, from+uint64(compactChunk)-1)
		err := l.update("repair", func(tx *bolt.Tx) error {
			b := tx.Bucket(bucketEvents)
			b.FillPercent = 1.0
			for s := from; s <= to; s++ {
				v, err := read(evs[s])
				if err != nil {
					return err
				}
				body, _, err := unframe(s, v)
				if err != nil {
					return err
				}
				if err := b.Put(seqKey(s), frame(s, body)); err != nil {
					return err
				}
			}
			return b.SetSequence(to)
		})
		if err != nil {
			return 0, err
		}
	}
	kept := 0
	err = l.update("repair", func(tx *bolt.Tx) error {
		if first > 1 {
			if err := tx.Bucket(bucketMeta).Put(metaCompacted, []byte(strconv.FormatUint(first-1, 10))); err != nil {
				return err
			}
		}
		for s, loc := range cps {
			if s+1 < first || s > last {
				continue
			}
			v, err := read(loc)
			if err != nil {
				return err
			}
			body, _, err := unframe(s, v)
			if err != nil {
				return err
			}
			if err := tx.Bucket(bucketCheckpoints).Put(seqKey(s), frame(s, body)); err != nil {
				return err
			}
			kept++
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	if err := l.Close(); err != nil {
		return 0, err
	}
	// Reopen to check the result as the daemon will see it.
	l2, err := Open(tmp, opts)
	if err != nil {
		return 0, err
	}
	defer func() { _ = l2.Close() }()
	return kept, l2.Check()
}

// scanValues reads every page of f and returns the intact events and
// checkpoints it finds, by seq (see Repair).
func scanValues(f *os.File) (evs, cps map[uint64]valueLoc, err error) {
	st, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	size := st.Size()
	ps := int64(os.Getpagesize())
	if _, m, err := activeMeta(f); err == nil && m.pageSize != 0 {
		ps = int64(m.pageSize)
	}
	evs, cps = map[uint64]valueLoc{}, map[uint64]valueLoc{}
	buf := make([]byte, ps)
	for p := int64(2); (p+1)*ps <= size; p++ {
		if _, err := f.ReadAt(buf, p*ps); err != nil && !errors.Is(err, io.EOF) {
			return nil, nil, err
		}
		if binary.NativeEndian.Uint16(buf[8:]) != leafFlag {
			continue
		}
		span := min((int64(binary.NativeEndian.Uint32(buf[12:]))+1)*ps, size-p*ps)
		data := buf
		if span > ps {
			data = make([]byte, span)
			if _, err := f.ReadAt(data, p*ps); err != nil && !errors.Is(err, io.EOF) {
				return nil, nil, err
			}
		}
		scanLeaf(data, p*ps, 0, evs, cps)
	}
	return evs, cps, nil
}

// scanLeaf collects the intact values of the leaf page in data, which lies
// at file offset base, descending into inline buckets.
func scanLeaf(data []byte, base int64, depth int, evs, cps map[uint64]valueLoc) {
	if len(data) < pageHeaderSize {
		return
	}
	ne := binary.NativeEndian
	n := min(int(ne.Uint16(data[10:])), (len(data)-pageHeaderSize)/elemSize)
	for i := 0; i < n; i++ {
		e := data[pageHeaderSize+i*elemSize:]
		flags, pos := ne.Uint32(e), uint64(ne.Uint32(e[4:]))
		ksize, vsize := uint64(ne.Uint32(e[8:])), uint64(ne.Uint32(e[12:]))
		if !within(data, i, pos, ksize+vsize) {
			continue
		}
		start := uint64(pageHeaderSize+i*elemSize) + pos
		k, v := data[start:start+ksize], data[start+ksize:start+ksize+vsize]
		loc := valueLoc{off: base + int64(start+ksize), n: int(vsize)}
		if flags&bucketFlag != 0 {
			if len(v) > bucketHeader && ne.Uint64(v) == 0 && depth < 4 {
				scanLeaf(v[bucketHeader:], loc.off+bucketHeader, depth+1, evs, cps)
			}
			continue
		}
		seq, ok := keySeq(k)
		if !ok || seq == 0 {
			continue
		}
		if _, err := decodeValue(seq, v, true); err == nil {
			if _, dup := evs[seq]; !dup {
				evs[seq] = loc
			}
			continue
		}
		if body, framed, err := unframe(seq, v); framed && err == nil && len(body) > 0 {
			if _, dup := cps[seq]; !dup {
				cps[seq] = loc
			}
		}
	}
}
