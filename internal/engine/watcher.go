package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Defaults of WatcherOptions.
const (
	DefaultResyncInterval = 5 * time.Minute
	DefaultPingTimeout    = 5 * time.Second
	DefaultInfoTimeout    = 5 * time.Second
	DefaultRequestTimeout = 30 * time.Second
	// BackoffInitial and BackoffMax bound DefaultBackoff.
	BackoffInitial = 100 * time.Millisecond
	BackoffMax     = 5 * time.Second
	// SinceFallback is how far before the host's clock the event cursor
	// starts when the daemon's clock cannot be read (replay is idempotent).
	SinceFallback = 2 * time.Minute
)

// ErrAlreadyRunning is returned by Run when the Watcher already runs.
var ErrAlreadyRunning = errors.New("engine: watcher already running")

// PhaseState is what a Watcher is doing.
type PhaseState string

// The phase states, in the order a successful connection goes through them.
const (
	// PhaseConnecting: pinging the engine and doing the full sync.
	PhaseConnecting PhaseState = "Connecting"
	// PhaseConnected: the full sync succeeded and events are streamed.
	PhaseConnected PhaseState = "Connected"
	// PhaseConnectFailed: the ping or the full sync failed; Err says which
	// ("failed to ping Docker: …" or "failed to perform initial sync: …").
	PhaseConnectFailed PhaseState = "ConnectFailed"
	// PhaseDisconnected: the event stream of a connected engine ended.
	PhaseDisconnected PhaseState = "Disconnected"
)

// String returns the state's name.
func (s PhaseState) String() string { return string(s) }

// Phase is one report of a Watcher. A Watcher reports Connecting before each
// attempt, then Connected or ConnectFailed, and Disconnected when a
// connected stream ends; then it retries after RetryIn.
type Phase struct {
	State PhaseState
	// Err is set for ConnectFailed and Disconnected.
	Err error
	// Counts is the inventory size after the full sync (Connected).
	Counts Counts
	// APIVersion is the negotiated API version and EngineVersion the
	// daemon's version (Connected).
	APIVersion    string
	EngineVersion string
	// Attempt counts the failed attempts since the last stable connection
	// (Connecting, ConnectFailed, Disconnected): 0 for the first. Connecting
	// and ConnectFailed repeat on every retry while the engine is down; a
	// consumer that records transitions can use Attempt > 0 to tell a retry
	// from a new outage.
	Attempt int
	// RetryIn is the wait before the next attempt (ConnectFailed, Disconnected).
	RetryIn time.Duration
}

// DefaultBackoff is the reconnect delay after attempt failed attempts:
// 100 ms doubling, capped at 5 s (F27).
func DefaultBackoff(attempt int) time.Duration {
	d := BackoffInitial
	for range attempt {
		d *= 2
		if d >= BackoffMax {
			return BackoffMax
		}
	}
	return d
}

// WatcherOptions tune a Watcher; the zero value gives the defaults.
type WatcherOptions struct {
	// OnPhase receives every phase, in order, on the goroutine that called
	// Run. It must return quickly (hand the phase to a channel, say).
	OnPhase func(Phase)
	// ResyncInterval is the period of the full resync while connected
	// (F21): 0 means DefaultResyncInterval, negative disables it.
	ResyncInterval time.Duration
	// PingTimeout and InfoTimeout bound the ping and the clock read of a
	// connection; RequestTimeout bounds each list and inspect call.
	PingTimeout    time.Duration
	InfoTimeout    time.Duration
	RequestTimeout time.Duration
	// Backoff gives the delay before reconnecting after attempt failed
	// attempts (nil: DefaultBackoff). Results above BackoffMax are capped.
	Backoff func(attempt int) time.Duration
	// Now is the host clock (nil: time.Now); used only when the daemon's
	// clock cannot be read and to judge whether a connection was stable.
	Now func() time.Time

	// dial creates the API client (tests inject fakes); nil: dialDocker.
	dial func(host string) (dockerAPI, error)
	// afterSync, when set, runs after each successful full sync of a
	// connection and before its event stream opens (tests).
	afterSync func()
}

