package host

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// defaultLogBackups is how many rotated logs behavior.md §1.2 keeps.
const defaultLogBackups = 5

// backupName returns X.n.log for X.log.
func backupName(path string, n int) string {
	return strings.TrimSuffix(path, ".log") + "." + strconv.Itoa(n) + ".log"
}

// rotateLog implements behavior.md §1.2 for one component log: X.log becomes
// X.1.log, X.1.log becomes X.2.log and so on; backups beyond keep are removed
// (keep < 0 keeps all). A fresh X.log is created, starting with title when
// title is not empty.
func rotateLog(path string, keep int, title string) error {
	if _, err := os.Stat(path); err == nil {
		last := 1 // the highest backup that exists
		for {
			if _, err := os.Stat(backupName(path, last+1)); err != nil {
				break
			}
			last++
		}
		if _, err := os.Stat(backupName(path, 1)); err != nil {
			last = 0
		}
		for n := last; n >= 1; n-- {
			if keep >= 0 && n >= keep {
				if err := os.Remove(backupName(path, n)); err != nil && !errors.Is(err, os.ErrNotExist) {
					return fmt.Errorf("rotate log %s: %w", path, err)
				}
				continue
			}
			if err := os.Rename(backupName(path, n), backupName(path, n+1)); err != nil {
				return fmt.Errorf("rotate log %s: %w", path, err)
			}
		}
		if keep == 0 {
			err = os.Remove(path)
		} else {
			err = os.Rename(path, backupName(path, 1))
		}
		if err != nil {
			return fmt.Errorf("rotate log %s: %w", path, err)
		}
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("create log %s: %w", path, err)
	}
	if title != "" {
		_, err = fmt.Fprintln(f, title)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("create log %s: %w", path, err)
	}
	return nil
}

// tailLog returns at most the last maxLines lines of the file, read from its
// last 8 KiB, for error messages. It returns a note instead when the file
// cannot be read.
func tailLog(path string, maxLines int) string {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	defer f.Close()
	const window = 8 << 10
	if fi, err := f.Stat(); err == nil && fi.Size() > window {
		if _, err := f.Seek(-window, io.SeekEnd); err != nil {
			return fmt.Sprintf("(cannot read %s: %v)", path, err)
		}
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	b = bytes.TrimRight(b, "\n")
	lines := strings.Split(string(b), "\n")
	if len(lines) > maxLines {
		lines = lines[len(lines)-maxLines:]
	}
	if len(lines) == 1 && lines[0] == "" {
		return "(log is empty)"
	}
	return strings.Join(lines, "\n")
}
