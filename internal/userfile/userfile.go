// Package userfile reads files that belong to the user rather than to rdd
// (the Docker CLI's config.json and context files, kubeconfigs and the
// files they name) without trusting what kind of file they are.
//
// A plain os.ReadFile of a FIFO blocks in open(2) until a writer appears,
// and of a character device such as /dev/zero never ends; either hung
// `rdd stop` for good (issue 10). Read opens with O_NONBLOCK, checks with
// fstat that it got a regular file, and refuses anything else with
// ErrNotRegular naming the file, before reading a byte.
package userfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
)

// MaxSize bounds what Read returns: a config file of this size is a
// mistake, and reading it whole would cost that much memory.
const MaxSize = 64 << 20

// ErrNotRegular is wrapped by the error Read returns for a file that is not
// a regular file (FIFO, socket, device, directory).
var ErrNotRegular = errors.New("not a regular file")

// ErrTooLarge is wrapped by the error Read returns for a file above MaxSize.
var ErrTooLarge = errors.New("file too large")

// Read returns the content of the regular file at path (symbolic links are
// followed). A missing file is an error wrapping fs.ErrNotExist, as with
// os.ReadFile. It never blocks on the kind of file it finds.
func Read(path string) ([]byte, error) {
	f, err := openNonblock(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, &fs.PathError{Op: "read", Path: path, Err: fmt.Errorf(
			"%w but a %s: rdd reads it only as a regular file; replace it with one (or remove it)",
			ErrNotRegular, kind(st.Mode()))}
	}
	if st.Size() > MaxSize {
		return nil, &fs.PathError{Op: "read", Path: path, Err: fmt.Errorf(
			"%w: %d bytes, above the %d MiB rdd reads", ErrTooLarge, st.Size(), MaxSize>>20)}
	}
	// The size may change under us: read at most MaxSize+1 to notice growth.
	b, err := io.ReadAll(io.LimitReader(f, MaxSize+1))
	if err != nil {
		return nil, &fs.PathError{Op: "read", Path: path, Err: err}
	}
	if len(b) > MaxSize {
		return nil, &fs.PathError{Op: "read", Path: path, Err: fmt.Errorf(
			"%w: above the %d MiB rdd reads", ErrTooLarge, MaxSize>>20)}
	}
	return b, nil
}

// Check reports whether path can be opened as a regular file for reading,
// with the error Read would give; it reads nothing.
func Check(path string) error {
	f, err := openNonblock(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return &fs.PathError{Op: "open", Path: path, Err: fmt.Errorf(
			"%w but a %s: rdd reads it only as a regular file; replace it with one (or remove it)",
			ErrNotRegular, kind(st.Mode()))}
	}
	return nil
}

func kind(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "named pipe (FIFO)"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeCharDevice != 0:
		return "character device"
	case m&fs.ModeDevice != 0:
		return "device"
	case m.IsDir():
		return "directory"
	}
	return "special file (" + m.Type().String() + ")"
}
