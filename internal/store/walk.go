package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"runtime/debug"
	"syscall"
)

// walk checks the structure of a bbolt file through a mapping of its own,
// before bbolt maps it, so that bbolt is only handed files it can traverse:
//
//   - every page reachable from the meta page is below the high-water mark,
//     is a branch or leaf page (a freelist page for the freelist), carries
//     its own id, and is referenced once (a cycle or a shared page would
//     make bbolt recurse forever, a stack overflow no recover can catch);
//   - every element's key and value lie within its page, keys are non-empty
//     in branch pages, and a bucket value is long enough for its header;
//   - the freelist lists pages below the high-water mark, none reachable.
//
// bbolt's Tx.Check would find most of this, but it reads the mapping in a
// goroutine of its own, where debug.SetPanicOnFault is off, so a damaged
// page there kills the process.
//
// In quick mode (Open), leaf pages below the top-level buckets are only
// checked for their header: Open must stay cheap, and damage inside a leaf
// makes bbolt fault or misread within that page only, which guard and the
// checksums catch. Full mode (Check) reads every page. The walk runs with
// SetPanicOnFault, so a file that shrinks under it is a problem, not a crash.
type walker struct {
	mem      []byte // the file, mapped read-only for the walk
	ps       uint64
	hwm      uint64
	full     bool
	seen     []uint64 // bitmap of the pages referenced so far
	problems []string
	// lazy, when non-nil, takes the leaves of the events bucket unread
	// (walkLazy); leaf names a top-level leaf page's bucket key.
	lazy *lazyLeaves
}

const (
	branchFlag   = 0x01
	leafFlag     = 0x02
	freelistFlag = 0x10
	bucketFlag   = 0x01
	elemSize     = 16
	bucketHeader = 16
	maxDepth     = 64 // far above any real tree (a page holds ≥ 2 keys)
	maxProblems  = 20 // the first ones are enough to act on
)

// walkFile checks f (see walker), of size bytes, whose active meta
// preflight chose. It maps the file for the walk: a leaf page's header is
// then a memory read, not a system call (pread per page cost twice as much).
// Touching every leaf page still costs ~45 ms per million events (258 MiB)
// at Open; not touching them would leave a leaf page damaged into a branch
// page able to send bbolt round a cycle, a stack overflow that kills the
// process.
func walkFile(f *os.File, size int64, m boltMeta, full bool) (problems []string) {
	return walk(f, size, m, full, nil)
}

// walk is walkFile; a non-nil lazy takes the events bucket's leaves unread.
func walk(f *os.File, size int64, m boltMeta, full bool, lazy *lazyLeaves) (problems []string) {
	mem, err := syscall.Mmap(int(f.Fd()), 0, int(size), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return []string{fmt.Sprintf("cannot map the file: %v", err)}
	}
	defer func() { _ = syscall.Munmap(mem) }()
	// Every access is bounds-checked against the file's size, but the file
	// can shrink under us (another process truncating it).
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			problems = append(problems, fmt.Sprintf("reading the file failed: %v", r))
		}
	}()
	w := &walker{mem: mem, ps: uint64(m.pageSize), hwm: m.pgid, full: full, seen: make([]uint64, (m.pgid+63)/64), lazy: lazy}
	w.mark(0, 0)
	w.mark(1, 0)
	w.tree(m.root, 0, true)
	if m.freelist != noFreelist {
		w.freelist(m.freelist)
	}
	if full && len(w.problems) == 0 && m.freelist != noFreelist {
		lost := 0
		for p := uint64(0); p < w.hwm; p++ {
			if w.seen[p/64]&(1<<(p%64)) == 0 {
				lost++
			}
		}
		if lost > 0 {
			w.fail("%d pages are neither in use nor free", lost)
		}
	}
	return w.problems
}

func (w *walker) fail(format string, args ...any) {
	if len(w.problems) < maxProblems {
		w.problems = append(w.problems, fmt.Sprintf(format, args...))
	}
}

// mark records a reference to pages id..id+overflow; false if one of them
// is out of range or was referenced before.
func (w *walker) mark(id, overflow uint64) bool {
	if id >= w.hwm || overflow >= w.hwm-id {
		w.fail("page %d (+%d overflow) is beyond the high-water mark %d", id, overflow, w.hwm)
		return false
	}
	for p := id; p <= id+overflow; p++ {
		if w.seen[p/64]&(1<<(p%64)) != 0 {
			w.fail("page %d is referenced twice", p)
			return false
		}
		w.seen[p/64] |= 1 << (p % 64)
	}
	return true
}

// page returns page id with its overflow, after checking its header and
// recording the reference.
func (w *walker) page(id uint64) (flags uint16, data []byte, ok bool) {
	if id >= w.hwm {
		w.fail("page %d is beyond the high-water mark %d", id, w.hwm)
		return 0, nil, false
	}
	off := id * w.ps
	hdr := w.mem[off : off+pageHeaderSize] // id < hwm <= size/ps
	ne := binary.NativeEndian
	if got := ne.Uint64(hdr); got != id {
		w.fail("page %d says it is page %d", id, got)
		return 0, nil, false
	}
	overflow := uint64(ne.Uint32(hdr[12:]))
	if !w.mark(id, overflow) {
		return 0, nil, false
	}
	return ne.Uint16(hdr[8:]), w.mem[off : off+(overflow+1)*w.ps], true
}

