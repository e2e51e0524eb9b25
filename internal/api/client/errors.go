package client

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/rdd-project/rdd/internal/api"
)

// ErrDaemonNotRunning matches (errors.Is) every *ConnectError: nothing
// accepted a connection on the socket.
var ErrDaemonNotRunning = errors.New("client: the rdd daemon is not running")

// ConnectError is returned when the socket cannot be dialled.
type ConnectError struct {
	Socket string
	Err    error
}

func (e *ConnectError) Error() string {
	cause := e.Err
	var se *os.SyscallError // "connect: no such file or directory", without the path again
	if errors.As(cause, &se) {
		cause = se
	}
	return fmt.Sprintf("cannot connect to the rdd daemon at %s: %v; start it with `rdd svc start` (or any of `rdd start|set|run`)", e.Socket, cause)
}

// Unwrap returns the dial error.
func (e *ConnectError) Unwrap() error { return e.Err }

// Is reports whether target is ErrDaemonNotRunning.
func (e *ConnectError) Is(target error) bool { return target == ErrDaemonNotRunning }

// IsDaemonNotRunning reports whether err says the daemon could not be reached.
func IsDaemonNotRunning(err error) bool { return errors.Is(err, ErrDaemonNotRunning) }

// UntrustedSocketError is returned, before anything was sent, when the
// process listening on the socket belongs to another user (or cannot be
// identified). It does not match ErrDaemonNotRunning: starting a daemon
// would not help, the socket must be removed first.
type UntrustedSocketError struct {
	Socket string
	UID    int   // the listener's uid; -1 when unknown
	PID    int   // the listener's pid, when known
	Err    error // why the listener could not be identified
}

func (e *UntrustedSocketError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("refusing to talk to %s: cannot tell which user serves it (%v); nothing was sent", e.Socket, e.Err)
	}
	return fmt.Sprintf("refusing to talk to %s: it is served by uid %d (pid %d), not by you (uid %d), so it is not your rdd daemon and nothing was sent: remove the socket (`rm %s`) and start rdd again", e.Socket, e.UID, e.PID, os.Geteuid(), e.Socket)
}

// Unwrap returns why the listener could not be identified, if that was the cause.
func (e *UntrustedSocketError) Unwrap() error { return e.Err }

// APIError is an error answer of the daemon ({"error": …, "code": …}).
type APIError struct {
	// Status is the HTTP status, or 0 when the error came as the last line
	// of a stream (the stream had answered 200 already).
	Status  int
	Code    string // api.Code…
	Message string
	// ResumeSeq is the answer's resumeSeq: on a Conflict, the log starts
	// after it (older events were removed by the retention policy).
	ResumeSeq uint64
}

func (e *APIError) Error() string {
	if e.Message != "" {
		return e.Message
	}
	return fmt.Sprintf("rdd daemon answered %d %s", e.Status, e.Code)
}

// IsRejected reports whether err is the daemon rejecting a `set` (exit 3).
func IsRejected(err error) bool { return hasCode(err, api.CodeRejected) }

// IsForbidden reports whether the daemon refused this user (403).
func IsForbidden(err error) bool { return hasCode(err, api.CodeForbidden) }

// IsTooSlow reports whether a watch was cut off because its reader fell
// behind; reconnect with since = the last seq read.
func IsTooSlow(err error) bool { return hasCode(err, api.CodeTooSlow) }

// ResumeSeq returns the seq to ask again from when err says the read went
// below the start of a compacted log (a Conflict carrying resumeSeq).
func ResumeSeq(err error) (uint64, bool) {
	var ae *APIError
	if errors.As(err, &ae) && ae.Code == api.CodeConflict && ae.ResumeSeq > 0 {
		return ae.ResumeSeq, true
	}
	return 0, false
}

// IsUnavailable reports whether the daemon refused the request because it
// has as many connections or streams open as it allows (503); retry later.
func IsUnavailable(err error) bool { return hasCode(err, api.CodeUnavailable) }

// IsShuttingDown reports whether a stream ended because the daemon stops.
func IsShuttingDown(err error) bool { return hasCode(err, api.CodeShuttingDown) }

func hasCode(err error, code string) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Code == code
}

// maxErrorBody bounds how much of an error answer is read.
const maxErrorBody = 64 << 10

// readAPIError turns a non-2xx answer into an *APIError.
func readAPIError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	var body api.ErrorBody
	if err := json.Unmarshal(b, &body); err != nil || body.Code == "" {
		msg := strings.TrimSpace(string(b))
		if msg == "" {
			msg = resp.Status
		}
		return &APIError{Status: resp.StatusCode, Code: codeForStatus(resp.StatusCode), Message: "rdd daemon: " + msg}
	}
	return &APIError{Status: resp.StatusCode, Code: body.Code, Message: body.Error, ResumeSeq: body.ResumeSeq}
}

func codeForStatus(status int) string {
	switch status {
	case http.StatusBadRequest:
		return api.CodeBadRequest
	case http.StatusForbidden:
		return api.CodeForbidden
	case http.StatusNotFound:
		return api.CodeNotFound
	case http.StatusMethodNotAllowed:
		return api.CodeMethodNotAllowed
	case http.StatusConflict:
		return api.CodeConflict
	case http.StatusUnprocessableEntity:
		return api.CodeRejected
	case http.StatusRequestTimeout:
		return api.CodeRequestTimeout
	case http.StatusServiceUnavailable:
		return api.CodeUnavailable
	}
	return api.CodeInternal
}

// errorLinePrefix starts the last line of a stream that ended in an error:
// the server encodes api.ErrorBody, whose first field is "error", while
// snapshots and envelopes start with other fields.
const errorLinePrefix = `{"error":`

// lineError returns the *APIError of an error line, or nil for a data line.
func lineError(line []byte) error {
	if !bytes.HasPrefix(line, []byte(errorLinePrefix)) {
		return nil
	}
	var body api.ErrorBody
	if err := json.Unmarshal(line, &body); err != nil {
		return fmt.Errorf("rdd daemon sent a malformed error line: %w", err)
	}
	return &APIError{Code: body.Code, Message: body.Error, ResumeSeq: body.ResumeSeq}
}
