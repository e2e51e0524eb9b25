// Package daemon wires the event log, the projector, the four machines and
// their controllers, and the socket API into the running `rdd daemon`.
package daemon

import (
	"context"
	"errors"

	"github.com/rdd-project/rdd/internal/paths"
)

// Options configure one daemon run.
type Options struct {
	Paths paths.Paths
	// VMDriver is "host", "lima" or "auto" (design.md §4).
	VMDriver string
	// LogLevel is a zap level name; "" means the default (info).
	LogLevel string
	// Version is the rdd version recorded in DaemonStarted.
	Version string
	// Ready, if non-nil, is closed once the socket serves.
	Ready chan<- struct{}
}

// ErrAlreadyRunning is returned when another daemon holds the instance's event log.
var ErrAlreadyRunning = errors.New("daemon: another rdd daemon is already running for this instance")

// Run runs the daemon until ctx ends (SIGINT/SIGTERM in `rdd daemon`), then
// shuts down gracefully.
func Run(ctx context.Context, opts Options) error {
	return errors.New("daemon: not implemented yet")
}
