package api

import (
	"fmt"
	"net"

	"golang.org/x/sys/unix"
)

// peerCred reads the peer's credentials (SO_PEERCRED) from c.
func peerCred(c *net.UnixConn) (Source, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return Source{}, fmt.Errorf("peer credentials: %w", err)
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return Source{}, fmt.Errorf("peer credentials: %w", err)
	}
	if cerr != nil {
		return Source{}, fmt.Errorf("peer credentials: SO_PEERCRED: %w", cerr)
	}
	return Source{UID: int(cred.Uid), PID: int(cred.Pid)}, nil
}
