//go:build unix

package userfile

import (
	"os"
	"syscall"
)

// openNonblock opens path read-only without blocking: O_NONBLOCK makes
// open(2) of a FIFO return at once, and O_NOCTTY keeps a terminal device
// from becoming our controlling terminal. Reads of a regular file ignore
// O_NONBLOCK.
func openNonblock(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
}
