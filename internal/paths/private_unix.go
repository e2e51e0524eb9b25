//go:build unix

package paths

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// EnsurePrivateDir creates dir (mode 0700) if it is missing, then makes sure
// it is a real directory, not a symbolic link, owned by the effective user,
// and writable by nobody else; otherwise it refuses with an error that says
// what is wrong and how to fix it.
//
// A directory of ours whose only excess permissions are group or other
// read/search bits is tightened to 0700: nobody could have put anything in
// it. One that others could write to is refused instead, because a socket
// or link they planted there would outlive the chmod.
//
// Every check and the chmod act on one descriptor opened with O_NOFOLLOW, so
// a symbolic link swapped in between them is never followed.
func EnsurePrivateDir(dir string) error {
	if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
		return fmt.Errorf("create directory %s: %w", filepath.Dir(dir), err)
	}
	created := true
	if err := os.Mkdir(dir, 0o700); err != nil {
		if !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("create directory %s: %w", dir, err)
		}
		created = false
	}
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return notADirectory(dir, err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("inspect %s: %w", dir, err)
	}
	if euid := os.Geteuid(); int(st.Uid) != euid {
		return fmt.Errorf("%s belongs to uid %d, not to you (uid %d), so that user could impersonate the rdd daemon: remove it (as uid %d or root) or choose another instance with --instance", dir, st.Uid, euid, st.Uid)
	}
	perm := fs.FileMode(st.Mode) & fs.ModePerm
	if perm == 0o700 {
		return nil
	}
	if !created && perm&0o022 != 0 {
		return fmt.Errorf("%s is writable by other users (mode %04o), so a socket in it may not be rdd's: check what it holds, then `chmod 700 %s`, or remove it", dir, perm, dir)
	}
	if err := unix.Fchmod(fd, 0o700); err != nil {
		return fmt.Errorf("restrict %s to its owner (mode %04o → 0700): %w", dir, perm, err)
	}
	return nil
}

// notADirectory explains why dir could not be opened as a directory.
func notADirectory(dir string, openErr error) error {
	fi, err := os.Lstat(dir)
	switch {
	case err != nil:
		return fmt.Errorf("open directory %s: %w", dir, openErr)
	case fi.Mode()&fs.ModeSymlink != 0:
		target, _ := os.Readlink(dir)
		return fmt.Errorf("%s is a symbolic link (to %s); rdd keeps its sockets only in a real directory it owns: remove the link (`rm %s`) and start again", dir, target, dir)
	case !fi.IsDir():
		return fmt.Errorf("%s is a %s, not a directory: move it away and start again", dir, describe(fi.Mode()))
	}
	return fmt.Errorf("open directory %s: %w", dir, openErr)
}

func describe(m fs.FileMode) string {
	switch m.Type() {
	case 0:
		return "regular file"
	case fs.ModeSocket:
		return "socket"
	case fs.ModeNamedPipe:
		return "named pipe"
	case fs.ModeDevice, fs.ModeDevice | fs.ModeCharDevice:
		return "device"
	}
	return "special file"
}
