package agent

import (
	"fmt"
	"os"
	"syscall"

	"github.com/rdd-project/rdd/internal/vm/lima"
)

// Environment of the QEMU wrapper: the driver names the real QEMU and the
// options; Lima runs the wrapper (QEMU_SYSTEM_<ARCH>) instead of QEMU.
const (
	EnvRealQEMU        = "RDD_QEMU_REAL"
	EnvAccel           = "RDD_VM_ACCEL"
	EnvRestrictNetwork = "RDD_VM_RESTRICT_NETWORK"
)

// ExecQEMU replaces this process by the real QEMU with Lima's arguments
// rewritten for the chosen accelerator and network restriction (Lima v1.2.1
// always asks for the native accelerator and an unrestricted network).
func ExecQEMU(args []string) error {
	real := os.Getenv(EnvRealQEMU)
	if real == "" {
		return fmt.Errorf("qemu wrapper: %s is not set (it is run by rdd's lima driver only)", EnvRealQEMU)
	}
	restrict := os.Getenv(EnvRestrictNetwork) == "1" || os.Getenv(EnvRestrictNetwork) == "true"
	argv := append([]string{real}, lima.RewriteQEMUArgs(args, os.Getenv(EnvAccel), restrict)...)
	return syscall.Exec(real, argv, os.Environ())
}
