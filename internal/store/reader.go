package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sort"
	"sync"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// OpenReader opens the log at path for reading only: what `rdd status`,
// `why`, `events` and `replay` use while no daemon runs. Unlike Open it
// takes a shared lock (readers exclude the writer, not each other; a daemon
// holding the log makes it fail with ErrLocked after opts.Timeout), and
// creates, upgrades and marks nothing: a missing or empty file is an error.
//
// It keeps Open's safety at a cost proportional to what is read rather than
// to the log's size. Open's walk reads the header of every leaf page, one
// page fault per 4 KiB of log, so that no damaged page can send bbolt round
// a cycle (a stack overflow no recover catches). OpenReader walks the same
// structure but takes the leaves of the events bucket from their parents
// without reading them (all leaves of a B+tree are at one depth), and reads
// the header of each such leaf (id, leaf flag, overflow in range) just
// before a Range, Get or Open itself makes bbolt reach it. Every other page
// (branch pages, the meta and checkpoints buckets, the freelist) is checked
// at open as Open does; the shared lock keeps a writer from changing any of
// them meanwhile. Append, SaveCheckpoint and Compact fail.
func OpenReader(path string, opts Options) (*Log, error) {
	lg := opts.logger(path)
	var lazy *lazyLeaves
	db, err := openBolt(path, &bolt.Options{ReadOnly: true}, opts.timeout(), syscall.LOCK_SH, func(f *os.File) error {
		size, m, err := activeMeta(f)
		if err == nil && size == 0 {
			return errors.New("the file is empty")
		}
		if err != nil {
			return err
		}
		lazy = &lazyLeaves{file: f, ps: uint64(m.pageSize), hwm: m.pgid}
		if problems := walk(f, size, m, false, lazy); len(problems) > 0 {
			return errors.New(problemText(problems))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	l := &Log{db: db, path: path, log: lg, lazy: lazy}
	if err := l.load(); err != nil {
		_ = db.Close()
		return nil, err
	}
	return l, nil
}

// openError classifies what bbolt's open returned.
func openError(path string, err error) error {
	var se *storeError
	switch {
	case errors.As(err, &se):
		return err
	case errors.Is(err, berrors.ErrTimeout):
		return lockedError(path, err)
	case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrVersionMismatch),
		errors.Is(err, berrors.ErrChecksum), errors.Is(err, berrors.ErrInvalidMapping):
		return corruptError(path, "bbolt refused the file", err)
	}
	return fmt.Errorf("store: open %s: %w", path, err)
}

// problemText is the first problem a walk found, with how many more.
func problemText(problems []string) string {
	if len(problems) > 1 {
		return fmt.Sprintf("%s (and %d more problems)", problems[0], len(problems)-1)
	}
	return problems[0]
}

// flockRetry takes a flock of kind how on f, retrying until timeout.
func flockRetry(f *os.File, how int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		err := syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB)
		if err == nil {
			return nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			return err
		}
		if time.Now().Add(lockRetry).After(deadline) {
			return berrors.ErrTimeout
		}
		time.Sleep(lockRetry)
	}
}

// lazyLeaves are the leaf pages of the events bucket that OpenReader's walk
// took from their parents unread, in key order, and which of them a read
// has checked since.
type lazyLeaves struct {
	file    *os.File // bbolt's descriptor: read with pread, never mapped
	ps, hwm uint64
	// firsts[i] is the first seq of leaf ids[i], as its parent's key says.
	firsts []uint64
	ids    []uint64

	mu      sync.Mutex
	checked []bool
}

// lazyTree checks the branch pages of the tree rooted at root and records
// its leaves unread. The depth of the leaves comes from the leftmost path:
// a page at that depth that is not a leaf is found when a read checks it,
// before bbolt follows it.
func (w *walker) lazyTree(root uint64, depth int) {
	// Only the first element's child is read here (it lies in the page's
	// first 32 bytes); lazyLevel checks every page of the path properly.
	ne := binary.NativeEndian
	height := 0
	for id := root; id < w.hwm && height <= maxDepth; height++ {
		p := w.mem[id*w.ps : id*w.ps+pageHeaderSize+elemSize]
		if ne.Uint16(p[8:]) != branchFlag || ne.Uint16(p[10:]) == 0 {
			break
		}
		id = ne.Uint64(p[pageHeaderSize+8:])
	}
	w.lazy.firsts = make([]uint64, 0, w.hwm/2)
	w.lazy.ids = make([]uint64, 0, w.hwm/2)
	w.lazyLevel(root, depth, height, 0)
}

