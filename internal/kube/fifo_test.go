//go:build unix

package kube

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rdd-project/rdd/internal/userfile"
)

// TestKubeconfigFIFO: a FIFO where the user's kubeconfig should be makes
// Publish and Remove (rdd start / rdd stop) fail at once with an error
// naming the file, instead of blocking in open(2) for good; the FIFO stays.
func TestKubeconfigFIFO(t *testing.T) {
	e := newEnv(t)
	path := e.userConfig()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	for name, op := range map[string]func() error{
		"Publish": func() error { _, err := Publish(context.Background(), e.pub); return err },
		"Remove":  func() error { _, err := Remove(context.Background(), e.pub); return err },
	} {
		errc := make(chan error, 1)
		go func() { errc <- op() }()
		select {
		case err := <-errc:
			var fe *FileError
			if !errors.As(err, &fe) || !errors.Is(err, userfile.ErrNotRegular) || !strings.Contains(err.Error(), path) {
				t.Errorf("%s with a FIFO kubeconfig: %v, want a FileError naming %s as not a regular file", name, err, path)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s still blocked on the FIFO after 10s", name)
		}
	}
	if st, err := os.Lstat(path); err != nil || st.Mode()&os.ModeNamedPipe == 0 {
		t.Errorf("the FIFO was replaced: %v %v", st.Mode(), err)
	}
}
