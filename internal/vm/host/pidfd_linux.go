package host

import "golang.org/x/sys/unix"

func pidfdOpen(pid int) (int, error) { return unix.PidfdOpen(pid, 0) }
