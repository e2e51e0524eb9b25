// Package k3sbin finds the k3s binary the host driver runs (design.md §4,
// "VM, host"): RDD_K3S_BIN, else k3s on PATH, else rdd's cache, else a
// checksum-verified download of the release for the requested k3s tag.
//
// # Cache
//
// The cache is shared by every instance of the user (paths.Paths.CacheDir):
// a binary lives at <CacheDir>/k3s/<tag>/<arch>/k3s. The arch level keeps a
// home shared between machines of different architectures from handing one
// the other's binary, and the file is always called k3s because k3s picks its
// personality (kubectl, crictl, ctr) from argv[0]. A file appears there only
// by an atomic rename after its checksum matched, so whatever is there is
// trusted without hashing 70 MB on every start.
//
// # Download
//
// <base>/<tag>/k3s (k3s-arm64 on arm64) and <base>/<tag>/sha256sum-<arch>.txt,
// where base is https://github.com/k3s-io/k3s/releases/download or
// RDD_K3S_MIRROR, and the tag's "+" is sent as "%2B". The checksum file is
// fetched first, so a release without one costs no binary download. The
// binary goes to k3s.part next to its final place and is resumed with a Range
// request by the next Resolve when a transfer breaks; the checksum always
// covers the whole file. Downloads of one tag and arch are serialised by a
// flock on a .lock file in that directory, across daemons too; the loser
// finds the winner's binary in the cache. A transfer that receives nothing for
// StallTimeout fails, and Resolve never retries by itself: the caller's
// backoff calls it again and the .part makes that cheap.
package k3sbin

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"
)

// DefaultMirror is where k3s publishes its release assets.
const DefaultMirror = "https://github.com/k3s-io/k3s/releases/download"

// DefaultStallTimeout is how long a transfer may receive nothing before it fails.
const DefaultStallTimeout = 30 * time.Second

// Environment variables read through Resolver.Getenv.
const (
	EnvBin    = "RDD_K3S_BIN"
	EnvMirror = "RDD_K3S_MIRROR"
)

// Sources reported by Resolve.
const (
	SourceEnv      = "RDD_K3S_BIN"
	SourcePath     = "PATH"
	SourceCache    = "cache"
	SourceDownload = "download"
)

// Resolver finds or installs k3s. Its fields are read, never written, so one
// Resolver may serve concurrent Resolve calls.
type Resolver struct {
	// Getenv is the daemon's frozen environment (RDD_K3S_BIN, RDD_K3S_MIRROR,
	// PATH); nil means os.Getenv.
	Getenv func(string) string
	// CacheDir is the cache root shared by all instances (paths.Paths.CacheDir).
	CacheDir string
	// Client fetches the release; nil means a client with connect, TLS and
	// header timeouts but no overall limit, since a slow link may need minutes.
	Client *http.Client
	// Progress, if set, is called when a download starts, at most every
	// ProgressInterval while it runs, and once at its end.
	Progress func(Progress)
	// StallTimeout fails a transfer that receives nothing for that long,
	// waiting for the response headers included; 0 means DefaultStallTimeout.
	StallTimeout time.Duration
	// Arch is the GOARCH whose release to download; "" means runtime.GOARCH.
	Arch string

	// onLockWait lets tests see that a second resolver waits for the first.
	onLockWait func()
}

// Progress reports a download. Total is -1 while the size is unknown.
type Progress struct {
	URL   string
	Done  int64
	Total int64
}

// ProgressInterval is the least time between two Progress calls of one download.
const ProgressInterval = 500 * time.Millisecond

