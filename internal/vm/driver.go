// Package vm holds the VM drivers. A driver observes and changes one machine
// that runs the container engine: the host itself (driver "host") or a Lima VM
// (driver "lima"). Drivers report facts; the vm state machine in internal/fsm
// decides what to do with them.
package vm

import (
	"context"

	"github.com/rdd-project/rdd/internal/spec"
)

// Config is what a driver needs to (re)start the machine. Its Hash changes
// exactly when a restart is needed to apply it.
type Config struct {
	Engine            spec.EngineName
	KubernetesEnabled bool
	KubernetesVersion string
	KubernetesPort    int
}

// Phase is what a driver found when it looked at the machine.
type Phase string

const (
	PhaseAbsent  Phase = "absent"  // nothing prepared on disk
	PhaseStopped Phase = "stopped" // prepared, nothing running (leftovers of an interrupted start already removed)
	PhaseRunning Phase = "running" // the engine process is alive and answers
	// PhaseBroken: something runs that is not a usable machine and that the
	// driver did not stop on its own, e.g. an engine that does not answer,
	// or a pid file naming a live process that is not ours. Start and Stop
	// both clean it up; the caller need not wait for anything first.
	PhaseBroken Phase = "broken"
)

// Info is the result of Inspect and Start.
type Info struct {
	Phase Phase
	// PID of the engine process (host) or hostagent (lima), 0 when none.
	PID int
	// TemplateHash is the Config.Hash the running machine was started with,
	// "" when unknown.
	TemplateHash string
	// RestartKey is the driver's restart key (RestartKeyer) of the running
	// machine's configuration, "" when the driver does not tell.
	RestartKey string
	// Exited is closed when the process found running exits. Nil unless
	// Phase is PhaseRunning.
	Exited <-chan struct{}
	// Message is a human explanation, e.g. why Phase is PhaseBroken.
	Message string
	// Booted, when not nil, reports the end of a boot that Start only
	// began (a VM takes minutes): nil once the machine is usable, else why
	// it never became so. Until then the machine is starting, not running.
	// Drivers whose Start returns a usable machine leave it nil.
	Booted <-chan error
}

// Driver is the small lifecycle every VM driver implements. All methods are
// idempotent and safe to call from one goroutine at a time (the vm
// controller owns the driver).
type Driver interface {
	// Name is "host" or "lima".
	Name() string
	// Create prepares the machine on disk. adopted is true when it already existed.
	Create(ctx context.Context) (adopted bool, err error)
	// Start boots the machine with cfg and returns once the engine process
	// runs (for host: the engine answers on its socket), or an error. It
	// succeeds promptly from any state a crash can leave (PhaseBroken, a
	// half-started machine, stale sockets, pid files, mounts): it removes
	// the leftovers itself, so the caller never has to Stop or wait first.
	// A machine that already runs with cfg's restart key (SameRestartKey)
	// is adopted as it is, so the caller need not Inspect first.
	Start(ctx context.Context, cfg Config) (Info, error)
	// Stop stops the machine gracefully, then by force when ctx ends, and
	// removes what a half-started or crashed machine left behind, so that
	// Inspect reports PhaseStopped afterwards.
	Stop(ctx context.Context) error
	// Inspect reports the machine promptly and truthfully: it waits only
	// for an engine that is finishing its start or busy answering, never
	// for one that cannot answer, and probes each process in its own
	// protocol. A process that is running is
	// re-adopted: the returned Info.Exited watches it. Inspect changes
	// nothing else, with one exception: a machine left half-started by a
	// daemon that died during Start (some of its processes never started,
	// or some exited while the rest run) was never usable, so Inspect
	// stops what runs of it and reports PhaseStopped, with a Message that
	// names what it found. Recovery can then start the machine at once.
	Inspect(ctx context.Context) (Info, error)
	// Delete stops the machine by force and removes everything Create made.
	Delete(ctx context.Context) error
}

// ConfigFor returns the driver configuration for spec s and the resolved
// Kubernetes port.
func ConfigFor(s spec.Spec, kubernetesPort int) Config {
	return Config{Engine: s.ContainerEngine.Name, KubernetesEnabled: s.Kubernetes.Enabled, KubernetesVersion: s.Kubernetes.Version, KubernetesPort: kubernetesPort}
}

// Hash identifies the configuration; a change means a restart (behavior.md
// §6.7). It equals spec.Spec.TemplateHash for the spec the Config came from.
func (c Config) Hash() string {
	return spec.TemplateHash(c.Engine, c.KubernetesEnabled, c.KubernetesVersion, c.KubernetesPort)
}
