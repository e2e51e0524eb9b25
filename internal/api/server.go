package api

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/rdd-project/rdd/internal/paths"
)

// Server serves a Backend over HTTP/1.1 on a Unix socket (design.md §6).
//
// Only the socket's owner may use it: Listen creates the socket with mode
// 0600 and every connection's peer credentials are checked (SO_PEERCRED on
// Linux, LOCAL_PEERCRED on macOS); other peers get 403 Forbidden.
//
// Streams (GET /v1/status?watch=true, GET /v1/events?follow=true) write one
// JSON value a line and flush after each. A stream that ends for a reason the
// reader should know (the Backend cut a slow watcher, the daemon stops, the
// Backend failed) ends with a last line {"error": "...", "code": "..."}.
//
// Limits keep a local client, careless or hostile, from exhausting the
// daemon: a request body must arrive within BodyReadTimeout (408), at most
// MaxConns connections are open besides streams and at most MaxStreams
// streams (503 Unavailable past either), a set's command is stored cut to
// MaxCommandBytes, and a body naming a key twice (or in two cases) is 400.
//
// The Backend's Watch and Events must not call fn after they return; fn is
// not safe for concurrent use.
type Server struct {
	b      Backend
	log    *zap.Logger
	opts   ServerOptions
	euid   int
	routes map[string]route
	active inflight
	lim    limiter
	shared sharedLines
	turns  turns // of watch writes; see writeInTurn
	bc     broadcaster
}

// ServerOptions configure a Server. The zero value serves with the defaults.
type ServerOptions struct {
	// Version is sent in the Rdd-Version header and by GET /v1/healthz.
	Version string
	// Commit and BuildDate are sent by GET /v1/healthz.
	Commit, BuildDate string
	// Components, if non-nil, says which engine and k3s run, for GET
	// /v1/healthz; it is called on every health check, so it must be cheap
	// (no I/O) and safe for concurrent use. A nil result is left out.
	Components func() (engine, kubernetes *Component)
	// Engine, if non-nil, answers GET /v1/engine/{containers,images,volumes};
	// without it those answer 404.
	Engine EngineInventory
	// AllowUID, if non-nil, replaces the peer policy, which by default admits
	// the socket's owner (the server's effective uid) and root. Tests use it
	// to exercise the rejection path while running as root.
	AllowUID func(uid int) bool
	// ShutdownGrace bounds how long Serve waits for in-flight requests once
	// its ctx ends (default 5 s). Streams end at once; unary requests finish.
	ShutdownGrace time.Duration
	// StreamWriteTimeout bounds the write of one stream line (default 10 s):
	// a reader that stalls longer is disconnected.
	StreamWriteTimeout time.Duration
	// BodyReadTimeout bounds reading a request's whole body, from the end
	// of its headers (default DefaultBodyReadTimeout); a slower request is
	// answered 408 and its connection closed.
	BodyReadTimeout time.Duration
	// MaxConns caps the connections that carry requests other than
	// streams, idle keep-alive ones included (default DefaultMaxConns).
	// MaxStreams caps the watch and follow streams (default
	// DefaultMaxStreams). A request over its cap is answered 503
	// Unavailable, and so is a connection beyond MaxConns+MaxStreams.
	MaxConns   int
	MaxStreams int
}

const (
	defaultShutdownGrace      = 5 * time.Second
	defaultStreamWriteTimeout = 10 * time.Second
	// abandonWait is how long Serve still waits for handlers after the grace
	// expired and their contexts were cancelled.
	abandonWait = time.Second
)

// NewServer returns a Server for b. A nil logger means zap.NewNop().
func NewServer(b Backend, logger *zap.Logger, opts ServerOptions) *Server {
	if logger == nil {
		logger = zap.NewNop()
	}
	if opts.Version == "" {
		opts.Version = "unknown"
	}
	if opts.ShutdownGrace <= 0 {
		opts.ShutdownGrace = defaultShutdownGrace
	}
	if opts.StreamWriteTimeout <= 0 {
		opts.StreamWriteTimeout = defaultStreamWriteTimeout
	}
	if opts.BodyReadTimeout <= 0 {
		opts.BodyReadTimeout = DefaultBodyReadTimeout
	}
	if opts.MaxConns <= 0 {
		opts.MaxConns = DefaultMaxConns
	}
	if opts.MaxStreams <= 0 {
		opts.MaxStreams = DefaultMaxStreams
	}
	s := &Server{
		b:    b,
		log:  logger.With(zap.String("subsystem", "api")),
		opts: opts,
		euid: os.Geteuid(),
	}
	s.lim.maxConns, s.lim.maxStreams = opts.MaxConns, opts.MaxStreams
	s.turns = newTurns(runtime.GOMAXPROCS(0))
	s.bc.init(s)
	s.routes = s.routeTable()
	return s
}

