//go:build !linux

package mounts

import "golang.org/x/sys/unix"

// detach unmounts mp; other systems have no lazy unmount.
func detach(mp string) error { return unix.Unmount(mp, 0) }
