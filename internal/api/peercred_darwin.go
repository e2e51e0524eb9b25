package api

import (
	"fmt"
	"net"

	"golang.org/x/sys/unix"
)

// peerCred reads the peer's uid (LOCAL_PEERCRED) and pid (LOCAL_PEERPID) from c.
func peerCred(c *net.UnixConn) (Source, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return Source{}, fmt.Errorf("peer credentials: %w", err)
	}
	var cred *unix.Xucred
	var pid int
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptXucred(int(fd), unix.SOL_LOCAL, unix.LOCAL_PEERCRED)
		if cerr == nil {
			pid, cerr = unix.GetsockoptInt(int(fd), unix.SOL_LOCAL, unix.LOCAL_PEERPID)
		}
	}); err != nil {
		return Source{}, fmt.Errorf("peer credentials: %w", err)
	}
	if cerr != nil {
		return Source{}, fmt.Errorf("peer credentials: LOCAL_PEERCRED: %w", cerr)
	}
	return Source{UID: int(cred.Uid), PID: pid}, nil
}
