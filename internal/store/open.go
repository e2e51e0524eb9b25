package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
	"go.uber.org/zap"
)

// Bucket and meta key names (see doc.go). Persisted: never rename.
var (
	bucketEvents      = []byte("events")
	bucketMeta        = []byte("meta")
	bucketCheckpoints = []byte("checkpoints")

	metaSchema    = []byte("schema")
	metaInstance  = []byte("instance")
	metaCreated   = []byte("created")
	metaCompacted = []byte("compacted")
)

// lockRetry is how often Open retries a held file lock (bbolt uses the same).
const lockRetry = 50 * time.Millisecond

// Open opens the event log at path, creating it (and its directory, mode
// 0700) if it does not exist; the file is created with mode 0600.
//
// Open takes an exclusive lock on the file and fails with ErrLocked when it
// cannot get it within opts.Timeout. It refuses a file written by a newer rdd
// (ErrNewerSchema) and a file that is not an intact rdd log (ErrCorrupt):
// it checks the bbolt header against the file size, the meta bucket and that
// the newest event decodes. It does not scan the log (see Check), so it is
// fast whatever the log's size.
func Open(path string, opts Options) (*Log, error) {
	start := time.Now()
	lg := opts.Logger
	if lg == nil {
		lg = zap.NewNop()
	}
	lg = lg.With(zap.String("subsystem", "store"), zap.String("path", path))
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("store: create directory for %s: %w", path, err)
	}

	created := false
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout: timeout,
		NoSync:  opts.NoSync,
		// The file is locked and its header checked before bbolt maps it:
		// bbolt trusts the header, and a truncated file would otherwise
		// fault (SIGBUS) when a page beyond the end is touched.
		OpenFile: func(name string, flag int, perm os.FileMode) (*os.File, error) {
			f, err := os.OpenFile(name, flag, perm)
			if err != nil {
				return nil, err
			}
			if err := lockFile(f, timeout); err != nil {
				_ = f.Close()
				return nil, lockedError(path, err)
			}
			size, err := preflight(f)
			if err != nil {
				_ = f.Close()
				return nil, corruptError(path, err.Error(), nil)
			}
			created = size == 0
			return f, nil
		},
	})
	if err != nil {
		var se *storeError
		switch {
		case errors.As(err, &se):
			return nil, err
		case errors.Is(err, berrors.ErrTimeout):
			return nil, lockedError(path, err)
		case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrVersionMismatch),
			errors.Is(err, berrors.ErrChecksum), errors.Is(err, berrors.ErrInvalidMapping):
			return nil, corruptError(path, "bbolt refused the file", err)
		}
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}

	l := &Log{db: db, path: path, log: lg}
	if !created {
		// A crash between bbolt's creation of the file and our first commit
		// leaves a valid but empty file: initialize it as if it were new.
		created, err = l.empty()
	}
	if err == nil && created {
		err = l.initialize(opts.Instance)
		if err == nil {
			err = syncDir(filepath.Dir(path))
		}
	}
	if err == nil {
		err = l.load()
	}
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	lg.Info("opened event log",
		zap.Uint64("last-seq", l.last.Load()),
		zap.Uint64("compacted-through", l.compacted.Load()),
		zap.Bool("created", created),
		zap.Duration("took", time.Since(start)))
	return l, nil
}

// initialize creates the buckets and meta of a new file.
func (l *Log) initialize(instance string) error {
	err := l.db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketEvents, bucketMeta, bucketCheckpoints} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		m := tx.Bucket(bucketMeta)
		for k, v := range map[string]string{
			string(metaSchema):   strconv.FormatUint(SchemaVersion, 10),
			string(metaInstance): instance,
			string(metaCreated):  time.Now().UTC().Format(time.RFC3339Nano),
		} {
			if err := m.Put([]byte(k), []byte(v)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: initialize %s: %w", l.path, err)
	}
	return nil
}

// empty reports whether the file holds no bucket at all.
func (l *Log) empty() (bool, error) {
	n := 0
	err := l.db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func([]byte, *bolt.Bucket) error { n++; return nil })
	})
	if err != nil {
		return false, corruptError(l.path, "cannot list buckets", err)
	}
	return n == 0, nil
}

