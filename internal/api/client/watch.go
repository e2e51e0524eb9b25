package client

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/rdd-project/rdd/internal/api"
	"github.com/rdd-project/rdd/internal/events"
)

// Watcher reads a watch stream: the current snapshot first (or, resumed
// with since > 0, the snapshot after each event > since), then one snapshot
// per committed event, in seq order. It is not safe for concurrent use.
type Watcher struct {
	ctx  context.Context
	body io.ReadCloser
	lr   *lineReader
	err  error // sticky: the error that ended the stream
}

// Watch opens a watch stream (GET /v1/status?watch=true[&since=SEQ]). It
// returns once the daemon has accepted the watch; the stream lives until ctx
// ends, Close is called, or the daemon ends it. To resume without missing a
// change, pass the Seq of the last snapshot read as since.
func (c *Client) Watch(ctx context.Context, since uint64) (*Watcher, error) {
	path := api.PathStatus + "?watch=true"
	if since > 0 {
		path += "&since=" + strconv.FormatUint(since, 10)
	}
	resp, err := c.do(ctx, http.MethodGet, path, nil)
	if err != nil {
		return nil, err
	}
	return &Watcher{ctx: ctx, body: resp.Body, lr: newLineReader(resp.Body)}, nil
}

// NextRaw returns the next snapshot exactly as the daemon sent it, without
// the trailing '\n' (for `rdd status --watch -o json`). The bytes are valid
// until the next call. A stream that the daemon ends with an error line
// returns an *APIError (IsTooSlow, IsShuttingDown); after ctx ends, ctx's
// error. Every error is final and closes the stream.
func (w *Watcher) NextRaw() ([]byte, error) {
	if w.err != nil {
		return nil, w.err
	}
	line, err := w.lr.next()
	if err != nil {
		return nil, w.fail(streamError(w.ctx, "watch", err))
	}
	if err := lineError(line); err != nil {
		return nil, w.fail(err)
	}
	return line, nil
}

// Next returns the next snapshot; see NextRaw for the errors.
func (w *Watcher) Next() (events.Snapshot, error) {
	line, err := w.NextRaw()
	if err != nil {
		return events.Snapshot{}, err
	}
	var s events.Snapshot
	if err := json.Unmarshal(line, &s); err != nil {
		return events.Snapshot{}, w.fail(fmt.Errorf("watch: decode snapshot: %w", err))
	}
	return s, nil
}

func (w *Watcher) fail(err error) error {
	w.err = err
	_ = w.body.Close()
	return err
}

// Close ends the stream. It is safe to call more than once.
func (w *Watcher) Close() error {
	if w.err == nil {
		w.err = errors.New("watch: closed")
	}
	return w.body.Close()
}

// maxLine bounds one line of a stream.
const maxLine = 64 << 20

// lineReader splits a stream into '\n'-terminated lines.
type lineReader struct {
	r   *bufio.Reader
	buf []byte // a line longer than r's buffer
}

func newLineReader(r io.Reader) *lineReader {
	return &lineReader{r: bufio.NewReaderSize(r, 32<<10)}
}

// next returns the next line without its '\n', valid until the next call.
// A stream that ends mid-line is io.ErrUnexpectedEOF; at a line end, io.EOF.
func (l *lineReader) next() ([]byte, error) {
	line, err := l.r.ReadSlice('\n')
	if err == nil {
		return line[:len(line)-1], nil
	}
	l.buf = append(l.buf[:0], line...)
	for errors.Is(err, bufio.ErrBufferFull) {
		if len(l.buf) > maxLine {
			return nil, fmt.Errorf("stream line longer than %d bytes", maxLine)
		}
		line, err = l.r.ReadSlice('\n')
		l.buf = append(l.buf, line...)
	}
	if err == nil {
		return l.buf[:len(l.buf)-1], nil
	}
	if errors.Is(err, io.EOF) && len(l.buf) > 0 {
		return nil, io.ErrUnexpectedEOF
	}
	return nil, err
}