// dockerAPI is the part of the Docker Engine API a Watcher uses, in the
// wire types of dockertypes.go; dockerClient implements it. The method
// names are those of Docker's client, which it replaces.
type dockerAPI interface {
	Ping(ctx context.Context) (pingResponse, error)
	NegotiateAPIVersionPing(pingResponse)
	ClientVersion() string
	Info(ctx context.Context) (infoResponse, error)
	ContainerList(ctx context.Context, options containerListOptions) ([]containerSummary, error)
	ImageList(ctx context.Context, options imageListOptions) ([]imageSummary, error)
	ImageInspect(ctx context.Context, ref string) (imageInspectResponse, error)
	VolumeList(ctx context.Context, options volumeListOptions) (volumeListResponse, error)
	VolumeInspect(ctx context.Context, name string) (volumeResponse, error)
	// Events streams messages until ctx ends or the stream fails; the
	// error channel then gets one error and is closed.
	Events(ctx context.Context, options eventsOptions) (<-chan eventMessage, <-chan error)
	Close() error
}

// Watcher keeps an Inventory of one Docker engine in sync: it connects,
// takes an event cursor from the daemon's clock, does a full sync, then
// applies the event stream, resyncs periodically, and reconnects with
// backoff when the stream ends (behavior.md §7.2). It observes only; it
// reports Phases and never decides anything.
type Watcher struct {
	host   string
	logger *zap.Logger
	opts   WatcherOptions
	inv    *Inventory

	mu      sync.Mutex
	running bool
}

// NewWatcher returns a Watcher for the engine at host (e.g.
// "unix:///home/u/.rd2/docker.sock"). A nil logger logs nothing.
func NewWatcher(host string, logger *zap.Logger, opts WatcherOptions) *Watcher {
	if logger == nil {
		logger = zap.NewNop()
	}
	if opts.ResyncInterval == 0 {
		opts.ResyncInterval = DefaultResyncInterval
	}
	if opts.PingTimeout <= 0 {
		opts.PingTimeout = DefaultPingTimeout
	}
	if opts.InfoTimeout <= 0 {
		opts.InfoTimeout = DefaultInfoTimeout
	}
	if opts.RequestTimeout <= 0 {
		opts.RequestTimeout = DefaultRequestTimeout
	}
	if opts.Backoff == nil {
		opts.Backoff = DefaultBackoff
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.OnPhase == nil {
		opts.OnPhase = func(Phase) {}
	}
	if opts.dial == nil {
		opts.dial = dialDocker
	}
	return &Watcher{
		host:   host,
		logger: logger.With(zap.String("subsystem", "engine"), zap.String("docker-host", host)),
		opts:   opts,
		inv:    NewInventory(),
	}
}

// Host returns the engine endpoint.
func (w *Watcher) Host() string { return w.host }

// Inventory returns the watcher's inventory. It keeps its content while
// reconnecting (the next full sync replaces it) and is emptied when Run
// returns.
func (w *Watcher) Inventory() *Inventory { return w.inv }

// Start runs Run in a new goroutine. stop cancels it and returns once Run
// has returned.
func (w *Watcher) Start(ctx context.Context) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := w.Run(ctx); err != nil {
			w.logger.Error("watcher not started", zap.Error(err))
		}
	}()
	return func() {
		cancel()
		<-done
	}
}

// Run connects and watches until ctx ends. It returns nil once everything
// it started has stopped and its client is closed, or ErrAlreadyRunning.
func (w *Watcher) Run(ctx context.Context) error {
	w.mu.Lock()
	if w.running {
		w.mu.Unlock()
		return ErrAlreadyRunning
	}
	w.running = true
	w.mu.Unlock()
	defer func() {
		w.inv.clear()
		w.mu.Lock()
		w.running = false
		w.mu.Unlock()
	}()

	attempt := 0
	for ctx.Err() == nil {
		w.opts.OnPhase(Phase{State: PhaseConnecting, Attempt: attempt})
		cli, connected, err := w.connect(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			wait := w.backoff(attempt)
			w.logger.Debug("connect failed", zap.Error(err), zap.Int("attempt", attempt), zap.Duration("retry-in", wait))
			w.opts.OnPhase(Phase{State: PhaseConnectFailed, Err: err, Attempt: attempt, RetryIn: wait})
			attempt++
			if !sleepCtx(ctx, wait) {
				return nil
			}
			continue
		}
		w.opts.OnPhase(connected)
		start := w.opts.Now()
		err = w.stream(ctx, cli)
		_ = cli.Close()
		if ctx.Err() != nil {
			return nil
		}
		// A connection that lasted resets the backoff; one that drops at
		// once keeps growing it, so a flapping engine is not resynced in a loop.
		if w.opts.Now().Sub(start) >= BackoffMax {
			attempt = 0
		}
		wait := w.backoff(attempt)
		w.logger.Info("event stream ended", zap.Error(err), zap.Duration("retry-in", wait))
		w.opts.OnPhase(Phase{State: PhaseDisconnected, Err: err, Attempt: attempt, RetryIn: wait, Counts: w.inv.Counts()})
		attempt++
		if !sleepCtx(ctx, wait) {
			return nil
		}
	}
	return nil
}

