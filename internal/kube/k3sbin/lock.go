package k3sbin

import (
	"os"
	"syscall"
)

var errWouldBlock = syscall.EWOULDBLOCK

// flock takes the lock without blocking; the lock belongs to f's open file
// description, so two opens in one process exclude each other as two
// processes do, and the kernel drops it if the daemon dies mid-download.
func flock(f *os.File) error {
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err != syscall.EINTR {
			return err
		}
	}
}
