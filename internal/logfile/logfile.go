// Package logfile rotates the logs rdd writes or has its children write
// (behavior.md §1.2): when a component starts, X.log becomes X.1.log, X.1.log
// becomes X.2.log and so on, five backups are kept (all with RDD_KEEP_LOGS),
// and a fresh X.log is created, starting with RDD_LOG_TITLE when set.
package logfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Backups is how many rotated copies of a log are kept unless keepAll.
const Backups = 5

// BackupName returns X.n.log for X.log.
func BackupName(path string, n int) string {
	ext := filepath.Ext(path)
	return strings.TrimSuffix(path, ext) + "." + strconv.Itoa(n) + ext
}

// Rotate renames path X.log to X.1.log, shifting older backups up by one and
// dropping those beyond Backups unless keepAll. A missing X.log is fine.
func Rotate(path string, keepAll bool) error {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	last := Backups
	if keepAll {
		last = 1
		for {
			if _, err := os.Stat(BackupName(path, last)); err != nil {
				break
			}
			last++
		}
	}
	if err := os.Remove(BackupName(path, last)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("rotate %s: %w", path, err)
	}
	for n := last - 1; n >= 1; n-- {
		if err := os.Rename(BackupName(path, n), BackupName(path, n+1)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("rotate %s: %w", path, err)
		}
	}
	if err := os.Rename(path, BackupName(path, 1)); err != nil {
		return fmt.Errorf("rotate %s: %w", path, err)
	}
	return nil
}

// Create rotates path and opens a fresh file (mode 0600) for appending, with
// title as its first line when non-empty.
func Create(path string, keepAll bool, title string) (*os.File, error) {
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

// tailWindow bounds how much of a log Tail reads: the end of a large log
// is enough for an error message.
const tailWindow = 64 << 10

// Tail returns the last n lines of the log at path (at most its last 64 KiB),
// without a trailing newline; "" for an empty file.
func Tail(path string, n int) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", err
	}
	off := max(st.Size()-tailWindow, 0)
	b, err := io.ReadAll(io.NewSectionReader(f, off, st.Size()-off))
	if err != nil {
		return "", err
	}
	s := strings.TrimRight(string(b), "\n")
	if s == "" {
		return "", nil
	}
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n"), nil
}
