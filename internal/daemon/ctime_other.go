//go:build !linux

package daemon

import "os"

// changeTime falls back to the modification time where ctime is not read.
func changeTime(fi os.FileInfo) int64 { return fi.ModTime().UnixNano() }
