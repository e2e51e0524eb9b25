//go:build unix

package client

import (
	"os"
	"syscall"
)

// dirOwner returns the uid owning dir itself (not a link's target).
func dirOwner(dir string) (int, bool) {
	fi, err := os.Lstat(dir)
	if err != nil || !fi.IsDir() {
		return 0, false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return int(st.Uid), true
}
