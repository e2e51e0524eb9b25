// Package api is the daemon's local API: HTTP/1.1 + JSON over the Unix socket
// H/rdd.sock (design.md §6). The server serves a Backend; the Client is what
// the CLI uses. Wire types live here so both sides share them.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/rdd-project/rdd/internal/events"
)

// SetRequest is the body of POST /v1/spec.
type SetRequest struct {
	// Set maps dotted property names to their values, e.g.
	// {"kubernetes.enabled": "true"} or {"kubernetes.enabled": true}.
	Set    Properties `json:"set"`
	DryRun bool       `json:"dryRun,omitempty"`
	// Command is the CLI command line, recorded as the change's source.
	Command string `json:"command,omitempty"`
}

// Properties maps dotted property names to values as `rdd set` spells
// them. On the wire a value is a JSON string or, for a boolean property, a
// JSON boolean as well (true reads as "true"): what a client writes from a
// typed value. Numbers, null, arrays and objects are refused rather than
// guessed at (1.30 is not "1.30").
type Properties map[string]string

// UnmarshalJSON reads an object of strings and booleans.
func (p *Properties) UnmarshalJSON(b []byte) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	if raw == nil {
		*p = nil
		return nil
	}
	out := make(Properties, len(raw))
	for k, v := range raw {
		var s string
		// null would decode as "" and clear the property unasked.
		if string(v) != "null" && json.Unmarshal(v, &s) == nil {
			out[k] = s
			continue
		}
		var flag bool
		if string(v) != "null" && json.Unmarshal(v, &flag) == nil {
			out[k] = strconv.FormatBool(flag)
			continue
		}
		return fmt.Errorf("value of %q is %s: want a string, or true or false", k, v)
	}
	*p = out
	return nil
}

// SetResponse answers POST /v1/spec. Seq is the seq of the SpecChanged event,
// 0 when nothing changed (then Generation is the current one).
type SetResponse struct {
	Generation int64    `json:"generation"`
	Seq        uint64   `json:"seq"`
	Changed    []string `json:"changed"`
	// Created is true when this write created the App.
	Created bool `json:"created,omitempty"`
	// Spec is the spec after the write (or after the dry run).
	Spec any `json:"spec,omitempty"`
	// Changes lists each changed property with its value before and after
	// the write, in the order of Changed (Old is "" when the write creates
	// the App).
	Changes []Change `json:"changes,omitempty"`
	// Restart is true when applying the write restarts the running machine
	// (the VM, or the host driver's engine), which stops every container in
	// it; Containers is how many containers the engine held before. Both
	// come from the state just before the write.
	Restart    bool `json:"restart,omitempty"`
	Containers int  `json:"containers,omitempty"`
}

// Change is one property's value before and after a write, as `rdd set`
// spells values.
type Change struct {
	Property string `json:"property"`
	Old      string `json:"old"`
	New      string `json:"new"`
}

// ErrorBody is every error answer: {"error": "...", "code": "..."}, plus
// "resumeSeq" when the answer names the seq to ask again from.
type ErrorBody struct {
	Error string `json:"error"`
	Code  string `json:"code"`
	// ResumeSeq is set on a Conflict about a read below the log's start
	// (the retention policy removed those events): ask again with
	// since=ResumeSeq. Clients read it here rather than from Error, whose
	// wording is for people.
	ResumeSeq uint64 `json:"resumeSeq,omitempty"`
}

// Error codes carried in ErrorBody.Code.
const (
	CodeBadRequest = "BadRequest" // 400
	CodeNotFound   = "NotFound"   // 404
	CodeConflict   = "Conflict"   // 409
	CodeRejected   = "Rejected"   // 422: validation refused a property or value
	CodeInternal   = "Internal"   // 500
	CodeForbidden  = "Forbidden"  // 403: peer is not the socket owner
)

// At selects a past snapshot: by Seq when Seq > 0, else by Time when non-zero.
type At struct {
	Seq  uint64
	Time time.Time
}

// EventQuery selects events for GET /v1/events.
type EventQuery struct {
	Since  uint64 // return events with seq > Since
	Limit  int    // 0 means no limit
	Follow bool   // keep streaming new events
}

// Source identifies the peer of a request (from SO_PEERCRED).
type Source struct {
	UID int
	PID int
}

// Backend is what the server serves; the daemon implements it.
//
// Every method is safe for concurrent use.
type Backend interface {
	// Snapshot returns the current snapshot.
	Snapshot() events.Snapshot
	// SnapshotAt folds the log up to at. An at beyond the log is the current snapshot.
	SnapshotAt(ctx context.Context, at At) (events.Snapshot, error)
	// Watch calls fn with the current snapshot (or, when since > 0, with the
	// snapshot after each event with seq > since), then with one snapshot per
	// committed event, in seq order, until ctx ends or fn returns an error.
	// A watcher that falls too far behind gets ErrWatcherTooSlow.
	//
	// fn receives the snapshots in batches: each call passes, in seq order,
	// one or more that are ready, so that the server writes them to the
	// stream at once when it lags; fn must not keep the slice.
	//
	// A seq names one snapshot: every snapshot passed with a given Seq (and
	// Generation), to any watcher, must be the same, because the server
	// encodes it once and sends those bytes to every watch stream.
	Watch(ctx context.Context, since uint64, fn func(batch []events.Snapshot) error) error
	// Events calls fn for each event with seq > q.Since, in order, up to
	// q.Limit; with q.Follow it then waits for new events until ctx ends.
	Events(ctx context.Context, q EventQuery, fn func(events.Envelope) error) error
	// SetSpec validates and applies req. A validation failure is a
	// *RejectedError; nothing is appended then.
	SetSpec(ctx context.Context, req SetRequest, src Source) (SetResponse, error)
	// DeleteApp stops everything, cleans up and appends AppDeleted.
	DeleteApp(ctx context.Context, src Source) error
}

// ReadyWatcher is a Backend whose Watch can wait for updates before it
// collects them. WatchReady calls ready once updates follow the last batch
// and only then collects what is there for fn. The server takes its write
// turn in ready, so a watcher that waited for its turn sends everything
// that arrived meanwhile in one write: a change commits several events
// within milliseconds, and with a thousand watchers a write each for them
// was most of the fan-out's work. Batches passed before the first ready
// (a resume's backlog, the current snapshot) come without it.
type ReadyWatcher interface {
	WatchReady(ctx context.Context, since uint64, ready func() error, fn func(batch []events.Snapshot) error) error
}

// RejectedError is returned by Backend.SetSpec when validation refuses the
// request; the server answers 422 and the CLI exits 3.
type RejectedError struct{ Message string }

func (e *RejectedError) Error() string { return e.Message }

// ErrStreamParked is what a watch stream's fn returns, through the
// Backend's Watch, when the server parks the stream with its broadcast
// (see broadcast.go): the stream goes on, no longer through that Watch.
// Backends return it as any other error of fn.
var ErrStreamParked = errors.New("api: watch stream parked with the broadcast")

// ErrWatcherTooSlow ends a watch whose reader fell behind the bounded buffer.
var ErrWatcherTooSlow = errors.New("api: watcher fell behind; closing watch (reconnect with since=<last seq>)")