// lazyLevel checks page id, levels above the leaves, as a branch page and
// descends; at level 0 it records the leaf with its first seq.
func (w *walker) lazyLevel(id uint64, depth, levels int, first uint64) {
	if depth > maxDepth {
		w.fail("page %d is %d levels deep", id, depth)
		return
	}
	if levels == 0 {
		if w.mark(id, 0) {
			w.lazy.firsts = append(w.lazy.firsts, first)
			w.lazy.ids = append(w.lazy.ids, id)
		}
		return
	}
	flags, data, ok := w.page(id)
	if !ok {
		return
	}
	if flags != branchFlag {
		w.fail("page %d has flags %#x where a branch page belongs (its leaves are %d levels further down)", id, flags, levels)
		return
	}
	children, keys := w.branchKeys(id, data, true)
	for i, child := range children {
		seq, ok := keySeq(keys[i])
		if !ok {
			w.fail("branch page %d: key %d of the events bucket is %x, not a seq", id, i, keys[i])
			return
		}
		w.lazyLevel(child, depth+1, levels-1, seq)
	}
}

// leavesFor returns the indexes of the leaves bbolt may reach reading keys
// lo..hi: those whose range overlaps, and the next one, where a seek past
// a leaf's last key continues.
func (z *lazyLeaves) leavesFor(lo, hi uint64) (from, to int) {
	// The leaf holding seq is the last one whose first seq is <= seq.
	at := func(seq uint64) int {
		return max(sort.Search(len(z.firsts), func(i int) bool { return z.firsts[i] > seq })-1, 0)
	}
	return at(lo), min(at(hi)+1, len(z.ids)-1)
}

// check reads the headers of leaves from..to that no read checked yet.
func (z *lazyLeaves) check(path string, from, to int) error {
	z.mu.Lock()
	defer z.mu.Unlock()
	if z.checked == nil {
		z.checked = make([]bool, len(z.ids))
	}
	var hdr [pageHeaderSize]byte
	for i := from; i <= to && i < len(z.ids); i++ {
		if z.checked[i] {
			continue
		}
		id := z.ids[i]
		if _, err := z.file.ReadAt(hdr[:], int64(id*z.ps)); err != nil {
			return corruptError(path, fmt.Sprintf("cannot read leaf page %d", id), err)
		}
		ne := binary.NativeEndian
		switch overflow := uint64(ne.Uint32(hdr[12:])); {
		case ne.Uint64(hdr[:]) != id:
			return corruptError(path, fmt.Sprintf("page %d says it is page %d", id, ne.Uint64(hdr[:])), nil)
		case ne.Uint16(hdr[8:]) != leafFlag:
			return corruptError(path, fmt.Sprintf("page %d has flags %#x where a leaf page belongs", id, ne.Uint16(hdr[8:])), nil)
		case overflow >= z.hwm-id:
			return corruptError(path, fmt.Sprintf("page %d (+%d overflow) is beyond the high-water mark %d", id, overflow, z.hwm), nil)
		}
		z.checked[i] = true
	}
	return nil
}

// checkEvents makes sure bbolt may read events lo..hi: a no-op for a Log
// from Open, whose walk read every leaf's header already.
func (l *Log) checkEvents(lo, hi uint64) error {
	z := l.lazy
	if z == nil || len(z.ids) == 0 {
		return nil
	}
	from, to := z.leavesFor(lo, hi)
	return z.check(l.path, from, to)
}

// checkLastLeaf makes sure bbolt may read the events bucket's last leaf,
// where a cursor's Last goes whatever the keys.
func (l *Log) checkLastLeaf() error {
	z := l.lazy
	if z == nil || len(z.ids) == 0 {
		return nil
	}
	return z.check(l.path, len(z.ids)-1, len(z.ids)-1)
}
