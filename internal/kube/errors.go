package kube

import (
	"errors"
	"fmt"
	"time"
)

// Sentinels, matched with errors.Is through the typed errors below.
var (
	// ErrNoCluster means the cluster kubeconfig has no usable cluster entry.
	ErrNoCluster = errors.New("kube: cluster kubeconfig has no cluster entry")
	// ErrNoUser means the cluster kubeconfig has no usable user entry.
	ErrNoUser = errors.New("kube: cluster kubeconfig has no user entry")
	// ErrLockHeld means a kubeconfig lock file stayed in place for the whole wait.
	ErrLockHeld = errors.New("kube: kubeconfig lock held")
)

// FileOp names the file operation that failed, for messages and for callers
// that classify errors (e.g. "the user's kubeconfig is unreadable").
type FileOp string

// File operations reported in FileError.
const (
	OpRead   FileOp = "read"
	OpMkdir  FileOp = "create directory for"
	OpWrite  FileOp = "write"
	OpRename FileOp = "replace"
	OpRemove FileOp = "remove"
	OpStat   FileOp = "inspect"
)

// FileError is a filesystem failure on a kubeconfig path. Path is the file the
// user knows (the listed kubeconfig, not a temporary file).
type FileError struct {
	Op   FileOp
	Path string
	Err  error
}

func (e *FileError) Error() string {
	return fmt.Sprintf("%s kubeconfig %s: %v; fix the file or its directory (permissions, immutable flag, a directory or file in the way) and rdd retries", e.Op, e.Path, e.Err)
}

func (e *FileError) Unwrap() error { return e.Err }

// ParseError means a kubeconfig exists but cannot be parsed. rdd never writes
// such a file; the user has to repair it.
type ParseError struct {
	Path string
	Err  error
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("load kubeconfig %s: %v; rdd leaves it untouched until it parses (check it with `kubectl config view`)", e.Path, e.Err)
}

func (e *ParseError) Unwrap() error { return e.Err }

// SourceError means the cluster kubeconfig (k3s's D/k3s.yaml) lacks an entry
// rdd needs. Err is ErrNoCluster or ErrNoUser.
type SourceError struct {
	Path string
	Err  error
}

func (e *SourceError) Error() string {
	return fmt.Sprintf("cluster kubeconfig %s: %v; it is written by k3s and should hold one cluster and one user named \"default\"", e.Path, e.Err)
}

func (e *SourceError) Unwrap() error { return e.Err }

// LockError means kubectl's lock file for a kubeconfig stayed held for the
// whole bounded wait. It matches ErrLockHeld.
type LockError struct {
	Lock   string
	Waited time.Duration
}

func (e *LockError) Error() string {
	return fmt.Sprintf("kubeconfig lock %s still held after %s: kubectl or rdd is writing the kubeconfig, or a crashed writer left the lock behind; remove %s if no kubectl is running", e.Lock, e.Waited, e.Lock)
}

// Is makes errors.Is(err, ErrLockHeld) true.
func (e *LockError) Is(target error) bool { return target == ErrLockHeld }
