//go:build unix

package paths

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func shortDirIn(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("/tmp", "rdd-paths-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, ".rd2")
}

func wantMode(t *testing.T, p string, want fs.FileMode) {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != want {
		t.Fatalf("%s mode = %04o, want %04o", p, fi.Mode().Perm(), want)
	}
}

func TestEnsurePrivateDirCreates0700(t *testing.T) {
	old := syscall.Umask(0o277) // a umask that strips owner bits: the result is still 0700
	defer syscall.Umask(old)
	h := shortDirIn(t)
	if err := EnsurePrivateDir(h); err != nil {
		t.Fatal(err)
	}
	wantMode(t, h, 0o700)
	if err := EnsurePrivateDir(h); err != nil {
		t.Fatalf("second call: %v", err)
	}
}

// Issue 10 (3): a symlinked H was chmodded through (its 1777 target became
// 0700) and used. Now it is refused and the target is left as it was.
func TestEnsurePrivateDirRefusesSymlink(t *testing.T) {
	h := shortDirIn(t)
	target := filepath.Join(filepath.Dir(h), "shared")
	if err := os.Mkdir(target, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(target, 0o777|fs.ModeSticky); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, h); err != nil {
		t.Fatal(err)
	}
	err := EnsurePrivateDir(h)
	if err == nil || !strings.Contains(err.Error(), "symbolic link") || !strings.Contains(err.Error(), "rm "+h) {
		t.Fatalf("err = %v, want a refusal naming the link and how to remove it", err)
	}
	fi, _ := os.Stat(target)
	if fi.Mode()&(fs.ModePerm|fs.ModeSticky) != 0o777|fs.ModeSticky {
		t.Fatalf("the link's target was changed to %v", fi.Mode())
	}
}

func TestEnsurePrivateDirRefusesNonDirectory(t *testing.T) {
	h := shortDirIn(t)
	if err := os.WriteFile(h, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := EnsurePrivateDir(h); err == nil || !strings.Contains(err.Error(), "regular file, not a directory") {
		t.Fatalf("err = %v", err)
	}
}

// Issue 10 (3): an H belonging to another user was used as is.
func TestEnsurePrivateDirRefusesOtherOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give a directory to another uid")
	}
	h := shortDirIn(t)
	if err := os.Mkdir(h, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(h, 1001, 1001); err != nil {
		t.Fatal(err)
	}
	err := EnsurePrivateDir(h)
	if err == nil || !strings.Contains(err.Error(), h+" belongs to uid 1001") || !strings.Contains(err.Error(), "--instance") {
		t.Fatalf("err = %v, want it to name the owner and the way out", err)
	}
}

func TestEnsurePrivateDirRefusesWritableByOthers(t *testing.T) {
	h := shortDirIn(t)
	if err := os.Mkdir(h, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(h, 0o770); err != nil {
		t.Fatal(err)
	}
	if err := EnsurePrivateDir(h); err == nil || !strings.Contains(err.Error(), "writable by other users (mode 0770)") {
		t.Fatalf("err = %v", err)
	}
	wantMode(t, h, 0o770)
}

func TestEnsurePrivateDirTightensReadableDir(t *testing.T) {
	h := shortDirIn(t)
	if err := os.Mkdir(h, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(h, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := EnsurePrivateDir(h); err != nil {
		t.Fatal(err)
	}
	wantMode(t, h, 0o700)
}
