package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"

	"go.uber.org/zap"

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
