package api

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/rdd-project/rdd/internal/events"
)

// A change wakes every watch stream. With a goroutine per stream, a
// thousand of them each woke, took a write turn, set two write deadlines
// and wrote; on two cores that took the last watcher 15-20 ms, and the
// thousand runnable goroutines delayed the controllers' own answers to the
// change, so that its five events went out as up to five waves.
//
// A stream that has sent everything and whose reader keeps up is parked
// instead: it holds no goroutine, and one broadcaster goroutine writes each
// batch of new snapshots, framed once as one chunk, to every parked
// stream's socket with one non-blocking write(2). A stream whose socket
// cannot take the whole chunk at once (a reader that fell behind) is handed
// back to a goroutine of its own with the rest of the chunk, and goes on as
// before: its writes block with a deadline and take turns.

// broadcaster writes every batch of snapshots to the parked streams.
type broadcaster struct {
	s *Server

	mu      sync.Mutex
	running bool   // run is watching the Backend: streams may park
	epoch   uint64 // counts run's watches: a stream parks in the one it saw
	known   bool   // head is the seq of the Backend's last batch seen
	head    uint64
	// parked holds the seq each parked stream has been sent up to: head,
	// or above it until the broadcast gets there (the stream read the
	// Backend ahead of it).
	parked map[*stream]uint64

	lines [][]byte // the batch's encoded lines, reused
	chunk []byte   // the framed batch, reused
}

// parkEnd is how a parked stream is handed back.
type parkEnd struct {
	sent  uint64 // the stream has been sent up to this seq, rest included
	rest  []byte // the part of the last chunk the broadcaster could not write
	again bool   // the stream may park again at sent, in epoch
	epoch uint64
	err   error // the broadcaster's write failed: the reader is gone
}

// parkAt ends a stream's Watch so that the stream parks, sent up to seq,
// with the broadcast's watch of epoch.
type parkAt struct{ seq, epoch uint64 }

func (p parkAt) Error() string { return fmt.Sprintf("%v at seq %d", ErrStreamParked, p.seq) }

func (p parkAt) Is(err error) bool { return err == ErrStreamParked }

// broadcastKey marks the context of the broadcaster's Watch.
type broadcastKey struct{}

// IsBroadcast reports whether ctx is that of the server's broadcast Watch,
// which feeds every parked stream, rather than one client's stream.
func IsBroadcast(ctx context.Context) bool {
	v, _ := ctx.Value(broadcastKey{}).(bool)
	return v
}

func (bc *broadcaster) init(s *Server) {
	bc.s = s
	bc.parked = map[*stream]uint64{}
}

// run watches the Backend until ctx ends, broadcasting each batch. A watch
// that falls behind (the Backend's buffer moved on) starts again from the
// current snapshot; the streams parked then go back to their own watch.
func (bc *broadcaster) run(ctx context.Context) {
	ctx = context.WithValue(ctx, broadcastKey{}, true)
	for ctx.Err() == nil {
		bc.mu.Lock()
		bc.running, bc.known = true, false
		bc.epoch++
		bc.mu.Unlock()
		err := bc.s.b.Watch(ctx, 0, bc.broadcast)
		bc.stop()
		if ctx.Err() != nil {
			return
		}
		if !errors.Is(err, ErrWatcherTooSlow) {
			// The Backend stopped: each stream reports it from its own watch.
			bc.s.log.Info("watch broadcast ended", zap.Error(err))
			return
		}
		bc.s.log.Info("watch broadcast fell behind; starting again from the current snapshot")
	}
}

// stop hands every stream back to its own watch.
func (bc *broadcaster) stop() {
	bc.mu.Lock()
	defer bc.mu.Unlock()
	bc.running = false
	bc.handBackAll()
}

// handBackAll hands every parked stream back; bc.mu is held.
func (bc *broadcaster) handBackAll() {
	for st, sent := range bc.parked {
		delete(bc.parked, st)
		bc.handBack(st, parkEnd{sent: sent})
	}
}

// broadcast writes batch to the parked streams. It never blocks on a
// reader.
func (bc *broadcaster) broadcast(batch []events.Snapshot) error {
	bc.mu.Lock()
	defer bc.mu.Unlock()
	if len(batch) == 0 {
		return nil
	}
	last := batch[len(batch)-1].Seq
	if !bc.known {
		// The first batch: nothing is parked before it (park needs known).
		bc.known, bc.head = true, last
		return nil
	}
	for len(batch) > 0 && batch[0].Seq <= bc.head {
		batch = batch[1:]
	}
	if len(batch) == 0 {
		return nil
	}
	prev := bc.head
	bc.head = last
	if len(bc.parked) == 0 {
		return nil
	}
	if err := bc.frame(batch); err != nil {
		// Each stream meets the error on its own watch and reports it.
		bc.handBackAll()
		return nil
	}
	for st, sent := range bc.parked {
		switch {
		case sent == prev:
			bc.write(st, last)
		case sent < last:
			// It parked ahead of the broadcast, but not as far as this
			// batch goes: its own watch has what it lacks.
			delete(bc.parked, st)
			bc.handBack(st, parkEnd{sent: sent})
		}
	}
	return nil
}

