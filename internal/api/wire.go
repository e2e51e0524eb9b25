package api

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Paths of the socket API (design.md §6). Client and server share them.
const (
	PathHealthz = "/v1/healthz"
	PathStatus  = "/v1/status"
	PathEvents  = "/v1/events"
	PathSpec    = "/v1/spec"
	PathApp     = "/v1/app"
	// PathEngine is followed by one of EngineKinds.
	PathEngine = "/v1/engine/"
)

// HeaderVersion carries the daemon's version on every answer.
const HeaderVersion = "Rdd-Version"

// MaxRequestBytes bounds a request body; a larger one is answered 400.
const MaxRequestBytes = 1 << 20

// Content types of answers: one JSON document, or NDJSON (one JSON value a
// line, each line ending in '\n') for streams.
const (
	ContentTypeJSON   = "application/json"
	ContentTypeNDJSON = "application/x-ndjson"
)

// More error codes, besides those in types.go. TooSlow and ShuttingDown only
// appear as the last line of a stream: a stream has answered 200 already.
const (
	CodeMethodNotAllowed = "MethodNotAllowed" // 405
	CodeTooSlow          = "TooSlow"          // watch reader fell behind (ErrWatcherTooSlow)
	CodeShuttingDown     = "ShuttingDown"     // the daemon is stopping; reconnect later
	CodeUnavailable      = "Unavailable"      // 503: too many connections or streams; retry later
	CodeRequestTimeout   = "RequestTimeout"   // 408: the request body did not arrive in time
)

// Health answers GET /v1/healthz. Besides liveness it carries what `rdd
// version` shows of the daemon: its build, and the engine and k3s it runs.
type Health struct {
	Status    string `json:"status"` // always "ok"
	Version   string `json:"version"`
	PID       int    `json:"pid"`
	Commit    string `json:"commit,omitempty"`
	BuildDate string `json:"buildDate,omitempty"`
	GoVersion string `json:"goVersion,omitempty"`
	// Engine and Kubernetes are set while the daemon runs them.
	Engine     *Component `json:"engine,omitempty"`
	Kubernetes *Component `json:"kubernetes,omitempty"`
}

// Component is a piece of software the daemon runs and its version, empty
// when the daemon does not know it (yet).
type Component struct {
	Name    string `json:"name"`
	Version string `json:"version,omitempty"`
}

// DeleteResponse answers DELETE /v1/app.
type DeleteResponse struct {
	Deleted bool `json:"deleted"`
}

// Engine inventory kinds, the last element of GET /v1/engine/{kind}.
const (
	EngineContainers = "containers"
	EngineImages     = "images"
	EngineVolumes    = "volumes"
)

// EngineKinds lists the kinds GET /v1/engine/{kind} serves.
var EngineKinds = []string{EngineContainers, EngineImages, EngineVolumes}

// EngineInventory lists what the container engine holds. The daemon's engine
// adapter implements it; the server answers GET /v1/engine/{kind} from it.
// Each method returns a JSON-able slice (nil is served as []). An engine that
// is not connected should return an *Error with CodeConflict.
//
// Every method is safe for concurrent use.
type EngineInventory interface {
	Containers(ctx context.Context) (any, error)
	Images(ctx context.Context) (any, error)
	Volumes(ctx context.Context) (any, error)
}

// Error is an error with a wire code. A Backend or EngineInventory returns
// one (or wraps one) to choose the answer: the server sends Message with the
// status of Code (CodeBadRequest 400, CodeNotFound 404, CodeConflict 409,
// CodeRejected 422, anything else 500). Errors that are neither an *Error nor
// a *RejectedError are answered 500 Internal.
type Error struct {
	Code    string
	Message string
	// ResumeSeq, when non-zero, is sent as ErrorBody.ResumeSeq: the seq a
	// read below the start of a compacted log should ask again from.
	ResumeSeq uint64
	Err       error // the cause, if any; not sent
}

// Errorf returns an *Error with code and a formatted message; a %w verb in
// format sets Err.
func Errorf(code, format string, args ...any) *Error {
	err := fmt.Errorf(format, args...)
	return &Error{Code: code, Message: err.Error(), Err: errors.Unwrap(err)}
}

func (e *Error) Error() string { return e.Message }

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// statusForCode maps an error code to its HTTP status.
func statusForCode(code string) int {
	switch code {
	case CodeBadRequest:
		return 400
	case CodeForbidden:
		return 403
	case CodeNotFound:
		return 404
	case CodeMethodNotAllowed:
		return 405
	case CodeConflict:
		return 409
	case CodeRejected:
		return 422
	case CodeRequestTimeout:
		return 408
	case CodeUnavailable:
		return 503
	}
	return 500
}

// ParseAt parses the at= query parameter (and `rdd status --at`): a seq ≥ 1
// in decimal, or an RFC 3339 time (fractional seconds allowed).
func ParseAt(s string) (At, error) {
	if s == "" {
		return At{}, errors.New("at is empty: want a seq ≥ 1 or an RFC 3339 time")
	}
	if s[0] >= '0' && s[0] <= '9' && len(s) <= 20 {
		if seq, err := strconv.ParseUint(s, 10, 64); err == nil {
			if seq == 0 {
				return At{}, errors.New("at=0 selects nothing: want a seq ≥ 1 or an RFC 3339 time")
			}
			return At{Seq: seq}, nil
		}
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return At{}, fmt.Errorf("at %q is neither a seq ≥ 1 nor an RFC 3339 time (e.g. 2026-11-26T12:00:00Z)", s)
	}
	return At{Time: t}, nil
}

// String formats a as ParseAt reads it: the seq, else the time in RFC 3339
// with nanoseconds (UTC), else "".
func (a At) String() string {
	switch {
	case a.Seq > 0:
		return strconv.FormatUint(a.Seq, 10)
	case !a.Time.IsZero():
		return a.Time.UTC().Format(time.RFC3339Nano)
	}
	return ""
}
