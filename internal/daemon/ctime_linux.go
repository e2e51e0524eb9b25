package daemon

import (
	"os"
	"syscall"
)

// changeTime is fi's inode change time: chattr and chmod change it, the
// modification time does not.
func changeTime(fi os.FileInfo) int64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Ctim.Sec*1e9 + st.Ctim.Nsec
	}
	return 0
}
