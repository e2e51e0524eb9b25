package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
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
	lg := opts.logger(path)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("store: create directory for %s: %w", path, err)
	}

	if err := checkNotLost(path, false); err != nil {
		return nil, err
	}

	created := false
	// The file is locked and its header checked before bbolt maps it:
	// bbolt trusts the header, and a truncated file would otherwise fault
	// (SIGBUS) when a page beyond the end is touched.
	db, err := openBolt(path, &bolt.Options{NoSync: opts.NoSync}, opts.timeout(), syscall.LOCK_EX, func(f *os.File) error {
		size, err := preflight(f, false)
		created = size == 0
		return err
	})
	if err != nil {
		return nil, err
	}

	l := &Log{db: db, path: path, log: lg}
	if !created {
		// A crash between bbolt's creation of the file and our first commit
		// leaves a valid but empty file: initialize it as if it were new.
		created, err = l.empty()
		if err == nil && created {
			err = checkNotLost(path, true)
		}
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
	if err == nil && l.info.Schema < SchemaVersion {
		err = l.upgradeSchema()
	}
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	if opts.noMarker {
		// Repair's scratch log: its final path has the marker already.
	} else if err := writeMarker(path, l.info); err != nil {
		// The log is fine; only the detection of its later loss is missing.
		lg.Warn("cannot record the log's existence; a later loss of the file will not be detected", zap.Error(err))
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
	err := l.update("initialize", func(tx *bolt.Tx) error {
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
	err := l.view("listing buckets", func(tx *bolt.Tx) error {
		return tx.ForEach(func([]byte, *bolt.Bucket) error { n++; return nil })
	})
	if err != nil {
		var se *storeError
		if errors.As(err, &se) {
			return false, err
		}
		return false, corruptError(l.path, "cannot list buckets", err)
	}
	return n == 0, nil
}

// load validates meta and the newest event and fills the in-memory state.
// A fault while reading the mapping (a damaged page) is reported as ErrCorrupt.
func (l *Log) load() error {
	return l.view("loading", func(tx *bolt.Tx) error {
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
		if err := l.checkLastLeaf(); err != nil {
			return err
		}
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

// logger is the store's logger for the log at path.
func (o Options) logger(path string) *zap.Logger {
	lg := o.Logger
	if lg == nil {
		lg = zap.NewNop()
	}
	return lg.With(zap.String("subsystem", "store"), zap.String("path", path))
}

func (o Options) timeout() time.Duration {
	if o.Timeout <= 0 {
		return DefaultTimeout
	}
	return o.Timeout
}

// openBolt opens path with bbolt, options as given (Timeout and OpenFile
// are set here). Before bbolt reads the file, it takes a flock of kind
// lock on it (retried until timeout; bbolt's own flock on the same open
// file description then succeeds at once) and runs check, whose error is
// reported as corruption of path. A panic inside bbolt becomes an error
// and releases the file; every error names path.
func openBolt(path string, options *bolt.Options, timeout time.Duration, lock int, check func(*os.File) error) (*bolt.DB, error) {
	var file *os.File // the file bbolt opened, to release it if bbolt panics
	var db *bolt.DB
	options.Timeout = timeout
	options.OpenFile = func(name string, flag int, perm os.FileMode) (*os.File, error) {
		f, err := os.OpenFile(name, flag, perm)
		if err != nil {
			return nil, err
		}
		if err := flockRetry(f, lock, timeout); err != nil {
			_ = f.Close()
			return nil, lockedError(path, err)
		}
		if err := check(f); err != nil {
			_ = f.Close()
			return nil, corruptError(path, err.Error(), nil)
		}
		file = f
		return f, nil
	}
	err := guard(path, "opening", func() error {
		var err error
		db, err = bolt.Open(path, 0o600, options)
		return err
	})
	if err != nil && db == nil && file != nil {
		// bbolt panicked half-way through opening: closing the file drops the
		// lock, so that `rdd svc check` in this process can open it again.
		_ = file.Close()
	}
	if err != nil {
		return nil, openError(path, err)
	}
	return db, nil
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
	root     uint64 // page of the root bucket
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
	return boltMeta{root: ne.Uint64(m[16:]), pageSize: ne.Uint32(m[8:]), freelist: ne.Uint64(m[32:]), pgid: ne.Uint64(m[40:]), txid: ne.Uint64(m[48:])}, true
}

// preflight checks that the meta page bbolt will use describes a file no
// larger than f, so that every page bbolt can reach is backed by the file,
// and walks the structure bbolt will traverse (see walker; full: every
// page). It returns the file's size (0: a new file bbolt will initialize).
func preflight(f *os.File, full bool) (int64, error) {
	size, m, err := activeMeta(f)
	if err != nil || size == 0 {
		return size, err
	}
	if problems := walkFile(f, size, m, full); len(problems) > 0 {
		what := problems[0]
		if len(problems) > 1 {
			what = fmt.Sprintf("%s (and %d more problems)", what, len(problems)-1)
		}
		return 0, errors.New(what)
	}
	return size, nil
}

// activeMeta returns f's size and the meta record bbolt will use.
func activeMeta(f *os.File) (int64, boltMeta, error) {
	st, err := f.Stat()
	if err != nil {
		return 0, boltMeta{}, err
	}
	size := st.Size()
	if size == 0 {
		return 0, boltMeta{}, nil
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
		return 0, m, fmt.Errorf("no valid bbolt header (%d bytes)", size)
	case !ok0 || (ok1 && m1.txid > m0.txid):
		m = m1
	}
	ps := uint64(m.pageSize)
	if ps < 512 || ps > 1<<20 || ps&(ps-1) != 0 {
		return 0, m, fmt.Errorf("bad page size %d", ps)
	}
	if m.pgid < 2 || (m.freelist != noFreelist && m.freelist >= m.pgid) || m.root < 2 || m.root >= m.pgid {
		return 0, m, fmt.Errorf("bad page high-water mark %d", m.pgid)
	}
	if m.pgid > uint64(size)/ps {
		return 0, m, fmt.Errorf("truncated: the file has %d bytes, its header needs %d", size, m.pgid*ps)
	}
	return size, m, nil
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

// markerPath is the file Open keeps next to the log to record that the log
// exists. Without it, a log truncated to 0 bytes or deleted could not be told
// from a new instance, and Open would silently start an empty history.
func markerPath(path string) string { return path + ".created" }

// checkNotLost refuses to start a new log at path where one existed before:
// the file is missing, empty, or (bare: bbolt found no bucket in it) holds
// no rdd data, while its marker exists.
func checkNotLost(path string, bare bool) error {
	marker := markerPath(path)
	if _, err := os.Lstat(marker); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("store: inspect %s: %w", marker, err)
	}
	st, err := os.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return missingLogError(path, marker, "does not exist")
	case err != nil:
		return fmt.Errorf("store: inspect %s: %w", path, err)
	case st.Size() == 0:
		return missingLogError(path, marker, "is empty (0 bytes)")
	case bare:
		return missingLogError(path, marker, "holds no rdd data")
	}
	return nil
}

// writeMarker records the log's existence (once; it is never rewritten), so
// that checkNotLost catches its loss. It is written only after the log's
// initialization committed: a crash before leaves no marker, and the
// half-created log is initialized again.
func writeMarker(path string, info Info) error {
	marker := markerPath(path)
	if _, err := os.Lstat(marker); err == nil {
		return nil
	}
	body := fmt.Sprintf("rdd event log %s\ninstance %s\ncreated %s\n",
		filepath.Base(path), info.Instance, info.Created.UTC().Format(time.RFC3339Nano))
	f, err := os.OpenFile(marker, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("store: create %s: %w", marker, err)
	}
	_, err = f.WriteString(body)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("store: write %s: %w", marker, err)
	}
	return syncDir(filepath.Dir(path))
}

// upgradeSchema records that this file now holds checksummed values, so that
// an rdd older than schema 2 (which would misread them) refuses it. The
// events and checkpoints already stored stay as they are: readers accept
// both forms (see frame).
func (l *Log) upgradeSchema() error {
	err := l.update("upgrade", func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(metaSchema, []byte(strconv.FormatUint(SchemaVersion, 10)))
	})
	if err != nil {
		return l.wrap("upgrade the schema of", err)
	}
	l.log.Info("upgraded the event log's schema", zap.Uint64("from", l.info.Schema), zap.Uint64("to", SchemaVersion))
	l.info.Schema = SchemaVersion
	return nil
}
