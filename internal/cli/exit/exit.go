// Package exit maps CLI errors to process exit codes (design.md §7).
//
// Commands return errors; only main turns them into an exit code with
// Classify and calls os.Exit. An *Error carries an explicit code; everything
// else is classified by what it wraps.
package exit

import (
	"context"
	"errors"
	"fmt"

	"github.com/rdd-project/rdd/internal/api/client"
)

// Exit codes of every rdd command. `rdd run` also exits with its child's code.
const (
	CodeOK       = 0 // success
	CodeError    = 1 // generic error, including "daemon not reachable"
	CodeUsage    = 2 // usage error: unknown command or flag, wrong arguments
	CodeRejected = 3 // the daemon's validation rejected a spec change
	CodeTimeout  = 4 // a wait deadline expired
	// CodeDaemonDown: rdd status read the event log because the daemon is
	// not running; what it printed is the last recorded state.
	CodeDaemonDown = 5
)

// Error is an error with an explicit exit code. A nil Err means "exit with
// Code and print nothing", which `rdd run` uses to pass on its child's code.
type Error struct {
	Code int
	Err  error
}

func (e *Error) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit status %d", e.Code)
	}
	return e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// Usage marks err as a usage error (exit 2).
func Usage(err error) error { return &Error{Code: CodeUsage, Err: err} }

// Usagef is Usage(fmt.Errorf(format, args...)).
func Usagef(format string, args ...any) error {
	return Usage(fmt.Errorf(format, args...))
}

// Silent is an error that exits with code and prints nothing.
func Silent(code int) error { return &Error{Code: code} }

// Classify returns the exit code for err: 0 for nil, the code of the
// outermost *Error, 4 for a deadline, 3 for a rejection by the daemon, else 1.
func Classify(err error) int {
	if err == nil {
		return CodeOK
	}
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Code
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return CodeTimeout
	}
	if client.IsRejected(err) {
		return CodeRejected
	}
	return CodeError
}

// IsSilent reports whether err must not be printed (an *Error without Err).
func IsSilent(err error) bool {
	e, ok := errors.AsType[*Error](err)
	return ok && e.Err == nil
}

// IsUsage reports whether err is a usage error.
func IsUsage(err error) bool {
	e, ok := errors.AsType[*Error](err)
	return ok && e.Code == CodeUsage
}