// tree checks the bucket tree rooted at page id. top: the root bucket,
// whose leaves hold the top-level buckets and are always read whole.
func (w *walker) tree(id uint64, depth int, top bool) {
	if depth > maxDepth {
		w.fail("page %d is %d levels deep", id, depth)
		return
	}
	flags, data, ok := w.page(id)
	if !ok {
		return
	}
	switch flags {
	case branchFlag:
		for _, child := range w.branch(id, data) {
			w.tree(child, depth+1, top)
		}
	case leafFlag:
		if w.full || top {
			w.leaf(id, data, depth, top)
		}
	default:
		w.fail("page %d has flags %#x where a branch or leaf page belongs", id, flags)
	}
}

// elems returns the element count of a page and whether its element array
// fits in data.
func (w *walker) elems(id uint64, data []byte) (int, bool) {
	n := int(binary.NativeEndian.Uint16(data[10:]))
	if pageHeaderSize+n*elemSize > len(data) {
		w.fail("page %d: %d elements do not fit in %d bytes", id, n, len(data))
		return 0, false
	}
	return n, true
}

// within reports whether the n bytes at element i's pos lie inside data.
func within(data []byte, i int, pos, n uint64) bool {
	start := uint64(pageHeaderSize+i*elemSize) + pos
	return start <= uint64(len(data)) && n <= uint64(len(data))-start
}

func (w *walker) branch(id uint64, data []byte) []uint64 {
	children, _ := w.branchKeys(id, data, false)
	return children
}

// branchKeys returns a branch page's children and, with keys, their keys
// (each child's first key), which alias the walk's mapping.
func (w *walker) branchKeys(id uint64, data []byte, keys bool) ([]uint64, [][]byte) {
	n, ok := w.elems(id, data)
	if !ok {
		return nil, nil
	}
	if n == 0 {
		w.fail("branch page %d is empty", id)
	}
	ne := binary.NativeEndian
	children := make([]uint64, 0, n)
	var ks [][]byte
	for i := 0; i < n; i++ {
		e := data[pageHeaderSize+i*elemSize:]
		pos, ksize, child := uint64(ne.Uint32(e)), uint64(ne.Uint32(e[4:])), ne.Uint64(e[8:])
		if ksize == 0 || !within(data, i, pos, ksize) {
			w.fail("branch page %d: key %d lies outside the page", id, i)
			return nil, nil
		}
		children = append(children, child)
		if keys {
			start := uint64(pageHeaderSize+i*elemSize) + pos
			ks = append(ks, data[start:start+ksize]) // valid while the walk maps the file
		}
	}
	return children, ks
}

// leaf checks the elements of a leaf page (or an inline bucket's page) and
// descends into the buckets it holds; top: a leaf of the root bucket, whose
// keys name the top-level buckets.
func (w *walker) leaf(id uint64, data []byte, depth int, top bool) {
	n, ok := w.elems(id, data)
	if !ok {
		return
	}
	ne := binary.NativeEndian
	for i := 0; i < n; i++ {
		e := data[pageHeaderSize+i*elemSize:]
		flags, pos := ne.Uint32(e), uint64(ne.Uint32(e[4:]))
		ksize, vsize := uint64(ne.Uint32(e[8:])), uint64(ne.Uint32(e[12:]))
		if !within(data, i, pos, ksize+vsize) {
			w.fail("leaf page %d: element %d lies outside the page", id, i)
			return
		}
		if flags&bucketFlag == 0 {
			continue
		}
		start := uint64(pageHeaderSize+i*elemSize) + pos + ksize
		v := data[start : start+vsize]
		if len(v) < bucketHeader {
			w.fail("leaf page %d: bucket %d has a %d-byte header", id, i, len(v))
			continue
		}
		if root := ne.Uint64(v); root != 0 {
			key := data[start-ksize : start]
			if w.lazy != nil && top && bytes.Equal(key, bucketEvents) {
				w.lazyTree(root, depth+1)
				continue
			}
			w.tree(root, depth+1, false)
			continue
		}
		inline := v[bucketHeader:]
		if len(inline) < pageHeaderSize || ne.Uint16(inline[8:]) != leafFlag {
			w.fail("leaf page %d: inline bucket %d is not a leaf page", id, i)
			continue
		}
		if depth > maxDepth {
			w.fail("leaf page %d: buckets nested %d deep", id, depth)
			continue
		}
		w.leaf(id, inline, depth+1, false)
	}
}

// freelist checks the freelist page and the ids it lists.
func (w *walker) freelist(id uint64) {
	flags, data, ok := w.page(id)
	if !ok {
		return
	}
	count := binary.NativeEndian.Uint16(data[10:])
	if flags != freelistFlag {
		w.fail("freelist page %d has flags %#x", id, flags)
		return
	}
	ne := binary.NativeEndian
	ids := data[pageHeaderSize:]
	n := uint64(count)
	if count == 0xFFFF {
		n = ne.Uint64(ids)
		ids = ids[8:]
	}
	if n > uint64(len(ids))/8 {
		w.fail("freelist page %d lists %d ids, it has room for %d", id, n, len(ids)/8)
		return
	}
	for i := uint64(0); i < n; i++ {
		p := ne.Uint64(ids[i*8:])
		if p < 2 || !w.mark(p, 0) {
			w.fail("freelist page %d lists page %d, which is in use or out of range", id, p)
			return
		}
	}
}
