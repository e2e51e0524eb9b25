package kubetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Version is the kube-apiserver the harness runs; hack/kube-apiserver.sh
// builds this version into CachePath.
const Version = "v1.34.2"

// Environment variables that override where the harness finds its binaries.
const (
	EnvAPIServer = "RDD_KUBE_APISERVER"
	EnvEtcd      = "RDD_ETCD"
)

// buildScript is the repository-relative script that builds kube-apiserver.
const buildScript = "hack/kube-apiserver.sh"

// buildTimeout bounds an implicit cold build (about 10 min on 2 cores).
const buildTimeout = 30 * time.Minute

// CachePath is where hack/kube-apiserver.sh puts the binary under repo root.
func CachePath(root string) string {
	return filepath.Join(root, ".cache", "kube-apiserver", Version, "kube-apiserver")
}

// RepoRoot walks up from dir to the directory that holds go.mod and the build
// script, which is the rdd repository root (a nested module's go.mod, such as
// tools/kube-apiserver's, has no hack/ beside it).
func RepoRoot(dir string) (string, error) {
	d, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for {
		if isFile(filepath.Join(d, "go.mod")) && isFile(filepath.Join(d, buildScript)) {
			return d, nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", fmt.Errorf("no rdd repository root (go.mod beside %s) above %s", buildScript, dir)
		}
		d = parent
	}
}

// FindAPIServer returns the kube-apiserver binary: $RDD_KUBE_APISERVER, else
// the cache path under the repository root found from the working directory.
// When the cached binary is missing it runs hack/kube-apiserver.sh (a cold
// build takes about 10 minutes; log receives a notice first). The error says
// how to provide the binary.
func FindAPIServer(ctx context.Context, log func(string)) (string, error) {
	if p := os.Getenv(EnvAPIServer); p != "" {
		if !isExecutable(p) {
			return "", fmt.Errorf("%s=%s is not an executable file; unset it to use %s, or point it at a kube-apiserver %s binary", EnvAPIServer, p, buildScript, Version)
		}
		return p, nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find kube-apiserver: %w", err)
	}
	root, err := RepoRoot(wd)
	if err != nil {
		return "", fmt.Errorf("find kube-apiserver: %w; set %s to a kube-apiserver %s binary", err, EnvAPIServer, Version)
	}
	cached := CachePath(root)
	if isExecutable(cached) {
		return cached, nil
	}
	script := filepath.Join(root, buildScript)
	if log != nil {
		log(fmt.Sprintf("kubetest: %s missing; running %s (cold build ~10 min; run it before the tests, or set %s)", cached, script, EnvAPIServer))
	}
	ctx, cancel := context.WithTimeout(ctx, buildTimeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, script)
	cmd.Dir = root
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("kube-apiserver %s missing at %s and `%s` failed: %w\n%s\nbuild it with `%s` (needs the Go module proxy, ~10 min) or set %s",
			Version, cached, script, err, tail(stderr.String(), 2000), script, EnvAPIServer)
	}
	if p := strings.TrimSpace(stdout.String()); p != cached || !isExecutable(cached) {
		return "", fmt.Errorf("%s printed %q but %s is not an executable; run it by hand to see why", script, p, cached)
	}
	return cached, nil
}

// FindEtcd returns the etcd binary: $RDD_ETCD, else etcd on PATH, else
// Debian's /usr/bin/etcd.
func FindEtcd() (string, error) {
	if p := os.Getenv(EnvEtcd); p != "" {
		if !isExecutable(p) {
			return "", fmt.Errorf("%s=%s is not an executable file", EnvEtcd, p)
		}
		return p, nil
	}
	if p, err := exec.LookPath("etcd"); err == nil {
		return p, nil
	}
	if isExecutable("/usr/bin/etcd") {
		return "/usr/bin/etcd", nil
	}
	return "", errors.New("etcd not found: install Debian's etcd-server (`apt-get install -y etcd-server`, etcd 3.4) or set " + EnvEtcd)
}

func isFile(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
