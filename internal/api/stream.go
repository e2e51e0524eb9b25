package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/rdd-project/rdd/internal/events"
)

// finalLineTimeout bounds the write of the last line of a stream.
const finalLineTimeout = time.Second

// watch serves GET /v1/status?watch=true[&since=SEQ]: one snapshot a line,
// flushed after each, for as long as the Backend's Watch runs.
//
// The stream takes the connection over from net/http (see hijack.go), so
// that an idle watcher holds a few KiB instead of net/http's buffers and
// goroutines; a ResponseWriter that cannot be taken over (tests through
// RoutesForTest) is served in place.
func (s *Server) watch(w http.ResponseWriter, r *http.Request, since uint64) {
	release, ok := s.claimStream(w, r)
	if !ok {
		return
	}
	if st, ok := s.hijackStream(w, r); ok {
		s.serveHijacked(st, since, release)
		return
	}
	defer release()
	ctx, cancel := s.streamContext(r)
	defer cancel()
	s.runWatch(s.newStream(ctx, w, r, true), since, release)
}

// runWatch sends the Backend's snapshots on st until the watch ends, then
// ends the stream. It serves the streams that cannot park.
func (s *Server) runWatch(st *stream, since uint64, release func()) {
	st.start() // the reader's request returns even when the first line waits
	s.endWatch(st, since, release, s.watchFrom(st, since, nil))
}

// endWatch ends st after its watch from since returned err.
func (s *Server) endWatch(st *stream, since uint64, release func(), err error) {
	if errors.Is(err, ErrWatcherTooSlow) {
		s.log.Info("watch cut off: reader fell behind", zap.Uint64("since", since))
	}
	release()
	st.finish(err)
}

// errParked is returned by watchFrom once st is parked with the broadcast,
// which owns it from then on: the goroutine that ran it returns.
var errParked = errors.New("api: the stream is parked")

// watchFrom sends the Backend's snapshots after since on st until the
// watch ends or st parks. back, when non-nil, is how the broadcast handed
// st back: the stream goes on from there.
func (s *Server) watchFrom(st *stream, since uint64, back *parkEnd) error {
	if back != nil {
		if back.err != nil {
			st.werr = back.err
			return back.err
		}
		if err := st.ctx.Err(); err != nil {
			return err
		}
		if len(back.rest) > 0 {
			if err := st.writeRest(back.rest); err != nil {
				return err
			}
		}
		since = back.sent
		if back.again && s.bc.park(st, since, back.epoch) {
			return errParked
		}
	}
	// A watcher that lags gets what it missed in one write: a change
	// commits several events within milliseconds (the controllers answer
	// it), and a write per line made each one a syscall and a wake-up of
	// the reader.
	send := func(batch []events.Snapshot) error {
		lines := st.lines[:0]
		for i := range batch {
			b, err := s.shared.line(&batch[i])
			if err != nil {
				return err
			}
			lines = append(lines, b)
		}
		err := st.writeLines(lines...)
		clear(st.lines[:])
		if err != nil || len(batch) == 0 {
			return err
		}
		sent := batch[len(batch)-1].Seq
		if epoch, ok := s.bc.parkable(st, sent); ok {
			return parkAt{sent, epoch}
		}
		return nil
	}
	for {
		var err error
		if rw, ok := s.b.(ReadyWatcher); ok && st.conn != nil {
			// The turn is taken before the batch is collected (see
			// ReadyWatcher); writeInTurn gives it back.
			err = rw.WatchReady(st.ctx, since, st.takeTurn, send)
			st.giveTurn()
		} else {
			err = s.b.Watch(st.ctx, since, send)
		}
		var p parkAt
		if !errors.As(err, &p) {
			return err
		}
		// The stream parks outside the Backend's Watch, which holds
		// nothing for it meanwhile; if it cannot, it goes on from there.
		if s.bc.park(st, p.seq, p.epoch) {
			return errParked
		}
		since = p.seq
	}
}