// Resolve returns the path of a k3s binary for tag (e.g. "v1.32.11+k3s3",
// spec.Versions.Tag) and where it came from: SourceEnv, SourcePath,
// SourceCache or SourceDownload. A failed download returns an *InstallError;
// an RDD_K3S_BIN that is not an executable file fails without looking further,
// because a user who set it wants that binary and no other.
func (r *Resolver) Resolve(ctx context.Context, tag string) (path, source string, err error) {
	getenv := r.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	if bin := getenv(EnvBin); bin != "" {
		p, err := checkEnvBin(bin)
		if err != nil {
			return "", "", err
		}
		return p, SourceEnv, nil
	}
	if p := lookPath(getenv("PATH")); p != "" {
		return p, SourcePath, nil
	}
	if err := validTag(tag); err != nil {
		return "", "", err
	}
	if r.CacheDir == "" {
		return "", "", errors.New("k3s: no cache directory to install k3s into (set RDD_K3S_BIN to a k3s binary)")
	}
	arch := r.arch()
	dir := filepath.Join(r.CacheDir, "k3s", tag, arch)
	final := filepath.Join(dir, "k3s")
	if isExecutable(final) {
		return final, SourceCache, nil
	}
	if err := ctx.Err(); err != nil {
		return "", "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", fmt.Errorf("k3s: create cache directory: %w (set RDD_K3S_BIN to a k3s binary)", err)
	}
	unlock, err := lockDir(ctx, filepath.Join(dir, ".lock"), r.onLockWait)
	if err != nil {
		return "", "", err
	}
	defer unlock()
	// Another daemon may have installed it while this one waited for the lock.
	if isExecutable(final) {
		return final, SourceCache, nil
	}
	u, err := r.urls(getenv(EnvMirror), tag, arch)
	if err != nil {
		return "", "", err
	}
	if err := r.install(ctx, u, final); err != nil {
		return "", "", err
	}
	return final, SourceDownload, nil
}

func (r *Resolver) arch() string {
	if r.Arch != "" {
		return r.Arch
	}
	return runtime.GOARCH
}

func (r *Resolver) stallTimeout() time.Duration {
	if r.StallTimeout > 0 {
		return r.StallTimeout
	}
	return DefaultStallTimeout
}

func (r *Resolver) client() *http.Client {
	if r.Client != nil {
		return r.Client
	}
	return defaultClient()
}

// defaultClient bounds every phase before the body, where a hang would
// otherwise never end; the body is bounded by the stall timeout instead.
// It is built on first use: every rdd command links this package, and only
// the daemon downloads.
var defaultClient = sync.OnceValue(func() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	t.TLSHandshakeTimeout = 15 * time.Second
	t.ResponseHeaderTimeout = 60 * time.Second
	return &http.Client{Transport: t}
})

// checkEnvBin insists on an executable regular file and makes the path
// absolute, so the daemon's later exec does not depend on its working directory.
func checkEnvBin(bin string) (string, error) {
	abs, err := filepath.Abs(bin)
	if err != nil {
		return "", fmt.Errorf("%s=%s: %w: point %s at a k3s binary or unset it", EnvBin, bin, err, EnvBin)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return "", fmt.Errorf("%s=%s: %w: point %s at a k3s binary or unset it", EnvBin, bin, err, EnvBin)
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		return "", fmt.Errorf("%s=%s is not an executable file (mode %s): point %s at a k3s binary or unset it", EnvBin, bin, fi.Mode(), EnvBin)
	}
	return abs, nil
}

// lookPath searches the frozen PATH rather than the process's. Empty and
// relative entries are skipped: they would resolve against the daemon's
// working directory, which the user never chose (exec.LookPath refuses them
// too, with ErrDot).
func lookPath(path string) string {
	for _, dir := range filepath.SplitList(path) {
		if dir == "" || !filepath.IsAbs(dir) {
			continue
		}
		if p := filepath.Join(dir, "k3s"); isExecutable(p) {
			return p
		}
	}
	return ""
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

// validTag keeps the tag from escaping the cache directory or the URL path.
func validTag(tag string) error {
	ok := tag != "" && tag != "." && tag != ".." && !strings.HasPrefix(tag, ".")
	for _, c := range tag {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune(".+-_", c)) {
			ok = false
		}
	}
	if !ok {
		return fmt.Errorf("k3s: %q is not a k3s release tag like v1.32.11+k3s3", tag)
	}
	return nil
}

// lockDir takes an exclusive flock on path, polling so that ctx can end the
// wait (as internal/vm/host does for its network lock).
func lockDir(ctx context.Context, path string, onWait func()) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("k3s: cache lock: %w", err)
	}
	var t *time.Ticker
	for {
		err := flock(f)
		if err == nil {
			if t != nil {
				t.Stop()
			}
			return func() { _ = f.Close() }, nil
		}
		if !errors.Is(err, errWouldBlock) {
			_ = f.Close()
			return nil, fmt.Errorf("k3s: cache lock %s: %w", path, err)
		}
		if t == nil {
			t = time.NewTicker(50 * time.Millisecond)
			defer t.Stop()
			if onWait != nil {
				onWait()
			}
		}
		select {
		case <-ctx.Done():
			_ = f.Close()
			return nil, fmt.Errorf("k3s: waiting for another rdd to finish downloading (lock %s): %w", path, ctx.Err())
		case <-t.C:
		}
	}
}
