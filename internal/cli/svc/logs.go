package svc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"
)

// FollowInterval is how often Follow checks the log for new data.
const FollowInterval = 200 * time.Millisecond

// Follow copies the file at path to w, then keeps copying what is appended
// until ctx ends (`tail -F`): when the file is replaced (rotated) or
// truncated it starts over from the beginning of the new file. A file that
// does not exist yet is waited for.
func Follow(ctx context.Context, path string, w io.Writer) error {
	var (
		f   *os.File
		off int64
	)
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	t := time.NewTicker(FollowInterval)
	defer t.Stop()
	for {
		if f == nil {
			nf, err := os.Open(path)
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("follow log: %w", err)
			}
			f, off = nf, 0
		}
		if f != nil {
			n, err := io.Copy(w, f)
			off += n
			if err != nil {
				return fmt.Errorf("follow log %s: %w", path, err)
			}
			if replaced(f, path, off) {
				f.Close()
				f = nil
				continue
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
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
