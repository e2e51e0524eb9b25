package kube

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Target says where the user's kubeconfig lives. It is the environment passed
// in explicitly (the daemon freezes it at start, F20), so nothing in this
// package reads os.Getenv.
type Target struct {
	// KubeconfigEnv is the value of $KUBECONFIG, possibly a list joined with
	// os.PathListSeparator. Empty means unset.
	KubeconfigEnv string
	// Home is the user's home directory, used when KubeconfigEnv names no file.
	Home string
}

// TargetFromEnv builds a Target from a getenv function (os.Getenv in main).
func TargetFromEnv(getenv func(string) string, home string) Target {
	return Target{KubeconfigEnv: getenv("KUBECONFIG"), Home: home}
}

// Files returns the kubeconfig files in kubectl's precedence order: the
// $KUBECONFIG list split with filepath.SplitList, empty entries dropped and
// duplicates removed, or ~/.kube/config when the list names no file. Relative
// entries are made absolute against the process's working directory, as
// kubectl would resolve them from the shell the daemon was started in.
func (t Target) Files() ([]string, error) {
	var files []string
	seen := map[string]bool{}
	for _, f := range filepath.SplitList(t.KubeconfigEnv) {
		if f == "" {
			continue
		}
		abs, err := filepath.Abs(f)
		if err != nil {
			return nil, fmt.Errorf("resolve KUBECONFIG entry %q: %w", f, err)
		}
		if !seen[abs] {
			seen[abs] = true
			files = append(files, abs)
		}
	}
	if len(files) > 0 {
		return files, nil
	}
	if t.Home == "" {
		return nil, errors.New("resolve kubeconfig: KUBECONFIG names no file and the home directory is unknown; set HOME or KUBECONFIG")
	}
	return []string{filepath.Join(t.Home, ".kube", "config")}, nil
}

// maxSymlinks bounds symlink resolution, like the kernel's ELOOP limit.
const maxSymlinks = 40

// resolveTarget follows path through symlinks to the file that holds the
// bytes, so a rename replaces that file and leaves the link in place. Unlike
// filepath.EvalSymlinks it also resolves a dangling link (the config a link
// points to may not exist yet) and leaves directory links in the parent path
// alone, which rename does not care about.
func resolveTarget(path string) (string, error) {
	p := path
	for range maxSymlinks {
		fi, err := os.Lstat(p)
		if errors.Is(err, os.ErrNotExist) {
			return p, nil
		}
		if err != nil {
			return "", &FileError{Op: OpStat, Path: path, Err: err}
		}
		if fi.Mode()&os.ModeSymlink == 0 {
			return p, nil
		}
		dest, err := os.Readlink(p)
		if err != nil {
			return "", &FileError{Op: OpStat, Path: path, Err: err}
		}
		if !filepath.IsAbs(dest) {
			dest = filepath.Join(filepath.Dir(p), dest)
		}
		p = dest
	}
	return "", &FileError{Op: OpStat, Path: path, Err: fmt.Errorf("more than %d symlinks", maxSymlinks)}
}
