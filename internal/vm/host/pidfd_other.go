//go:build !linux

package host

import "errors"

// The host driver runs on Linux only; elsewhere this keeps the daemon
// building (it picks the lima driver there), and waitExit polls.
func pidfdOpen(int) (int, error) { return -1, errors.ErrUnsupported }
