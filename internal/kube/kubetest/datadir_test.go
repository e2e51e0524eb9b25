package kubetest

import (
	"context"
	"errors"
	"net"
	"os"
	"strings"
	"testing"
)

// StartInDir refuses what it must before it starts anything, so neither case
// needs etcd or kube-apiserver.
func TestStartInDirRefusesEarly(t *testing.T) {
	dir := t.TempDir() + "/never"
	if _, err := StartInDir(context.Background(), DirOptions{Dir: dir, BindAddress: "0.0.0.0", Port: 1}); !errors.Is(err, ErrNotLoopback) {
		t.Errorf("bind 0.0.0.0: %v, want ErrNotLoopback", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, err = StartInDir(context.Background(), DirOptions{Dir: dir, Port: l.Addr().(*net.TCPAddr).Port})
	if err == nil || !strings.Contains(err.Error(), "bind: address already in use") {
		t.Errorf("taken port: %v, want the listen error", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("%s created before the refusal: %v", dir, err)
	}
}