func (w *Watcher) backoff(attempt int) time.Duration {
	return min(max(w.opts.Backoff(attempt), 0), BackoffMax)
}

// connect pings, takes the event cursor, and does the full sync. On success
// the returned client is open and the caller closes it.
func (w *Watcher) connect(ctx context.Context) (dockerAPI, Phase, error) {
	cli, err := w.opts.dial(w.host)
	if err != nil {
		return nil, Phase{}, fmt.Errorf("failed to ping Docker: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, w.opts.PingTimeout)
	ping, err := cli.Ping(pctx)
	cancel()
	if err != nil {
		_ = cli.Close()
		return nil, Phase{}, fmt.Errorf("failed to ping Docker: %w", err)
	}
	cli.NegotiateAPIVersionPing(ping)

	// The cursor comes first: events that happen during the sync are
	// replayed after it, and replay is idempotent.
	since, engineVersion := w.cursor(ctx, cli)
	if err := w.fullSync(ctx, cli); err != nil {
		_ = cli.Close()
		return nil, Phase{}, fmt.Errorf("failed to perform initial sync: %w", err)
	}
	if w.opts.afterSync != nil {
		w.opts.afterSync()
	}
	return &cursorClient{dockerAPI: cli, since: since}, Phase{
		State:         PhaseConnected,
		Counts:        w.inv.Counts(),
		APIVersion:    cli.ClientVersion(),
		EngineVersion: engineVersion,
	}, nil
}

// cursorClient carries a connection's event cursor to stream.
type cursorClient struct {
	dockerAPI
	since time.Time
}

// cursor returns the event cursor from the daemon's clock and the daemon's
// version. When Info fails, the cursor is the host's time minus
// SinceFallback.
func (w *Watcher) cursor(ctx context.Context, cli dockerAPI) (since time.Time, version string) {
	ictx, cancel := context.WithTimeout(ctx, w.opts.InfoTimeout)
	defer cancel()
	info, err := cli.Info(ictx)
	if err == nil {
		var t time.Time
		if t, err = time.Parse(time.RFC3339Nano, info.SystemTime); err == nil {
			return t, info.ServerVersion
		}
	}
	w.logger.Warn("cannot read the engine's clock, replaying events from before the host's time", zap.Error(err), zap.Duration("fallback", SinceFallback))
	return w.opts.Now().Add(-SinceFallback), info.ServerVersion
}

// stream applies the engine's events until the stream ends or ctx ends,
// resyncing every ResyncInterval. It returns why the stream ended (io.EOF
// when the engine closed it). The Events goroutine of the client has ended
// when stream returns.
func (w *Watcher) stream(ctx context.Context, cli dockerAPI) error {
	var since time.Time
	if cc, ok := cli.(*cursorClient); ok {
		since = cc.since
	}
	sctx, cancel := context.WithCancel(ctx)
	msgs, errs := cli.Events(sctx, eventsOptions{
		Since: since,
		Filters: listFilters{"type": {
			string(eventContainer), string(eventImage), string(eventVolume),
		}},
	})
	defer func() {
		cancel()
		for range errs { // the client's goroutine closes errs when it ends
		}
	}()

	var tick <-chan time.Time
	if w.opts.ResyncInterval > 0 {
		t := time.NewTicker(w.opts.ResyncInterval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err, ok := <-errs:
			if !ok || err == nil {
				err = io.EOF
			}
			return fmt.Errorf("docker event stream: %w", err)
		case m := <-msgs:
			w.handleEvent(ctx, cli, m)
		case <-tick:
			if err := w.fullSync(ctx, cli); err != nil && ctx.Err() == nil {
				w.logger.Warn("periodic resync failed", zap.Error(err))
			}
		}
	}
}

// sleepCtx waits d or until ctx ends; it reports whether d elapsed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
