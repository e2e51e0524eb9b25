package vm

import (
	"errors"
	"fmt"
	"strings"
)

// Driver names.
const (
	DriverHost = "host"
	DriverLima = "lima"
	DriverAuto = "auto"
)

// ErrLimaAsRoot is Choose's error for an explicit lima driver under root.
var ErrLimaAsRoot = errors.New("the lima driver cannot run as root (Lima refuses it): run rdd as a regular user, or set RDD_VM_DRIVER=host")

// Choose picks the VM driver (design.md §4). requested is --vm-driver or
// RDD_VM_DRIVER ("" means auto); goos, euid and qemuInstalled describe the
// host. reason says which rule decided, for DaemonStarted and rdd status;
// for an explicit request it is only "requested", because the caller knows
// whether the flag or the variable asked. Lima refuses to run as root, so
// asking for it as root fails here, at once, rather than at the first boot.
func Choose(requested, goos string, euid int, qemuInstalled bool) (name, reason string, err error) {
	switch requested {
	case "", DriverAuto:
		return chooseAuto(goos, euid, qemuInstalled)
	case DriverHost:
		if goos != "linux" {
			return "", "", fmt.Errorf("the host driver needs Linux; on %s use the lima driver", goos)
		}
		return DriverHost, "requested", nil
	case DriverLima:
		switch {
		case goos != "linux" && goos != "darwin":
			return "", "", fmt.Errorf("the lima driver is not supported on %s", goos)
		case euid == 0:
			return "", "", ErrLimaAsRoot
		case !qemuInstalled:
			return "", "", errors.New("the lima driver needs QEMU, and no qemu-system binary for this machine was found in PATH: install QEMU, or set RDD_VM_DRIVER=host")
		}
		return DriverLima, "requested", nil
	}
	return "", "", fmt.Errorf("unknown vm driver %q: valid values: auto, host, lima", requested)
}

func chooseAuto(goos string, euid int, qemuInstalled bool) (name, reason string, err error) {
	switch goos {
	case "darwin":
		if euid == 0 {
			return "", "", errors.New("auto: running as root on macOS, where Lima refuses root and the host driver does not exist: run rdd as a regular user")
		}
		if !qemuInstalled {
			return "", "", errors.New("auto: macOS needs the lima driver, which needs QEMU, and no qemu-system binary was found in PATH: install QEMU (e.g. brew install qemu)")
		}
		return DriverLima, "auto: macOS has no host driver; using the lima driver", nil
	case "linux":
		switch {
		case euid == 0:
			return DriverHost, "auto: running as root, Lima refuses root; using the host driver", nil
		case !qemuInstalled:
			return DriverHost, "auto: QEMU is not installed; using the host driver", nil
		}
		return DriverLima, "auto: not root and QEMU is installed; using the lima driver", nil
	}
	return "", "", fmt.Errorf("auto: no VM driver supports %s", goos)
}

// QEMUInstalled reports whether the QEMU that Lima would run for a guest of
// the host's architecture goarch exists: the one named by
// QEMU_SYSTEM_<ARCH> (Lima honours it, and rdd's QEMU wrapper uses it), else
// qemu-system-<arch> on PATH. getenv and lookPath are os.Getenv and
// exec.LookPath outside tests.
func QEMUInstalled(goarch string, getenv func(string) string, lookPath func(string) (string, error)) bool {
	var arch string
	switch goarch {
	case "amd64":
		arch = "x86_64"
	case "arm64":
		arch = "aarch64"
	default:
		return false
	}
	bin := "qemu-system-" + arch
	if v := getenv("QEMU_SYSTEM_" + strings.ToUpper(arch)); v != "" {
		bin = v
	}
	_, err := lookPath(bin)
	return err == nil
}