// events serves GET /v1/events?since=&limit=&follow=: one envelope a line,
// encoded with events.Marshal; flushed after each line when following.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	q, ok := s.query(w, r, "since", "limit", "follow")
	if !ok {
		return
	}
	since, err := q.uint("since")
	var limit uint64
	var follow bool
	if err == nil {
		limit, err = q.uint("limit")
	}
	if err == nil && limit > math.MaxInt32 {
		err = fmt.Errorf("limit=%d is too large", limit)
	}
	if err == nil {
		follow, err = q.boolean("follow")
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, CodeBadRequest, err.Error())
		return
	}
	release := func() {}
	if follow {
		if release, ok = s.claimStream(w, r); !ok {
			return
		}
		defer release()
	}
	ctx, cancel := s.streamContext(r)
	defer cancel()
	st := s.newStream(ctx, w, r, follow)
	defer st.close()
	if follow {
		st.start()
	}
	err = s.b.Events(ctx, EventQuery{Since: since, Limit: int(limit), Follow: follow}, func(e events.Envelope) error {
		b, err := events.Marshal(e)
		if err != nil {
			return fmt.Errorf("encode event %d: %w", e.Seq, err)
		}
		return st.line(b)
	})
	if err == nil && !st.started {
		st.start() // no events: an empty 200
	}
	release()
	st.finish(err)
}

// streamContext returns the context of a stream: it ends with the request
// and also as soon as Serve's ctx ends, so streams do not hold up shutdown.
func (s *Server) streamContext(r *http.Request) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(r.Context())
	if stop, ok := r.Context().Value(stopKey{}).(context.Context); ok {
		unregister := context.AfterFunc(stop, cancel)
		return ctx, func() { unregister(); cancel() }
	}
	return ctx, cancel
}

// stopContext returns Serve's ctx, or nil for a request that did not come
// through Serve (RoutesForTest).
func stopContext(r *http.Request) context.Context {
	stop, _ := r.Context().Value(stopKey{}).(context.Context)
	return stop
}

// stream writes NDJSON lines to one response. It is used by one goroutine
// at a time (the handler, or the Backend's fn while Watch/Events runs).
//
// A stream writes either through the ResponseWriter w, or, taken over from
// net/http, straight to conn (see hijack.go); then w and rc are nil.
type stream struct {
	s         *Server
	w         http.ResponseWriter
	rc        *http.ResponseController
	conn      *hijackedConn
	ctx       context.Context
	flushEach bool
	started   bool
	werr      error // the first write error: the reader is gone or stalled
	hasTurn   bool  // a write turn taken ahead of the write (takeTurn)

	lines [8][]byte // a batch's lines, reused

	release      func()      // its stream slot's (hijacked streams)
	stopCtxWatch func() bool // while parked: stops the hand-back when ctx ends

	uri        string          // the request's, for the log
	stop       context.Context // Serve's ctx; nil outside Serve
	readerGone func() bool     // the reader hung up

	// When ctx ends, wake moves the write deadline to now, so that a write
	// blocked on a reader that does not read returns. woke is closed after.
	stopWake func() bool
	woke     chan struct{}
	closed   bool
}

// newStream returns a stream of r's response through w.
func (s *Server) newStream(ctx context.Context, w http.ResponseWriter, r *http.Request, flushEach bool) *stream {
	st := &stream{
		s: s, w: w, rc: http.NewResponseController(w), ctx: ctx, flushEach: flushEach,
		uri: r.URL.RequestURI(), stop: stopContext(r),
		readerGone: func() bool { return r.Context().Err() != nil },
	}
	st.wakeOnDone()
	return st
}

// wakeOnDone arranges for a write blocked when ctx ends to return.
func (st *stream) wakeOnDone() {
	st.woke = make(chan struct{})
	st.stopWake = context.AfterFunc(st.ctx, func() {
		st.setWriteDeadline(time.Now())
		close(st.woke)
	})
}

// armWrite moves the write deadline to d from now and returns ctx's
// error, checked after the deadline moved: a ctx that ends in between has
// its wake (wakeOnDone) move the deadline to now, after this one.
func (st *stream) armWrite(d time.Duration) error {
	st.setWriteDeadline(time.Now().Add(d))
	return st.ctx.Err()
}

