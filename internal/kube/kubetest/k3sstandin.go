package kubetest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// EnvK3sStandin overrides where K3sStandin finds the stand-in k3s binary.
const EnvK3sStandin = "RDD_K3S_STANDIN"

// standinScript builds the stand-in k3s; it is cheap when up to date.
const standinScript = "hack/k3s-standin.sh"

// standinBuildTimeout bounds a build of the stand-in (seconds when the Go
// build cache is warm, a few minutes when cold on 2 shared cores).
const standinBuildTimeout = 10 * time.Minute

// StandinPath is where hack/k3s-standin.sh puts the stand-in under repo root.
func StandinPath(root string) string {
	return filepath.Join(root, ".cache", "k3s-standin", "k3s")
}

// standin is the test binary's one lookup: the script runs once per package.
var standin struct {
	once sync.Once
	path string
	err  error
}

// K3sStandin returns the stand-in k3s binary (internal/kube/kubetest/
// k3sstandin), a test double of k3s's process contract that runs the real
// kube-apiserver and etcd. It fails the test with what to do when the binary
// cannot be provided, as Shared does for a missing kube-apiserver.
func K3sStandin(tb testing.TB) string {
	tb.Helper()
	standin.once.Do(func() {
		standin.path, standin.err = FindK3sStandin(context.Background())
	})
	if standin.err != nil {
		tb.Fatalf("kubetest: stand-in k3s: %v", standin.err)
	}
	return standin.path
}

// FindK3sStandin returns $RDD_K3S_STANDIN, else runs hack/k3s-standin.sh,
// which rebuilds .cache/k3s-standin/k3s when its sources changed, so a test
// never runs a stale stand-in.
func FindK3sStandin(ctx context.Context) (string, error) {
	if p := os.Getenv(EnvK3sStandin); p != "" {
		if !isExecutable(p) {
			return "", fmt.Errorf("%s=%s is not an executable file; unset it to use %s", EnvK3sStandin, p, standinScript)
		}
		return p, nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find stand-in k3s: %w", err)
	}
	root, err := RepoRoot(wd)
	if err != nil {
		return "", fmt.Errorf("find stand-in k3s: %w; set %s", err, EnvK3sStandin)
	}
	ctx, cancel := context.WithTimeout(ctx, standinBuildTimeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, filepath.Join(root, standinScript))
	cmd.Dir = root
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("`%s` failed: %w\n%s\nrun `make test-deps`, or set %s", standinScript, err, tail(stderr.String(), 2000), EnvK3sStandin)
	}
	want := StandinPath(root)
	if p := strings.TrimSpace(stdout.String()); p != want || !isExecutable(want) {
		return "", fmt.Errorf("%s printed %q but %s is not an executable; run it by hand to see why", standinScript, p, want)
	}
	return want, nil
}
