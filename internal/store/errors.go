package store

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every error the store returns for one of these conditions
// wraps the sentinel (test with errors.Is) and carries a message that names the
// log file and, where the user can act, says what to do.
var (
	// ErrLocked is returned by Open when another process (or another Log in
	// this process) holds the file's exclusive lock for longer than
	// Options.Timeout. It wraps bbolt's timeout error.
	ErrLocked = errors.New("store: log file is locked by another process")

	// ErrNewerSchema is returned by Open when the file's schema version is
	// newer than SchemaVersion: a newer rdd wrote it. Open writes nothing to it.
	ErrNewerSchema = errors.New("store: log file was written by a newer rdd")

	// ErrCorrupt is returned when the file is not an rdd event log, cannot be
	// mapped, fails a consistency check, holds a value that fails its checksum
	// or does not decode (DamagedAt then gives the event's seq), or is missing
	// or empty where the instance had a log.
	ErrCorrupt = errors.New("store: log file is corrupt")

	// ErrClosed is returned by every method called after Close.
	ErrClosed = errors.New("store: log is closed")

	// ErrNotFound is returned by Get for a sequence number that was never
	// assigned (0, or beyond LastSeq).
	ErrNotFound = errors.New("store: no such event")

	// ErrCompacted is returned by Range and Get when the requested events were
	// removed by Compact; start again from a checkpoint at or after
	// CompactedThrough.
	ErrCompacted = errors.New("store: events were compacted")
)

// storeError is the concrete error behind the sentinels: a complete message
// (naming the file) plus the sentinel kind and, optionally, the cause, both
// reachable through errors.Is / errors.As.
type storeError struct {
	kind  error
	msg   string
	cause error
	seq   uint64 // the first unreadable event, 0 if none is known
}

func (e *storeError) Error() string { return e.msg }
func (e *storeError) Unwrap() []error {
	if e.cause == nil {
		return []error{e.kind}
	}
	return []error{e.kind, e.cause}
}

func lockedError(path string, cause error) error {
	return &storeError{kind: ErrLocked, cause: cause, msg: fmt.Sprintf(
		"store: another process holds %s: is another rdd daemon running for this instance? stop it with `rdd svc stop`", path)}
}

func newerSchemaError(path string, found uint64) error {
	return &storeError{kind: ErrNewerSchema, msg: fmt.Sprintf(
		"store: %s was written by a newer rdd (schema version %d, this rdd supports up to %d): upgrade rdd, or move the file away to start a new log",
		path, found, SchemaVersion)}
}

// repairHint says what to do about a damaged log.
const repairHint = "run `rdd svc check` to see what is damaged, then `rdd svc repair` to keep every intact event in a new log (the damaged file is kept aside); both need the daemon stopped (`rdd svc stop`)"

// corruptError reports a damaged file; what describes the damage.
func corruptError(path, what string, cause error) error {
	return damagedError(path, what, cause)
}

// damagedError reports damage found in path; what says where.
func damagedError(path, what string, cause error) error {
	msg := fmt.Sprintf("store: %s is damaged or not an rdd event log: %s", path, what)
	if cause != nil {
		msg += ": " + cause.Error()
	}
	msg += "; " + repairHint
	return &storeError{kind: ErrCorrupt, cause: cause, msg: msg}
}

// badEventError reports that event seq, and so the log from seq on, cannot
// be read; the events before it are intact.
func badEventError(path string, seq uint64, what string, cause error) error {
	msg := fmt.Sprintf("store: %s is damaged at event %d (%s", path, seq, what)
	if cause != nil {
		msg += ": " + cause.Error()
	}
	msg += fmt.Sprintf("); the events before %d are intact; %s", seq, repairHint)
	return &storeError{kind: ErrCorrupt, cause: cause, msg: msg, seq: seq}
}

// DamagedAt returns the seq of the first event err reports as unreadable,
// false if err is not about one event.
func DamagedAt(err error) (uint64, bool) {
	var se *storeError
	if errors.As(err, &se) && se.seq != 0 {
		return se.seq, true
	}
	return 0, false
}

// missingLogError reports an empty or missing log where one existed before.
func missingLogError(path, marker, what string) error {
	return &storeError{kind: ErrCorrupt, msg: fmt.Sprintf(
		"store: %s %s, but this instance had an event log (%s records its creation): restore the file from a backup, or, to start a new empty log and lose the history, move %s aside",
		path, what, marker, marker)}
}

func closedError(path string) error {
	return &storeError{kind: ErrClosed, msg: fmt.Sprintf("store: %s: log is closed", path)}
}

func notFoundError(path string, seq, last uint64) error {
	return &storeError{kind: ErrNotFound, msg: fmt.Sprintf(
		"store: %s: no event with seq %d (last is %d)", path, seq, last)}
}

// CompactedError is the error behind ErrCompacted: event Want is gone because
// every event up to Through was removed by Compact. Through is read in the
// same transaction that missed the event, so it is exact even while a
// Compact is under way (CompactedThrough may still report less).
type CompactedError struct {
	Path          string
	Want, Through uint64
}

func (e *CompactedError) Error() string {
	return fmt.Sprintf("store: %s: event %d was compacted (events up to %d are gone); start from a checkpoint", e.Path, e.Want, e.Through)
}

// Is makes errors.Is(err, ErrCompacted) hold.
func (e *CompactedError) Is(target error) bool { return target == ErrCompacted }

// compactedError reports that event want is no longer in the log.
func compactedError(path string, want, through uint64) error {
	return &CompactedError{Path: path, Want: want, Through: through}
}
