package vm

import (
	"context"
	"errors"

	"github.com/rdd-project/rdd/internal/spec"
)

// KubernetesConfig is what a driver needs to run k3s beside the engine.
type KubernetesConfig struct {
	Binary string          // the resolved k3s executable
	Tag    string          // k3s tag, e.g. v1.32.11+k3s1 (for the record)
	Port   int             // --https-listen-port
	Engine spec.EngineName // moby → --docker; containerd → --container-runtime-endpoint
}

// KubernetesInfo is what a driver found of its k3s process.
type KubernetesInfo struct {
	Running bool
	PID     int
	// Exited is closed when the process exits; nil unless Running.
	Exited <-chan struct{}
	// Message explains the finding, e.g. the tail of the k3s log after an exit.
	Message string
}

// ErrKubernetesPortInUse is wrapped when k3s could not bind its port
// (behavior.md §10 F13): the caller picks another port.
var ErrKubernetesPortInUse = errors.New("the Kubernetes API port is in use")

// KubernetesRunner is implemented by drivers on which rdd itself runs k3s
// (host); in a VM the template starts k3s.
type KubernetesRunner interface {
	// StartKubernetes starts k3s, or adopts a running one started with the
	// same config; it returns once the process runs (not once the API
	// answers). A k3s that exits within a short grace (~1-2 s) with a bind
	// error returns an error wrapping ErrKubernetesPortInUse.
	StartKubernetes(ctx context.Context, cfg KubernetesConfig) (KubernetesInfo, error)
	// StopKubernetes stops k3s (SIGTERM, then SIGKILL of the group after a
	// grace) and is a no-op when none runs.
	StopKubernetes(ctx context.Context) error
	// InspectKubernetes re-adopts a running k3s (after a daemon crash) or
	// reports none; Message carries the log tail of an exited one.
	InspectKubernetes(ctx context.Context) (KubernetesInfo, error)
}
