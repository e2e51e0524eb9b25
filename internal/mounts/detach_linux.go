package mounts

import "golang.org/x/sys/unix"

// detach unmounts mp lazily: a busy mount goes once its last user does.
func detach(mp string) error { return unix.Unmount(mp, unix.MNT_DETACH) }
