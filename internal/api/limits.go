package api

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"go.uber.org/zap"
)

// Defaults of the ServerOptions limits. Together they bound the daemon's
// descriptors for the socket at DefaultMaxConns + DefaultMaxStreams +
// maxRejecting, far below the RLIMIT_NOFILE Go raises the soft limit to.
const (
	DefaultMaxConns        = 128
	DefaultMaxStreams      = 1024
	DefaultBodyReadTimeout = 10 * time.Second
)

// HealthzReserve is how many connections may carry GET /v1/healthz (with no
// body) once the MaxConns plain slots are taken. A health check asks
// whether the daemon is alive, and one whose slots are all held by slow
// clients is: answering it 503 made `rdd svc status` report it not serving
// and the CLI's implicit start wait 90 s for a daemon that already ran.
// healthz answers from memory, so the reserve costs a few descriptors, and
// it is small so that it cannot become a way around MaxConns.
const HealthzReserve = 8

const (
	// maxRejecting bounds the connections being answered 503 at once;
	// beyond it a connection is closed unanswered, so that a flood cannot
	// turn the rejection itself into the exhaustion it prevents.
	maxRejecting = 32
	// rejectTimeout bounds reading the request of a rejected connection
	// and writing its 503.
	rejectTimeout = time.Second
	// rejectWarnEvery spaces the log lines about rejected connections.
	rejectWarnEvery = 10 * time.Second
)

// MaxCommandBytes bounds SetRequest.Command as stored: the client supplies
// it and every SpecChanged event carries it, so a megabyte command line
// would be copied into the log and into every snapshot stream.
const MaxCommandBytes = 4 << 10

// limiter counts the socket's connections. A connection is pending until
// a request classifies it: a watch or follow stream holds a stream slot
// (at most MaxStreams), anything else a plain slot (at most MaxConns) that
// it keeps while idle between requests. Counting them apart means many
// watchers cannot lock out `rdd set` and many clients cannot lock out
// watchers; classifying per request, not per accept, means a burst of
// watchers reconnecting at once is not refused for lack of plain slots.
// Pending connections count only against the total, MaxConns+MaxStreams,
// which Accept enforces and which bounds the descriptors.
type limiter struct {
	mu         sync.Mutex
	total      int // accepted, not yet closed
	conns      int // in the plain state
	streams    int // in the stream state
	healthz    int // in the healthz state (HealthzReserve)
	rejecting  int
	maxConns   int
	maxStreams int
	lastWarn   atomic.Int64 // unix nanos of the last warning
}

// Connection states, guarded by limiter.mu.
const (
	connPending = iota
	connPlain
	connStream
	connHealthz // holds a HealthzReserve slot: carried only healthz so far
)

// limitListener admits connections up to the limiter's total and answers
// the others 503 itself, before net/http sees them.
type limitListener struct {
	net.Listener
	s *Server
}

func (l *limitListener) Accept() (net.Conn, error) {
	lim := &l.s.lim
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		lim.mu.Lock()
		switch {
		case lim.total < lim.maxConns+lim.maxStreams:
			lim.total++
			lim.mu.Unlock()
			return &limitedConn{Conn: c, lim: lim}, nil
		case lim.rejecting < maxRejecting:
			lim.rejecting++
			lim.mu.Unlock()
			l.s.warnRejected()
			go l.s.reject(c)
		default:
			lim.mu.Unlock()
			_ = c.Close()
		}
	}
}

func (s *Server) warnRejected() {
	now := time.Now().UnixNano()
	last := s.lim.lastWarn.Load()
	if now-last < int64(rejectWarnEvery) || !s.lim.lastWarn.CompareAndSwap(last, now) {
		return
	}
	s.log.Warn("connections refused with 503: too many open", zap.Int("maxConns", s.lim.maxConns), zap.Int("maxStreams", s.lim.maxStreams))
}

// busyMessage is the 503 answer to a request past MaxConns.
func (s *Server) busyMessage() string {
	return fmt.Sprintf("the rdd daemon has %d connections open, its limit: close idle clients or retry in a moment", s.lim.maxConns)
}

