package host

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/rdd-project/rdd/internal/logfile"
)

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

// freshLog rotates a component log and leaves an empty one (with the title)
// for the spawned process to append to.
func freshLog(path string, keepAll bool, title string) error {
	f, err := logfile.Create(path, keepAll, title)
	if err != nil {
		return err
	}
	return f.Close()
}
