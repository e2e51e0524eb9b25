package api

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"strconv"
	"syscall"
	"time"

	"go.uber.org/zap"
)

// A watch stream is mostly idle, and there may be a thousand of them. Served
// by net/http, each held a connection goroutine (deep in the handler's
// stack), a background-read goroutine, 4 KiB read and write buffers and a
// 2 KiB chunking buffer: about 35 KiB a watcher (issue 10). Taken over, a
// watcher holds its connection and one small goroutine that waits for the
// reader to hang up, plus, while it is not parked with the broadcast
// (broadcast.go), one that waits for the Backend; each batch of lines goes
// out as one chunk in one writev(2), with no copy of the shared encoding.

// hijackedConn is a watch stream's connection taken over from net/http.
// The stream writes the HTTP/1.1 response itself: a chunked body and
// "Connection: close", because the connection cannot go back to net/http.
type hijackedConn struct {
	net.Conn                 // as net/http had it: Close returns the limiter's slots
	w        net.Conn        // where writes go: under a limitedConn, the connection writev(2) needs
	header   []byte          // the response header until it is written
	raw      syscall.RawConn // w's, for the broadcaster's writes; nil if w has none
	stop     func()          // ends the stream's context and its hang-up watch

	// A chunk's framing and its writev(2) vector, reused: a thousand
	// watchers write every change, and the garbage collector, which scans
	// every watcher's stack, was a quarter of the daemon's work.
	size [18]byte
	iov  [10][]byte
	bufs net.Buffers
}

// hijackStream takes over the connection of a watch request and returns a
// stream on it whose context ends when Serve's ctx ends or the reader hangs
// up. It returns false when w cannot be taken over; nothing is written then.
func (s *Server) hijackStream(w http.ResponseWriter, r *http.Request) (*stream, bool) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		return nil, false
	}
	h := w.Header()
	h.Set("Content-Type", ContentTypeNDJSON)
	h.Set("Transfer-Encoding", "chunked")
	h.Set("Connection", "close")
	h.Set("Date", time.Now().UTC().Format(http.TimeFormat))
	var hb bytes.Buffer
	hb.WriteString("HTTP/1.1 200 OK\r\n")
	_ = h.Write(&hb) // a bytes.Buffer does not fail
	hb.WriteString("\r\n")
	conn, _, err := hj.Hijack()
	if err != nil {
		return nil, false
	}
	// What the client sent after its request (nothing, for a watch) is
	// dropped with net/http's buffer: the stream never reads requests again.
	ctx, cancel := context.WithCancel(context.WithoutCancel(r.Context()))
	unregister := func() bool { return false }
	stop := stopContext(r)
	if stop != nil {
		unregister = context.AfterFunc(stop, cancel)
	}
	hc := &hijackedConn{Conn: conn, w: conn, header: hb.Bytes(), stop: func() { unregister(); cancel() }}
	if lc, ok := conn.(*limitedConn); ok {
		hc.w = lc.Conn
	}
	if sc, ok := hc.w.(syscall.Conn); ok {
		hc.raw, _ = sc.SyscallConn()
	}
	gone := make(chan struct{})
	go func() {
		// A watch client sends nothing after its request: a read returns
		// when it hangs up, or when it misbehaves, which ends the stream too.
		var b [1]byte
		_, _ = conn.Read(b[:])
		close(gone)
		cancel()
	}()
	st := &stream{s: s, conn: hc, ctx: ctx, flushEach: true, uri: r.URL.RequestURI(), stop: stop}
	st.readerGone = func() bool {
		select {
		case <-gone:
			return true
		default:
			return false
		}
	}
	st.wakeOnDone()
	return st, true
}

// serveHijacked runs the watch on st in its own goroutine, so that the
// handler returns and net/http lets go of the connection's buffers.
func (s *Server) serveHijacked(st *stream, since uint64, release func()) {
	s.active.add(1)
	st.release = release
	go s.driveHijacked(st, since, nil)
}