// reject reads one request from c and answers it 503, within rejectTimeout.
// Reading first matters: an HTTP client that receives an answer before it
// has sent its request treats it as a broken connection, not as a 503.
func (s *Server) reject(c net.Conn) {
	defer func() {
		_ = c.Close()
		s.lim.mu.Lock()
		s.lim.rejecting--
		s.lim.mu.Unlock()
	}()
	_ = c.SetDeadline(time.Now().Add(rejectTimeout))
	req, err := http.ReadRequest(bufio.NewReaderSize(c, 4<<10))
	if err != nil {
		return
	}
	_ = req.Body.Close()
	b, _ := json.Marshal(ErrorBody{
		Code:  CodeUnavailable,
		Error: fmt.Sprintf("the rdd daemon has %d connections and streams open, its limit: close idle clients or retry in a moment", s.lim.maxConns+s.lim.maxStreams),
	})
	b = append(b, '\n')
	_, _ = fmt.Fprintf(c, "HTTP/1.1 503 Service Unavailable\r\nContent-Type: %s\r\nContent-Length: %d\r\n%s: %s\r\nRetry-After: 1\r\nConnection: close\r\n\r\n%s",
		ContentTypeJSON, len(b), HeaderVersion, s.opts.Version, b)
}

// limitedConn returns its slots when closed.
type limitedConn struct {
	net.Conn
	lim   *limiter
	once  sync.Once
	state int // guarded by lim.mu
}

// Close releases the slots before closing, so that a client that sees the
// connection end can count on them being free again.
func (c *limitedConn) Close() error {
	c.once.Do(func() {
		c.lim.mu.Lock()
		c.lim.setStateLocked(c, connPending)
		c.lim.total--
		c.lim.mu.Unlock()
	})
	return c.Conn.Close()
}

// CloseWrite keeps the half-close net/http uses on a graceful close.
func (c *limitedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

func (l *limiter) setStateLocked(c *limitedConn, state int) {
	switch c.state {
	case connPlain:
		l.conns--
	case connStream:
		l.streams--
	case connHealthz:
		l.healthz--
	}
	switch state {
	case connPlain:
		l.conns++
	case connStream:
		l.streams++
	case connHealthz:
		l.healthz++
	}
	c.state = state
}

type connKey struct{}

// isStreamRequest tells a watch or follow request, which claims a stream
// slot in its handler, from the others, which take a plain slot first.
func isStreamRequest(r *http.Request) bool {
	var v string
	switch r.URL.Path {
	case PathStatus:
		v = r.URL.Query().Get("watch")
	case PathEvents:
		v = r.URL.Query().Get("follow")
	default:
		return false
	}
	b, _ := strconv.ParseBool(v)
	return b
}

// isHealthCheck tells a bodiless GET /v1/healthz, which may use a
// HealthzReserve slot, from requests that need a plain one.
func isHealthCheck(r *http.Request) bool {
	return r.URL.Path == PathHealthz && r.Method == http.MethodGet && r.ContentLength == 0
}

// claimPlain gives the request's connection a plain slot unless it holds
// one, or, for a health check past MaxConns, a HealthzReserve slot. Past
// both it answers 503 and closes the connection after the answer, and
// returns false.
func (s *Server) claimPlain(w http.ResponseWriter, r *http.Request) bool {
	lc, _ := r.Context().Value(connKey{}).(*limitedConn)
	if lc == nil {
		return true
	}
	lim := &s.lim
	lim.mu.Lock()
	defer lim.mu.Unlock()
	if lc.state == connPlain {
		return true
	}
	health := isHealthCheck(r)
	if health && lc.state == connHealthz {
		return true
	}
	if health && lim.conns >= lim.maxConns && lim.healthz < HealthzReserve {
		lim.setStateLocked(lc, connHealthz)
		return true
	}
	if lim.conns >= lim.maxConns {
		w.Header().Set("Connection", "close")
		writeError(w, http.StatusServiceUnavailable, CodeUnavailable, s.busyMessage())
		return false
	}
	lim.setStateLocked(lc, connPlain)
	return true
}

// claimStream moves the request's connection to a stream slot. It answers
// 503 and returns false when MaxStreams streams are open. release makes the
// connection pending again (it may carry more requests); call it once,
// before the stream's last line, so that a reader who sees the stream end
// can open another at once.
func (s *Server) claimStream(w http.ResponseWriter, r *http.Request) (release func(), ok bool) {
	lc, _ := r.Context().Value(connKey{}).(*limitedConn)
	if lc == nil {
		lc = &limitedConn{} // a request without a counted connection (RoutesForTest)
	}
	lim := &s.lim
	lim.mu.Lock()
	if lim.streams >= lim.maxStreams {
		lim.mu.Unlock()
		writeError(w, http.StatusServiceUnavailable, CodeUnavailable, fmt.Sprintf("the rdd daemon serves %d watch and follow streams, its limit: close some or retry later", lim.maxStreams))
		return nil, false
	}
	lim.setStateLocked(lc, connStream)
	lim.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			lim.mu.Lock()
			lim.setStateLocked(lc, connPending)
			lim.mu.Unlock()
		})
	}, true
}