// load validates meta and the newest event and fills the in-memory state.
// A fault while reading the mapping (a damaged page) is reported as ErrCorrupt.
func (l *Log) load() (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = corruptError(l.path, fmt.Sprintf("reading the file failed: %v", r), nil)
		}
	}()
	return l.db.View(func(tx *bolt.Tx) error {
		m := tx.Bucket(bucketMeta)
		if m == nil {
			return corruptError(l.path, "no meta bucket", nil)
		}
		schema, err := strconv.ParseUint(string(m.Get(metaSchema)), 10, 64)
		if err != nil || schema == 0 {
			return corruptError(l.path, fmt.Sprintf("bad schema version %q", m.Get(metaSchema)), nil)
		}
		if schema > SchemaVersion {
			return newerSchemaError(l.path, schema)
		}
		info := Info{Path: l.path, Schema: schema, Instance: string(m.Get(metaInstance))}
		if c := m.Get(metaCreated); c != nil {
			if info.Created, err = time.Parse(time.RFC3339Nano, string(c)); err != nil {
				return corruptError(l.path, fmt.Sprintf("bad creation time %q", c), nil)
			}
		}
		var compacted uint64
		if c := m.Get(metaCompacted); c != nil {
			if compacted, err = strconv.ParseUint(string(c), 10, 64); err != nil {
				return corruptError(l.path, fmt.Sprintf("bad compaction mark %q", c), nil)
			}
		}
		b := tx.Bucket(bucketEvents)
		if b == nil || tx.Bucket(bucketCheckpoints) == nil {
			return corruptError(l.path, "missing events or checkpoints bucket", nil)
		}
		last := b.Sequence()
		k, v := b.Cursor().Last()
		switch seq, ok := keySeq(k); {
		case k == nil && last != compacted:
			return corruptError(l.path, fmt.Sprintf("no events, but the sequence is at %d (compacted through %d)", last, compacted), nil)
		case k != nil && (!ok || seq != last):
			return corruptError(l.path, fmt.Sprintf("newest event key %x does not match the sequence %d", k, last), nil)
		case k != nil:
			if _, err := l.decodeAt(seq, v); err != nil {
				return err
			}
		}
		if compacted > last {
			return corruptError(l.path, fmt.Sprintf("compaction mark %d beyond the last event %d", compacted, last), nil)
		}
		l.info = info
		l.last.Store(last)
		l.compacted.Store(compacted)
		return nil
	})
}

// lockFile takes an exclusive flock on f, retrying until timeout. bbolt then
// locks the same open file description again, which succeeds at once.
func lockFile(f *os.File, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
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

// bbolt's file header (go.etcd.io/bbolt/internal/common, format version 2):
// pages 0 and 1 each hold a 16-byte page header followed by the meta record
// below, in the machine's byte order; checksum is FNV-64a of the preceding
// 56 bytes.
const (
	boltMagic      = 0xED0CDAED
	boltVersion    = 2
	pageHeaderSize = 16
	metaSize       = 64
	noFreelist     = ^uint64(0)
)

type boltMeta struct {
	pageSize uint32
	freelist uint64
	pgid     uint64 // high-water mark: every page in use is below it
	txid     uint64
}

// parseMeta decodes and validates a meta record (page header included).
func parseMeta(p []byte) (boltMeta, bool) {
	if len(p) < pageHeaderSize+metaSize {
		return boltMeta{}, false
	}
	m := p[pageHeaderSize : pageHeaderSize+metaSize]
	ne := binary.NativeEndian
	h := fnv.New64a()
	_, _ = h.Write(m[:56])
	if ne.Uint32(m[0:]) != boltMagic || ne.Uint32(m[4:]) != boltVersion || ne.Uint64(m[56:]) != h.Sum64() {
		return boltMeta{}, false
	}
	return boltMeta{pageSize: ne.Uint32(m[8:]), freelist: ne.Uint64(m[32:]), pgid: ne.Uint64(m[40:]), txid: ne.Uint64(m[48:])}, true
}

// preflight checks that the meta page bbolt will use describes a file no
// larger than f, so that every page bbolt can reach is backed by the file.
// It returns the file's size (0: a new file bbolt will initialize).
func preflight(f *os.File) (int64, error) {
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	size := st.Size()
	if size == 0 {
		return 0, nil
	}
	read := func(off int64) []byte {
		buf := make([]byte, pageHeaderSize+metaSize)
		n, err := f.ReadAt(buf, off)
		if err != nil && !errors.Is(err, io.EOF) {
			return nil
		}
		return buf[:n]
	}
	m0, ok0 := parseMeta(read(0))
	var m1 boltMeta
	ok1 := false
	if ok0 {
		m1, ok1 = parseMeta(read(int64(m0.pageSize)))
	} else {
		for ps := int64(1024); ps <= 64*1024 && !ok1; ps *= 2 {
			m1, ok1 = parseMeta(read(ps))
		}
	}
	m := m0
	switch {
	case !ok0 && !ok1:
		return 0, fmt.Errorf("no valid bbolt header (%d bytes)", size)
	case !ok0 || (ok1 && m1.txid > m0.txid):
		m = m1
	}
	ps := uint64(m.pageSize)
	if ps < 512 || ps&(ps-1) != 0 {
		return 0, fmt.Errorf("bad page size %d", ps)
	}
	if m.pgid < 2 || (m.freelist != noFreelist && m.freelist >= m.pgid) {
		return 0, fmt.Errorf("bad page high-water mark %d", m.pgid)
	}
	if need := m.pgid * ps; uint64(size) < need || m.pgid > uint64(size)/ps {
		return 0, fmt.Errorf("truncated: the file has %d bytes, its header needs %d", size, need)
	}
	return size, nil
}

// syncDir makes a newly created file's directory entry durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("store: sync %s: %w", dir, err)
	}
	defer func() { _ = d.Close() }()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("store: sync %s: %w", dir, err)
	}
	return nil
}