// Serve answers connections from ln until ctx ends, then closes ln, ends
// every stream, and waits up to ShutdownGrace for the other requests to
// finish; after that it cancels their contexts and closes their connections.
// It returns nil after a shutdown caused by ctx, or the error that made ln fail.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	// Request contexts outlive ctx by the grace, so that a SetSpec in flight
	// can finish; streams also watch ctx itself (see streamContext).
	hardCtx, hardCancel := context.WithCancel(context.WithoutCancel(ctx))
	defer hardCancel()
	base := context.WithValue(hardCtx, stopKey{}, ctx)
	hs := &http.Server{
		Handler:           s.guard(http.HandlerFunc(s.dispatch)),
		BaseContext:       func(net.Listener) context.Context { return base },
		ConnContext:       connContext,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	if l, err := zap.NewStdLogAt(s.log, zap.WarnLevel); err == nil {
		hs.ErrorLog = l // net/http reports accept and protocol errors here
	}
	bcDone := make(chan struct{})
	go func() {
		defer close(bcDone)
		s.bc.run(ctx)
	}()
	defer func() { <-bcDone }() // it ends with ctx, without waiting for any reader
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(&limitListener{Listener: ln, s: s}) }()

	select {
	case err := <-errc:
		hardCancel()
		_ = hs.Close()
		return fmt.Errorf("api: serve on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), s.opts.ShutdownGrace)
	defer cancel()
	err := hs.Shutdown(sctx) // closes ln, waits until every connection is idle
	<-errc                   // http.ErrServerClosed
	// Watch streams left net/http (hijack.go): Shutdown did not wait for
	// them. They end with ctx, after a last line.
	if err == nil && s.active.wait(sctx) == 0 {
		return nil
	}
	hardCancel()
	_ = hs.Close()
	wctx, wcancel := context.WithTimeout(context.Background(), abandonWait)
	defer wcancel()
	if n := s.active.wait(wctx); n > 0 {
		return fmt.Errorf("api: %d requests still running %s after shutdown began", n, s.opts.ShutdownGrace+abandonWait)
	}
	return nil
}

// guard wraps h with what every request over the socket gets: the peer
// check, panic recovery and in-flight accounting.
func (s *Server) guard(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.active.add(1)
		defer s.active.add(-1)
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler { //nolint:errorlint // sentinel value, not an error chain
					panic(v)
				}
				s.log.Error("handler panicked", zap.String("method", r.Method), zap.String("path", r.URL.Path), zap.Any("panic", v), zap.StackSkip("stack", 1))
				w.Header().Set(HeaderVersion, s.opts.Version)
				writeError(w, http.StatusInternalServerError, CodeInternal, "internal error (see the daemon log)")
			}
		}()
		peer, err := PeerFrom(r.Context())
		if err != nil || !s.allowed(peer.UID) {
			msg := fmt.Sprintf("permission denied: uid %d may not use this socket (its owner is uid %d)", peer.UID, s.euid)
			if err != nil {
				msg = "permission denied: " + err.Error()
			}
			s.log.Warn("peer refused", zap.Int("uid", peer.UID), zap.Int("pid", peer.PID), zap.Error(err))
			w.Header().Set(HeaderVersion, s.opts.Version)
			writeError(w, http.StatusForbidden, CodeForbidden, msg)
			return
		}
		if !isStreamRequest(r) && !s.claimPlain(w, r) {
			return
		}
		s.limitBody(w, r)
		h.ServeHTTP(w, r)
	})
}

func (s *Server) allowed(uid int) bool {
	if s.opts.AllowUID != nil {
		return s.opts.AllowUID(uid)
	}
	return uid == s.euid || uid == 0
}

type (
	peerKey struct{}
	stopKey struct{}
)

type peerResult struct {
	src Source
	err error
}

