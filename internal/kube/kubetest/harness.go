package kubetest

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
)

// shared is the package-wide server of the test binary that imports kubetest.
var shared struct {
	once sync.Once
	srv  *Server
	err  error
}

// Shared returns the test package's API server, starting it on first use (it
// takes seconds, so one serves the whole package). Tests must not Kill or Stop
// it. The package's TestMain must call Main so the server is stopped when the
// tests end. A server that cannot start fails the test with the reason, such
// as how to install etcd or build kube-apiserver.
func Shared(tb testing.TB) *Server {
	tb.Helper()
	shared.once.Do(func() {
		shared.srv, shared.err = Start(context.Background(), Options{Logf: stderrf})
	})
	if shared.err != nil {
		tb.Fatalf("kubetest: shared API server: %v", shared.err)
	}
	return shared.srv
}

// New starts a server for one test, stopped in tb.Cleanup. Use it when the
// test kills the server or needs it alone.
func New(tb testing.TB) *Server {
	tb.Helper()
	s, err := Start(context.Background(), Options{Logf: tb.Logf})
	if err != nil {
		tb.Fatalf("kubetest: API server: %v", err)
	}
	tb.Cleanup(func() {
		if err := s.Stop(); err != nil {
			tb.Errorf("kubetest: stop API server: %v", err)
		}
	})
	return s
}

// Main runs the tests and then stops the shared server, if one was started.
// Use it as: func TestMain(m *testing.M) { os.Exit(kubetest.Main(m)) }.
func Main(m *testing.M) int {
	code := m.Run()
	if shared.srv != nil {
		if err := shared.srv.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "kubetest: stop shared API server: %v\n", err)
			if code == 0 {
				code = 1
			}
		}
	}
	return code
}

func stderrf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
}
