package store

import (
	"time"

	"go.uber.org/zap"

	"github.com/rdd-project/rdd/internal/events"
)

// SchemaVersion is the on-disk layout version this rdd writes and the newest
// it reads. Open refuses a file with a larger version (ErrNewerSchema).
const SchemaVersion = 2

// DefaultTimeout is how long Open waits for the file lock when
// Options.Timeout is zero.
const DefaultTimeout = time.Second

// RecentCheckpoints is how many of the newest checkpoints SaveCheckpoint keeps
// unconditionally; older ones are thinned out (see doc.go, Checkpoints).
const RecentCheckpoints = 8

// CheckpointStride bounds the distance between kept checkpoints (see
// checkpointsToDrop): a past snapshot (`status --at`) folds at most this many
// events, ~35 ms, where exponential thinning alone left up to half the log
// (~170 ms at a million events) for a point in its middle.
const CheckpointStride = 1 << 16

// rangeChunk bounds how many events Range decodes per read transaction, so
// a long range never holds one read transaction (and its mmap lock) for long,
// and fn always runs outside any transaction. A variable for tests.
var rangeChunk = 8192

// EventLog is the append-only event log as the daemon consumes it. Log (bbolt)
// and Mem (in memory) implement it identically; storetest.Run checks both.
//
// Methods are safe for concurrent use. Every error wraps one of the package
// sentinels (ErrClosed, ErrCorrupt, ...) or events.ErrInvalidEnvelope.
type EventLog interface {
	// Append validates every envelope, assigns consecutive sequence numbers
	// after LastSeq and stores them atomically: either all are stored (and
	// returned, with Seq set and Time in UTC, exactly as Range will yield them)
	// or none is. The caller's Seq is ignored; its Time is kept (the caller's
	// clock). Appending nothing is a no-op.
	Append(envs ...events.Envelope) ([]events.Envelope, error)

	// LastSeq returns the sequence number of the newest event, 0 when the log
	// is empty. It is cheap (no I/O).
	LastSeq() uint64

	// Range calls fn, in order and outside any transaction, for each event
	// with since < Seq <= LastSeq() as of the call, at most limit events when
	// limit > 0. It stops at the first error from fn and returns it unchanged.
	// It returns ErrCompacted if event since+1 was removed by Compact.
	Range(since uint64, limit int, fn func(events.Envelope) error) error

	// Get returns the event with sequence number seq, ErrNotFound if there is
	// none, ErrCompacted if it was compacted.
	Get(seq uint64) (events.Envelope, error)

	// SaveCheckpoint stores data (an opaque serialized snapshot, not empty) as
	// the state after event seq, 1 <= seq <= LastSeq(), replacing any
	// checkpoint at seq, then applies the checkpoint retention policy.
	SaveCheckpoint(seq uint64, data []byte) error

	// LatestCheckpoint returns the checkpoint with the highest seq; ok is
	// false when there is none.
	LatestCheckpoint() (seq uint64, data []byte, ok bool, err error)

	// CheckpointAtOrBefore returns the checkpoint with the highest seq <= at;
	// ok is false when there is none.
	CheckpointAtOrBefore(at uint64) (seq uint64, data []byte, ok bool, err error)

	// Close releases the log. It is idempotent; afterwards every other method
	// returns ErrClosed (LastSeq keeps returning the last value).
	Close() error
}

// Compactor is implemented by logs that support the retention policy of
// design.md §2. Both Log and Mem implement it.
type Compactor interface {
	// Compact removes every event with Seq <= keepAfter and every checkpoint
	// below keepAfter. It refuses (and removes nothing) unless a checkpoint at
	// a seq >= keepAfter exists, so what it drops is always covered by a
	// checkpoint. It returns how many events it removed; compacting below what
	// is already compacted is a no-op.
	Compact(keepAfter uint64) (removed int, err error)

	// CompactedThrough returns the highest seq removed by Compact, 0 if none.
	// Range(since) needs since >= CompactedThrough().
	CompactedThrough() uint64
}

var (
	_ EventLog  = (*Log)(nil)
	_ EventLog  = (*Mem)(nil)
	_ Compactor = (*Log)(nil)
	_ Compactor = (*Mem)(nil)
)

// Options configure Open. The zero value is valid.
type Options struct {
	// Timeout bounds the wait for the file lock; a second daemon on the same
	// file fails with ErrLocked after it. Zero means DefaultTimeout.
	Timeout time.Duration
	// Logger receives the store's logs; nil means zap.NewNop().
	Logger *zap.Logger
	// Instance is recorded in the meta bucket when the file is created.
	Instance string
	// NoSync skips fsync on commit. Only for tests and benchmarks: a crash
	// can lose or corrupt committed events.
	NoSync bool

	// noMarker: Repair's scratch log must not get a marker of its own.
	noMarker bool
}

// Info describes an open log file, as recorded in its meta bucket.
type Info struct {
	Path     string
	Schema   uint64
	Instance string
	Created  time.Time
}
