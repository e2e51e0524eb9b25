//go:build unix

package userfile_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rdd-project/rdd/internal/userfile"
)

// within runs fn and fails the test if it has not returned after d: a read
// that blocks must fail the test, not hang it.
func within(t *testing.T, d time.Duration, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); fn() }()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("still blocked after %v", d)
	}
}

func TestReadRefusesFIFO(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.json")
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	var err error
	within(t, 5*time.Second, func() { _, err = userfile.Read(path) })
	if !errors.Is(err, userfile.ErrNotRegular) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "FIFO") {
		t.Fatalf("Read of a FIFO: %v, want ErrNotRegular naming %s as a FIFO", err, path)
	}
	within(t, 5*time.Second, func() { err = userfile.Check(path) })
	if !errors.Is(err, userfile.ErrNotRegular) {
		t.Fatalf("Check of a FIFO: %v, want ErrNotRegular", err)
	}
}

func TestReadRefusesDevicesAndDirs(t *testing.T) {
	for _, path := range []string{"/dev/zero", t.TempDir()} {
		var err error
		within(t, 5*time.Second, func() { _, err = userfile.Read(path) })
		if !errors.Is(err, userfile.ErrNotRegular) {
			t.Errorf("Read(%s): %v, want ErrNotRegular", path, err)
		}
	}
}

func TestReadRegularAndMissing(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	if err := os.WriteFile(path, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(path, link); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, link} {
		if b, err := userfile.Read(p); err != nil || string(b) != "hello" {
			t.Errorf("Read(%s) = %q, %v", p, b, err)
		}
	}
	if _, err := userfile.Read(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Read of a missing file: %v, want fs.ErrNotExist", err)
	}
}
