package svc

import "golang.org/x/sys/unix"

// pidfdOpen pins a process: signals through the fd cannot hit a reused pid,
// and the fd becomes readable when the process exits.
func pidfdOpen(pid int) (int, error) { return unix.PidfdOpen(pid, 0) }

func pidfdKill(fd int) error { return unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0) }
