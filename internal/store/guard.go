package store

import (
	"fmt"
	"runtime/debug"

	bolt "go.etcd.io/bbolt"
)

// bbolt trusts the file: it follows page ids, element offsets and lengths
// from the mapping without bounds checks, so a damaged page makes it index
// out of range, panic on an assertion ("pgid above high water mark") or read
// outside the mapping (SIGSEGV/SIGBUS). Every bbolt call the store makes
// after Open's preflight goes through guard, which turns all three into an
// ErrCorrupt naming the file instead of a crash of the daemon or the CLI.
//
// The fault half relies on debug.SetPanicOnFault, which is per goroutine:
// guarded code must not hand bbolt's mapping to another goroutine (bbolt's
// own Tx.Check does, hence checkTx in check.go).

// guard runs fn with faults turned into panics and recovers any panic into
// an ErrCorrupt for path. what names the operation for the message.
func guard(path, what string, fn func() error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = damagedError(path, fmt.Sprintf("%s failed on a damaged page (%v); rdd will not write to this file any more", what, r), nil)
		}
	}()
	return fn()
}

// view is db.View under guard. A page that made bbolt panic or fault is
// structural damage, which a write could spread (bbolt would free or reuse
// pages through it), so after one the log refuses every further write: the
// error is kept and returned by later writers. Damage to a single value (a
// checksum) does not stop writes.
func (l *Log) view(what string, fn func(*bolt.Tx) error) error {
	return l.guarded(what, func() error { return l.db.View(fn) })
}

// update is db.Update under guard. A write transaction that panicked may also
// have left bbolt's in-memory freelist half updated.
func (l *Log) update(what string, fn func(*bolt.Tx) error) error {
	if err := l.writeRefused(); err != nil {
		return err
	}
	if l.lazy != nil {
		return fmt.Errorf("store: %s %s: the log was opened for reading only (OpenReader)", what, l.path)
	}
	return l.guarded(what, func() error { return l.db.Update(fn) })
}

func (l *Log) guarded(what string, fn func() error) error {
	panicked := true
	err := guard(l.path, what, func() error {
		err := fn()
		panicked = false
		return err
	})
	if panicked {
		l.refuseWrites(err)
	}
	return err
}

// writeRefused returns the error that made the log refuse writes, nil if none.
func (l *Log) writeRefused() error {
	if p := l.broken.Load(); p != nil {
		return *p
	}
	return nil
}

func (l *Log) refuseWrites(err error) {
	l.broken.CompareAndSwap(nil, &err)
}
