//go:build !linux

package svc

import "errors"

// Without pidfds (macOS) the callers poll the pid and signal it by number.
func pidfdOpen(int) (int, error) { return -1, errors.ErrUnsupported }

func pidfdKill(int) error { return errors.ErrUnsupported }