// driveHijacked runs st's watch until the stream ends, or parks: a parked
// stream has no goroutine, and the broadcast starts a new one here when it
// hands the stream back (back).
func (s *Server) driveHijacked(st *stream, since uint64, back *parkEnd) {
	ended := true
	defer func() {
		if v := recover(); v != nil {
			s.log.Error("watch stream panicked", zap.String("uri", st.uri), zap.Any("panic", v), zap.StackSkip("stack", 1))
		}
		if ended {
			st.release()
			st.conn.Close()
			s.active.add(-1)
		}
	}()
	if back == nil {
		st.start() // the reader's request returns even when the first line waits
	}
	err := s.watchFrom(st, since, back)
	if errors.Is(err, errParked) {
		ended = false
		return
	}
	s.endWatch(st, since, st.release, err)
}

// Close ends the stream's context and closes the connection.
func (c *hijackedConn) Close() error {
	c.stop()
	return c.Conn.Close()
}

func (c *hijackedConn) writeHeader(timeout time.Duration) error {
	_ = c.SetWriteDeadline(time.Now().Add(timeout))
	_, err := c.w.Write(c.header)
	c.header = nil
	return err
}

var crlf = []byte("\r\n")

// writeChunk writes lines as one chunk of the body, in one writev(2).
func (c *hijackedConn) writeChunk(lines ...[]byte) error {
	c.frame(lines...)
	defer c.unframe()
	_, err := c.bufs.WriteTo(c.w)
	return err
}

// frame sets bufs to lines framed as one chunk.
func (c *hijackedConn) frame(lines ...[]byte) {
	size := appendChunkSize(c.size[:0], lines)
	c.bufs = append(append(append(c.iov[:0], size), lines...), crlf)
}

// appendChunkSize appends the size line of a chunk made of lines.
func appendChunkSize(dst []byte, lines [][]byte) []byte {
	n := 0
	for _, l := range lines {
		n += len(l)
	}
	return append(strconv.AppendUint(dst, uint64(n), 16), '\r', '\n')
}

func (c *hijackedConn) unframe() {
	clear(c.iov[:]) // the lines are the Server's; do not keep them
	c.bufs = nil
}

// turnTimeout bounds how long a write may hold its turn (see writeInTurn).
// A reader that keeps up has room in its socket buffer, and the write
// returns at once.
const turnTimeout = 5 * time.Millisecond

// writeInTurn writes lines as one chunk, in turn. Watch writes take turns,
// first come first served, as many at once as there are processors: when a
// change wakes a thousand watchers, the scheduler runs them in no useful
// order, and those woken again by the next events of the same burst (a
// change commits about five) overtook the ones still waiting to send the
// first. A write that would hold its turn longer than turnTimeout (a slow
// reader) gives it back and finishes out of turn.
func (st *stream) writeInTurn(lines ...[]byte) error {
	c := st.conn
	c.frame(lines...)
	defer c.unframe()
	if err := st.takeTurn(); err != nil {
		return err
	}
	if err := st.armWrite(turnTimeout); err != nil {
		st.giveTurn()
		return err
	}
	_, err := c.bufs.WriteTo(c.w) // what is written leaves bufs
	st.giveTurn()
	if errors.Is(err, os.ErrDeadlineExceeded) && st.ctx.Err() == nil {
		if err := st.armWrite(st.s.opts.StreamWriteTimeout); err != nil {
			return err
		}
		_, err = c.bufs.WriteTo(c.w)
	}
	if err != nil {
		st.werr = err
	}
	return err
}

// takeTurn waits for a write turn unless st holds one already.
func (st *stream) takeTurn() error {
	if st.hasTurn {
		return nil
	}
	if !st.s.turns.take(st.ctx) {
		return st.ctx.Err()
	}
	st.hasTurn = true
	return nil
}

// giveTurn gives back the write turn st holds, if any.
func (st *stream) giveTurn() {
	if st.hasTurn {
		st.hasTurn = false
		st.s.turns.give()
	}
}

// turns is a FIFO semaphore: a channel's waiting receivers are served in
// the order they came.
type turns chan struct{}

func newTurns(n int) turns {
	t := make(turns, n)
	for range n {
		t <- struct{}{}
	}
	return t
}

func (t turns) take(ctx context.Context) bool {
	select {
	case <-t:
		return true
	case <-ctx.Done():
		return false
	}
}

func (t turns) give() { t <- struct{}{} }

// writeEnd writes the last chunk, which ends the body.
func (c *hijackedConn) writeEnd() error {
	_ = c.SetWriteDeadline(time.Now().Add(finalLineTimeout))
	_, err := c.w.Write([]byte("0\r\n\r\n"))
	return err
}