// connContext records the peer's credentials once per connection.
func connContext(ctx context.Context, c net.Conn) context.Context {
	if lc, ok := c.(*limitedConn); ok {
		ctx = context.WithValue(ctx, connKey{}, lc)
		c = lc.Conn
	}
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return context.WithValue(ctx, peerKey{}, peerResult{err: fmt.Errorf("%T is not a Unix socket connection", c)})
	}
	src, err := peerCred(uc)
	return context.WithValue(ctx, peerKey{}, peerResult{src: src, err: err})
}

// PeerFrom returns the peer of the connection that carries a request whose
// context is ctx, or an error when it is unknown.
func PeerFrom(ctx context.Context) (Source, error) {
	p, ok := ctx.Value(peerKey{}).(peerResult)
	if !ok {
		return Source{UID: -1, PID: -1}, errors.New("peer credentials are unknown")
	}
	if p.err != nil {
		return Source{UID: -1, PID: -1}, p.err
	}
	return p.src, nil
}

// inflight counts running handlers; unlike a sync.WaitGroup it may be
// waited on while handlers still start.
type inflight struct {
	mu    sync.Mutex
	n     int
	zeroc chan struct{} // closed when n drops to 0; nil while nobody waits
}

func (f *inflight) add(d int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n += d
	if f.n == 0 && f.zeroc != nil {
		close(f.zeroc)
		f.zeroc = nil
	}
}

// wait returns 0 once no handler runs, or the number still running when ctx ends.
func (f *inflight) wait(ctx context.Context) int {
	f.mu.Lock()
	if f.n == 0 {
		f.mu.Unlock()
		return 0
	}
	if f.zeroc == nil {
		f.zeroc = make(chan struct{})
	}
	c := f.zeroc
	f.mu.Unlock()
	select {
	case <-c:
		return 0
	case <-ctx.Done():
		f.mu.Lock()
		defer f.mu.Unlock()
		return f.n
	}
}

// ErrSocketInUse is returned by Listen when a live process answers on the socket.
var ErrSocketInUse = errors.New("api: another rdd daemon serves this socket")

// probeTimeout bounds the probe of an existing socket file by Listen.
const probeTimeout = time.Second

// Listen creates the Unix socket socketPath with mode 0600 and listens on
// it. Its directory is created with mode 0700 if missing, and refused if it
// is a symbolic link, belongs to another user or others may write to it
// (paths.EnsurePrivateDir): whoever controls the directory could replace the
// socket. A socket file left behind by a dead daemon (nobody answers) is
// replaced; if something answers, Listen fails with ErrSocketInUse; a file
// that is not a socket is left alone.
// Closing the listener removes the socket file.
func Listen(socketPath string) (net.Listener, error) {
	if err := paths.EnsurePrivateDir(filepath.Dir(socketPath)); err != nil {
		return nil, fmt.Errorf("api: socket directory: %w", err)
	}
	ln, err := net.Listen("unix", socketPath)
	if errors.Is(err, syscall.EADDRINUSE) {
		if err := removeStaleSocket(socketPath); err != nil {
			return nil, err
		}
		ln, err = net.Listen("unix", socketPath)
	}
	if err != nil {
		return nil, fmt.Errorf("api: listen on %s: %w", socketPath, err)
	}
	// bind(2) applied the umask; the peer check covers the moment until now.
	if err := os.Chmod(socketPath, 0o600); err != nil {
		_ = ln.Close()
		return nil, fmt.Errorf("api: restrict socket %s to its owner: %w", socketPath, err)
	}
	return ln, nil
}

// removeStaleSocket removes the socket file p if nobody answers on it.
func removeStaleSocket(p string) error {
	fi, err := os.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("api: inspect %s: %w", p, err)
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("api: %s exists and is not a socket; move it away and start again", p)
	}
	c, err := net.DialTimeout("unix", p, probeTimeout)
	if err == nil {
		_ = c.Close()
		return fmt.Errorf("%w: %s answers; stop that daemon first (`rdd svc stop`)", ErrSocketInUse, p)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("api: probe existing socket %s: %w", p, err)
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("api: remove stale socket %s: %w", p, err)
	}
	return nil
}

// PeerCred returns the credentials of the process at the other end of c:
// for a server, the client; for a client, the process that listens.
func PeerCred(c *net.UnixConn) (Source, error) { return peerCred(c) }
