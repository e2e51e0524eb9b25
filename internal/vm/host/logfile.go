package host

import (
	"fmt"

	"github.com/rdd-project/rdd/internal/logfile"
)

// tailLog returns at most the last maxLines lines of the file, for error
// messages. It returns a note instead when the file is empty or
// cannot be read.
func tailLog(path string, maxLines int) string {
	s, err := logfile.Tail(path, maxLines)
	switch {
	case err != nil:
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	case s == "":
		return "(log is empty)"
	}
	return s
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
