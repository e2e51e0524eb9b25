package engine

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"

	"go.uber.org/zap"
)

// ContextManager applies the Docker context policy of behavior.md §7.4 for
// one instance: Activate (once per watcher start, after its first Connected
// phase, i.e. after the full sync) writes the context and
// starts one asynchronous current-context probe; Deactivate (watcher stop,
// backend switch, VM stop) cancels and waits for that probe, then removes
// the context. At most one probe runs at a time. Methods are safe for
// concurrent use; the lock order is mu, then nothing.
type ContextManager struct {
	cfgDir, name, host string
	env                func(string) string
	logger             *zap.Logger
	onSwitch           func(switched bool, err error)
	defaultHost        string

	mu     sync.Mutex
	cancel context.CancelFunc // of the running probe, nil when none
	done   chan struct{}      // closed when the running probe ends
}

// NewContextManager returns a manager for the Docker context name pointing
// at host, in the Docker config dir cfgDir. env is the daemon's environment
// frozen at start (F20). onSwitch, if non-nil, receives each probe's
// outcome from the probe goroutine. A nil logger logs nothing.
func NewContextManager(cfgDir, name, host string, env func(string) string, logger *zap.Logger, onSwitch func(switched bool, err error)) *ContextManager {
	if logger == nil {
		logger = zap.NewNop()
	}
	if onSwitch == nil {
		onSwitch = func(bool, error) {}
	}
	return &ContextManager{
		cfgDir: cfgDir, name: name, host: host, env: env,
		logger:      logger.With(zap.String("subsystem", "engine"), zap.String("docker-context", name)),
		onSwitch:    onSwitch,
		defaultHost: DefaultDockerHost,
	}
}

// Activate writes the context (EnsureContext) and starts the
// current-context probe in the background, after cancelling and waiting for
// a probe still running. The probe ends with ctx. It returns EnsureContext's
// error, in which case no probe starts.
func (m *ContextManager) Activate(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.stopProbeLocked(ctx); err != nil {
		return err
	}
	if err := EnsureContext(m.cfgDir, m.name, m.host); err != nil {
		return err
	}
	pctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	m.cancel, m.done = cancel, done
	go func() { // the probe: owned by m, ends with pctx
		defer close(done)
		switched, err := switchCurrentContext(pctx, m.cfgDir, m.name, m.env, m.defaultHost)
		switch {
		case err != nil && pctx.Err() != nil:
			m.logger.Debug("docker current-context probe cancelled")
		case err != nil:
			m.logger.Warn("cannot switch the docker current context", zap.Error(err))
		case switched:
			m.logger.Info("switched the docker current context, the previous one was unhealthy")
		}
		m.onSwitch(switched, err)
	}()
	return nil
}

// Deactivate cancels and waits for a running probe, then removes the
// context (RemoveContext).
func (m *ContextManager) Deactivate(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.stopProbeLocked(ctx); err != nil {
		return err
	}
	return RemoveContext(ctx, m.cfgDir, m.name)
}

// Wait blocks until the running probe, if any, has ended.
func (m *ContextManager) Wait() {
	m.mu.Lock()
	done := m.done
	m.mu.Unlock()
	if done != nil {
		<-done
	}
}

// stopProbeLocked cancels the running probe and waits for it, at most until
// ctx ends: a probe stuck where cancelling cannot reach (a file system that
// does not answer) must not hold `rdd stop` with it. The next call waits
// again.
func (m *ContextManager) stopProbeLocked(ctx context.Context) error {
	if m.cancel == nil {
		return nil
	}
	m.cancel()
	select {
	case <-m.done:
		m.cancel = nil
		return nil
	case <-ctx.Done():
		return fmt.Errorf("the docker current-context probe of %s did not end: %w", filepath.Join(m.cfgDir, configFileName), ctx.Err())
	}
}
