package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"

	"go.uber.org/zap"

	"github.com/rdd-project/rdd/internal/engine"
	"github.com/rdd-project/rdd/internal/kube"
	"github.com/rdd-project/rdd/internal/paths"
)

// ErrDriverUnavailable marks a DeleteMachine that could not build the VM
// driver (its helper or QEMU is gone, or it refuses this user): retrying
// will not help, and nothing can be stopped through it from here.
var ErrDriverUnavailable = errors.New("the vm driver is unavailable")

// DeleteMachine stops by force and deletes the machine (engine processes,
// k3s, VM) of the instance with the VM driver named driver ("" chooses as a
// daemon started now would). It is for `rdd svc delete` once no daemon
// runs: a killed daemon stopped nothing, and the instance's files, which
// record what runs, are about to go. Deleting a machine that does not exist
// is a no-op.
func DeleteMachine(ctx context.Context, p paths.Paths, driver string, getenv func(string) string) error {
	drv, _, err := vmDriver(Options{Paths: p, VMDriver: driver}, getenv, zap.NewNop())
	if err != nil {
		return fmt.Errorf("delete the machine of instance %s: %w: %w", p.Instance, ErrDriverUnavailable, err)
	}
	if c, ok := drv.(io.Closer); ok {
		defer c.Close()
	}
	if err := drv.Delete(ctx); err != nil {
		return fmt.Errorf("delete the machine of instance %s (vm driver %s): %w", p.Instance, drv.Name(), err)
	}
	return nil
}

// RemoveContexts removes the instance's Docker context and its kubeconfig
// entries (and standalone kubeconfig), as the App deletion does. It is for
// `rdd svc delete` once no daemon runs: a killed daemon deleted no App, and
// contexts left behind would point docker and kubectl at a socket and an
// API server that no longer exist. Removing what is absent is a no-op.
func RemoveContexts(ctx context.Context, p paths.Paths, getenv func(string) string) error {
	return errors.Join(
		engine.RemoveContext(ctx, engine.DockerConfigDir(getenv, p.Home), p.Name),
		removeKubeconfigEntries(ctx, publication(p, getenv)),
	)
}

func removeKubeconfigEntries(ctx context.Context, pub kube.Publication) error {
	_, err := kube.Remove(ctx, pub)
	return err
}

// publication is where the instance's kube context is published.
func publication(p paths.Paths, getenv func(string) string) kube.Publication {
	return kube.Publication{Name: p.Name, Source: p.K3sConfig, Standalone: p.KubeConfig, Target: kube.TargetFromEnv(getenv, p.Home)}
}