func (st *stream) setWriteDeadline(t time.Time) {
	if st.conn != nil {
		_ = st.conn.SetWriteDeadline(t)
		return
	}
	_ = st.rc.SetWriteDeadline(t)
}

// start sends the 200 header; with flushEach, at once.
func (st *stream) start() {
	st.started = true
	if st.conn != nil {
		st.werr = st.conn.writeHeader(st.s.opts.StreamWriteTimeout)
		return
	}
	st.w.Header().Set("Content-Type", ContentTypeNDJSON)
	st.w.WriteHeader(http.StatusOK)
	if st.flushEach {
		st.flush()
	}
}

func (st *stream) flush() {
	if st.conn != nil {
		return // every write goes out at once
	}
	if err := st.rc.Flush(); err != nil && st.werr == nil {
		st.werr = err
	}
}

// write writes b, one or more whole lines, to the response.
func (st *stream) write(lines ...[]byte) error {
	if st.conn != nil {
		return st.conn.writeChunk(lines...)
	}
	for _, b := range lines {
		if _, err := st.w.Write(b); err != nil {
			return err
		}
	}
	return nil
}

// line writes b and '\n' within StreamWriteTimeout.
func (st *stream) line(b []byte) error { return st.writeLines(append(b, '\n')) }

// writeLines writes lines, each ending in '\n', within StreamWriteTimeout.
// It does not modify them.
func (st *stream) writeLines(lines ...[]byte) error {
	if st.werr != nil {
		return st.werr
	}
	if !st.started {
		st.start()
	}
	if st.conn != nil {
		return st.writeInTurn(lines...)
	}
	if err := st.armWrite(st.s.opts.StreamWriteTimeout); err != nil {
		return err
	}
	if err := st.write(lines...); err != nil {
		st.werr = err
		return err
	}
	if st.flushEach {
		st.flush()
	}
	return st.werr
}

// close stops the wake-up and clears the write deadline, which would
// otherwise outlive the stream on a kept-alive connection. It is idempotent.
func (st *stream) close() {
	if st.closed {
		return
	}
	st.closed = true
	if !st.stopWake() {
		<-st.woke // wake ran or runs: let it finish before the deadline is reset
	}
	st.setWriteDeadline(time.Time{})
}

// finish ends the stream after its Backend call returned err: with a last
// error line when the reader should know why it ends, with nothing when the
// reader went away or the stream simply ended.
func (st *stream) finish(err error) {
	st.close()
	var body ErrorBody
	switch {
	case st.werr != nil:
		return // the reader stalled or went away: nobody to tell
	case err == nil && st.ctx.Err() == nil:
		st.end()
		return // the stream is complete
	case st.stop != nil && st.stop.Err() != nil:
		body = ErrorBody{Code: CodeShuttingDown, Error: "the rdd daemon is shutting down; reconnect when it is back"}
	case st.readerGone(), err == nil:
		return // the reader went away
	case errors.Is(err, ErrWatcherTooSlow):
		body = ErrorBody{Code: CodeTooSlow, Error: "watch fell behind the daemon and was closed; reconnect with since=<last seq>"}
	default:
		body = errorBody(err)
		if statusForCode(body.Code) == http.StatusInternalServerError {
			body.Code, body.ResumeSeq = CodeInternal, 0
			st.s.log.Error("stream failed", zap.String("uri", st.uri), zap.Error(err))
		}
	}
	if !st.started {
		writeErrorBody(st.w, statusForCode(body.Code), body)
		return
	}
	b, _ := json.Marshal(body) // cannot fail: strings and a number
	st.setWriteDeadline(time.Now().Add(finalLineTimeout))
	if err := st.write(append(b, '\n')); err == nil {
		st.flush()
		st.end()
	}
	st.setWriteDeadline(time.Time{})
}

// end closes the body of a stream that writes to its connection itself
// (the last chunk); net/http does it for the others.
func (st *stream) end() {
	if st.conn != nil {
		_ = st.conn.writeEnd()
	}
}