// write writes the framed batch, which ends at seq last, to st.
func (bc *broadcaster) write(st *stream, last uint64) {
	n, err := st.conn.tryWrite(bc.chunk)
	if err == nil && n == len(bc.chunk) {
		bc.parked[st] = last
		return
	}
	delete(bc.parked, st)
	end := parkEnd{sent: last, again: true, epoch: bc.epoch}
	if err == nil || errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EINTR) {
		end.rest = bytes.Clone(bc.chunk[n:])
	} else {
		end.err = err
	}
	bc.handBack(st, end)
}

// frame sets chunk to batch's lines framed as one chunk of the body.
func (bc *broadcaster) frame(batch []events.Snapshot) error {
	bc.lines = bc.lines[:0]
	for i := range batch {
		line, err := bc.s.shared.line(&batch[i])
		if err != nil {
			return err
		}
		bc.lines = append(bc.lines, line)
	}
	c := appendChunkSize(bc.chunk[:0], bc.lines)
	for _, line := range bc.lines {
		c = append(c, line...)
	}
	bc.chunk = append(c, crlf...)
	clear(bc.lines) // the lines are the Server's; do not keep them
	return nil
}

// handBack gives st, just removed from the sets (bc.mu is held), a
// goroutine again, to go on from end.
func (bc *broadcaster) handBack(st *stream, end parkEnd) {
	st.stopCtxWatch()
	go bc.s.driveHijacked(st, end.sent, &end)
}

// parkable says whether st, sent up to sent, may park now (park checks
// again), and in which epoch. A stream at seq 0 has no seq to resume from,
// and stays.
func (bc *broadcaster) parkable(st *stream, sent uint64) (epoch uint64, ok bool) {
	if st.conn == nil || st.conn.raw == nil || sent == 0 {
		return 0, false
	}
	bc.mu.Lock()
	defer bc.mu.Unlock()
	return bc.epoch, bc.running && bc.known && sent >= bc.head
}

// park parks st, which has been sent everything up to sent, and reports
// whether it did; from then on the broadcast owns st, until it hands st
// back (handBack), which it also does when st's context ends. It does not
// park a stream the broadcast has gone past, one before the broadcast's
// first batch, or one whose Watch ended in an earlier epoch: the broadcast
// started again because it fell behind, and the stream's own Watch checks
// that the stream did not.
func (bc *broadcaster) park(st *stream, sent, epoch uint64) bool {
	// The broadcaster's writes do not wait, and a deadline left from the
	// last write would fail them once it passed.
	st.setWriteDeadline(time.Time{})
	bc.mu.Lock()
	defer bc.mu.Unlock()
	if bc.epoch != epoch || !bc.running || !bc.known || sent < bc.head {
		return false
	}
	bc.parked[st] = sent
	st.stopCtxWatch = context.AfterFunc(st.ctx, func() { bc.cancel(st) })
	return true
}

// cancel hands st back, if it is still parked, once its context ended:
// its goroutine then ends the stream.
func (bc *broadcaster) cancel(st *stream) {
	bc.mu.Lock()
	defer bc.mu.Unlock()
	if sent, ok := bc.parked[st]; ok {
		delete(bc.parked, st)
		bc.handBack(st, parkEnd{sent: sent})
	}
}

// tryWrite writes b with one write(2) that does not wait for room: it
// returns how much was written and EAGAIN when the socket was full.
func (c *hijackedConn) tryWrite(b []byte) (n int, err error) {
	werr := c.raw.Write(func(fd uintptr) bool {
		n, err = syscall.Write(int(fd), b)
		return true
	})
	if werr != nil {
		return 0, werr
	}
	return max(n, 0), err
}

// writeRest writes the end of a chunk the broadcaster began, within
// StreamWriteTimeout.
func (st *stream) writeRest(b []byte) error {
	if err := st.armWrite(st.s.opts.StreamWriteTimeout); err != nil {
		return err
	}
	if _, err := st.conn.w.Write(b); err != nil {
		st.werr = err
		return err
	}
	return nil
}
