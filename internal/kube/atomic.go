package kube

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

const (
	newFileMode os.FileMode = 0o600
	newDirMode  os.FileMode = 0o700
)

// ensureDir creates the directory that will hold file (0700). A ~/.kube that
// is a regular file fails here; the error names the kubeconfig the user
// configured, name, which differs from file when it is a symlink.
func ensureDir(file, name string) error {
	if err := os.MkdirAll(filepath.Dir(file), newDirMode); err != nil {
		return &FileError{Op: OpMkdir, Path: name, Err: err}
	}
	return nil
}

// writeAtomic replaces the kubeconfig at path (the name the user configured)
// with data. It writes a temporary file next to the resolved target, fsyncs it,
// renames it over the target and fsyncs the directory, so readers see the old
// or the new file, never a torn one. A symlink at path stays a link. The
// target's mode and, where permitted, owner are kept; a new file is 0600.
func writeAtomic(path string, data []byte) error {
	target, err := resolveTarget(path)
	if err != nil {
		return err
	}
	if err := ensureDir(target, path); err != nil {
		return err
	}
	mode := newFileMode
	uid, gid := -1, -1
	fi, err := os.Stat(target)
	switch {
	case err == nil && fi.IsDir():
		return &FileError{Op: OpWrite, Path: path, Err: errors.New("is a directory")}
	case err == nil:
		mode = fi.Mode().Perm()
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			uid, gid = int(st.Uid), int(st.Gid)
		}
	case !errors.Is(err, os.ErrNotExist):
		return &FileError{Op: OpStat, Path: path, Err: err}
	}

	dir := filepath.Dir(target)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(target)+".rdd-*.tmp")
	if err != nil {
		return &FileError{Op: OpWrite, Path: path, Err: err}
	}
	tmpName := tmp.Name()
	committed := false
	defer func() {
		if !committed {
			_ = tmp.Close()
			_ = os.Remove(tmpName)
		}
	}()
	if err := tmp.Chmod(mode); err != nil {
		return &FileError{Op: OpWrite, Path: path, Err: err}
	}
	if uid >= 0 && (uid != os.Geteuid() || gid != os.Getegid()) {
		// Keep the user's ownership when root (or a group member) rewrites
		// their file; failure is harmless for a file we may write anyway.
		_ = tmp.Chown(uid, gid)
	}
	if _, err := tmp.Write(data); err != nil {
		return &FileError{Op: OpWrite, Path: path, Err: err}
	}
	if err := tmp.Sync(); err != nil {
		return &FileError{Op: OpWrite, Path: path, Err: err}
	}
	if err := tmp.Close(); err != nil {
		return &FileError{Op: OpWrite, Path: path, Err: err}
	}
	if err := os.Rename(tmpName, target); err != nil {
		_ = os.Remove(tmpName)
		committed = true
		return &FileError{Op: OpRename, Path: path, Err: err}
	}
	committed = true
	if err := syncDir(dir); err != nil {
		return &FileError{Op: OpWrite, Path: path, Err: fmt.Errorf("fsync directory %s: %w", dir, err)}
	}
	return nil
}

// removeFile deletes the file at path; a missing file is success.
func removeFile(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return &FileError{Op: OpRemove, Path: path, Err: err}
	}
	return nil
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