// limitBody gives the handler bodyTimeout to read r's whole body. net/http
// only bounds the headers (ReadHeaderTimeout); a body trickled a byte at a
// time held a descriptor and a goroutine forever. The deadline is lifted
// once the body has been read to its end, because net/http's background
// read (which notices a client hanging up) would otherwise hit it and
// cancel the request while the handler still works.
func (s *Server) limitBody(w http.ResponseWriter, r *http.Request) {
	if r.Body == nil || r.Body == http.NoBody {
		return
	}
	rc := http.NewResponseController(w)
	if err := rc.SetReadDeadline(time.Now().Add(s.opts.BodyReadTimeout)); err != nil {
		return // not a net.Conn underneath (tests through RoutesForTest)
	}
	r.Body = &deadlineBody{ReadCloser: r.Body, lift: func() { _ = rc.SetReadDeadline(time.Time{}) }}
}

type deadlineBody struct {
	io.ReadCloser
	lift   func()
	lifted bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if errors.Is(err, io.EOF) && !b.lifted {
		b.lifted = true
		b.lift()
	}
	return n, err
}

// checkKeys refuses a JSON document in which an object names a key twice,
// or two keys that differ only in case, and a top-level key that matches
// one of top only when case is ignored. encoding/json accepts all three:
// the last duplicate wins and field names match case-insensitively, so
// {"set":{"a":"1"},"SET":{"a":"2"}} applied a value other than the one a
// reader of the request sees first. data must be valid JSON.
func checkKeys(data []byte, top []string) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	return walkKeys(dec, "", top)
}

func walkKeys(dec *json.Decoder, path string, known []string) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	switch tok {
	case json.Delim('{'):
		seen := map[string]string{} // folded key → key as written
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return err
			}
			key, _ := kt.(string)
			where := "the request body"
			if path != "" {
				where = strconv.Quote(path) + " of the request body"
			}
			folded := foldKey(key)
			if prev, dup := seen[folded]; dup {
				if prev == key {
					return fmt.Errorf("duplicate key %q in %s: give each key once", key, where)
				}
				return fmt.Errorf("keys %q and %q in %s differ only in case: give the key once, spelled %q", prev, key, where, prev)
			}
			seen[folded] = key
			for _, k := range known {
				if k != key && foldKey(k) == folded {
					return fmt.Errorf("unknown key %q in %s: keys are case-sensitive, did you mean %q?", key, where, k)
				}
			}
			if err := walkKeys(dec, joinPath(path, key), nil); err != nil {
				return err
			}
		}
		_, err := dec.Token() // '}'
		return err
	case json.Delim('['):
		for i := 0; dec.More(); i++ {
			if err := walkKeys(dec, path+"["+strconv.Itoa(i)+"]", nil); err != nil {
				return err
			}
		}
		_, err := dec.Token() // ']'
		return err
	}
	return nil
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// foldKey folds case the way encoding/json's field matching does, so that
// keys it would treat as one (including "K" and the Kelvin sign, "s" and
// the long s) fold alike.
func foldKey(k string) string { return strings.ToLower(strings.ToUpper(k)) }

// boundCommand cuts a command longer than MaxCommandBytes at a character
// boundary and says so at its end, within the bound.
func boundCommand(cmd string) string {
	if len(cmd) <= MaxCommandBytes {
		return cmd
	}
	mark := fmt.Sprintf(" …[cut: %d bytes]", len(cmd))
	keep := MaxCommandBytes - len(mark)
	for keep > 0 && !utf8.RuneStart(cmd[keep]) {
		keep--
	}
	return cmd[:keep] + mark
}
