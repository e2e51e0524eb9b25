package svc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"
)

// FollowInterval is how often a follow checks the log for new data: a
// poll, because inotify does not see a file replaced inside a directory
// rdd does not own the way it sees writes, and 5 wakeups a second cost
// nothing.
const FollowInterval = 200 * time.Millisecond

// FollowLines calls fn with every complete line (without its newline)
// written to the file at path from offset off on, then, at every tick, with
// the lines appended since, until ctx ends (`tail -F`). A line is passed
// only once its newline is written. When the file is replaced (rotated) or
// truncated, the rest of the old file is read and the new file is read from
// its beginning. A file that does not exist yet is waited for. It returns
// nil when ctx ends.
func FollowLines(ctx context.Context, path string, off int64, tick <-chan time.Time, fn func(line []byte) error) error {
	var (
		f       *os.File
		partial []byte
	)
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	buf := make([]byte, 64<<10)
	for {
		if f == nil {
			nf, err := os.Open(path)
			switch {
			case err == nil:
				if _, err := nf.Seek(off, io.SeekStart); err != nil {
					nf.Close()
					return fmt.Errorf("follow log %s: %w", path, err)
				}
				f = nf
			case !errors.Is(err, fs.ErrNotExist):
				return fmt.Errorf("follow log: %w", err)
			}
		}
		if f != nil {
			for {
				n, err := f.Read(buf)
				off += int64(n)
				data := append(partial, buf[:n]...)
				for {
					i := bytes.IndexByte(data, '\n')
					if i < 0 {
						break
					}
					if ferr := fn(data[:i]); ferr != nil {
						return ferr
					}
					data = data[i+1:]
				}
				partial = append(partial[:0], data...)
				if errors.Is(err, io.EOF) || n == 0 {
					break
				}
				if err != nil {
					return fmt.Errorf("follow log %s: %w", path, err)
				}
			}
			if replaced(f, path, off) {
				f.Close()
				f, off, partial = nil, 0, partial[:0]
				continue
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick:
		}
	}
}

// replaced reports whether path no longer names f or f was truncated below off.
func replaced(f *os.File, path string, off int64) bool {
	cur, err := f.Stat()
	if err != nil {
		return true
	}
	if cur.Size() < off {
		return true
	}
	now, err := os.Stat(path)
	if err != nil {
		return false // rotated away and not yet recreated: keep reading the old one
	}
	return !os.SameFile(cur, now)
}
