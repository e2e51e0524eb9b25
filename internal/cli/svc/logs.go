package svc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// MaxBackups is how many rotated copies of a log are kept (behavior.md §1.2);
// with RDD_KEEP_LOGS every copy is kept.
const MaxBackups = 5

// Rotate renames path X.log to X.1.log, shifting older backups up by one and
// dropping those beyond MaxBackups unless keepAll. A missing X.log is fine.
func Rotate(path string, keepAll bool) error {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	ext := filepath.Ext(path)
	base := strings.TrimSuffix(path, ext)
	backup := func(n int) string { return base + "." + strconv.Itoa(n) + ext }
	last := MaxBackups
	if keepAll {
		last = 1
		for {
			if _, err := os.Stat(backup(last)); err != nil {
				break
			}
			last++
		}
	}
	if err := os.Remove(backup(last)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("rotate %s: %w", path, err)
	}
	for n := last - 1; n >= 1; n-- {
		if err := os.Rename(backup(n), backup(n+1)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("rotate %s: %w", path, err)
		}
	}
	if err := os.Rename(path, backup(1)); err != nil {
		return fmt.Errorf("rotate %s: %w", path, err)
	}
	return nil
}

// OpenRotated rotates path and opens a fresh file for appending, with title
// (RDD_LOG_TITLE) as its first line when non-empty.
func OpenRotated(path string, keepAll bool, title string) (*os.File, error) {
	if err := Rotate(path, keepAll); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open log: %w", err)
	}
	if title != "" {
		if _, err := io.WriteString(f, title+"\n"); err != nil {
			f.Close()
			return nil, fmt.Errorf("write log title: %w", err)
		}
	}
	return f, nil
}

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
