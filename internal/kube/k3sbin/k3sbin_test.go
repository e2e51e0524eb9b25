package k3sbin

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

const testTag = "v1.32.11+k3s3"

// loopbackClient refuses to dial anything but loopback, so a test that gets
// a URL wrong fails instead of reaching the network. It also ignores the
// proxy variables for the same reason.
func loopbackClient(t *testing.T) *http.Client {
	t.Helper()
	d := &net.Dialer{}
	tr := &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			host, _, err := net.SplitHostPort(addr)
			if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
				t.Errorf("test tried to dial %s; only loopback is allowed", addr)
				return nil, fmt.Errorf("dial %s: not loopback", addr)
			}
			return d.DialContext(ctx, network, addr)
		},
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// fakeRelease serves a k3s release under /mirror/<tag>/ the way GitHub does:
// the asset URL redirects to a storage URL that serves the bytes.
type fakeRelease struct {
	URL  string // the mirror base
	Bin  []byte
	Sums string

	// binary, when set, replaces the storage handler of the binary.
	binary http.HandlerFunc
	// sums, when set, replaces the handler of the checksum file.
	sums http.HandlerFunc
	// quit ends handlers that block, when the test ends.
	quit chan struct{}

	mu        sync.Mutex
	binHits   int
	sumHits   int
	ranges    []string
	uris      []string
	servedBin int64
}

func newRelease(t *testing.T) *fakeRelease {
	t.Helper()
	bin := make([]byte, 1<<20+12345)
	if _, err := rand.Read(bin); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(bin)
	f := &fakeRelease{
		Bin: bin,
		Sums: strings.Join([]string{
			strings.Repeat("ab", 32) + "  k3s-airgap-images-amd64.tar.zst",
			hex.EncodeToString(sum[:]) + "  k3s",
			strings.Repeat("cd", 32) + "  k3s-images.txt",
		}, "\n") + "\n",
		quit: make(chan struct{}),
	}
	srv := httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(f.quit) }) // runs before srv.Close, which waits for handlers
	f.URL = srv.URL + "/mirror"
	return f
}

func (f *fakeRelease) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.uris = append(f.uris, r.RequestURI)
	f.mu.Unlock()
	switch r.URL.Path {
	case "/mirror/" + testTag + "/sha256sum-amd64.txt":
		f.mu.Lock()
		f.sumHits++
		f.mu.Unlock()
		if f.sums != nil {
			f.sums(w, r)
			return
		}
		_, _ = w.Write([]byte(f.Sums))
	case "/mirror/" + testTag + "/k3s":
		http.Redirect(w, r, "/storage/k3s?sig=x", http.StatusFound)
	case "/storage/k3s":
		f.mu.Lock()
		f.binHits++
		f.ranges = append(f.ranges, r.Header.Get("Range"))
		f.mu.Unlock()
		cw := &countingWriter{ResponseWriter: w}
		if f.binary != nil {
			f.binary(cw, r)
		} else {
			http.ServeContent(cw, r, "k3s", time.Time{}, bytes.NewReader(f.Bin))
		}
		f.mu.Lock()
		f.servedBin += cw.n
		f.mu.Unlock()
	default:
		http.NotFound(w, r)
	}
}

type countingWriter struct {
	http.ResponseWriter
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.ResponseWriter.Write(p)
	c.n += int64(n)
	return n, err
}

func (c *countingWriter) Flush() { c.ResponseWriter.(http.Flusher).Flush() }

func (f *fakeRelease) stats() (binHits, sumHits int, ranges []string, served int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.binHits, f.sumHits, append([]string(nil), f.ranges...), f.servedBin
}

func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// newResolver points at f and at an empty PATH, so a k3s installed on the
// test machine is never found.
func newResolver(t *testing.T, f *fakeRelease, cache string) *Resolver {
	t.Helper()
	return &Resolver{
		Getenv:       envOf(map[string]string{EnvMirror: f.URL, "PATH": t.TempDir()}),
		CacheDir:     cache,
		Client:       loopbackClient(t),
		StallTimeout: 10 * time.Second,
		Arch:         "amd64",
	}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func cachePath(cache string) string { return filepath.Join(cache, "k3s", testTag, "amd64", "k3s") }

func checkInstalled(t *testing.T, f *fakeRelease, path string) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, f.Bin) {
		t.Fatalf("%s: %d bytes differ from the release's %d", path, len(got), len(f.Bin))
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm()&0o111 == 0 {
		t.Fatalf("%s is not executable: %s", path, fi.Mode())
	}
	if _, err := os.Stat(path + ".part"); !os.IsNotExist(err) {
		t.Fatalf("%s.part left behind: %v", path, err)
	}
}

func TestDownloadThenCache(t *testing.T) {
	f := newRelease(t)
	cache := t.TempDir()
	r := newResolver(t, f, cache)
	var mu sync.Mutex
	var seen []Progress
	var at []time.Time
	r.Progress = func(p Progress) {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, p)
		at = append(at, time.Now())
	}
	path, source, err := r.Resolve(testCtx(t), testTag)
	if err != nil {
		t.Fatal(err)
	}
	if source != SourceDownload || path != cachePath(cache) {
		t.Fatalf("Resolve = %s, %s; want %s, download", path, source, cachePath(cache))
	}
	checkInstalled(t, f, path)

	f.mu.Lock()
	uris := strings.Join(f.uris, " ")
	f.mu.Unlock()
	if !strings.Contains(uris, "/v1.32.11%2Bk3s3/k3s") || !strings.Contains(uris, "/v1.32.11%2Bk3s3/sha256sum-amd64.txt") {
		t.Errorf("the tag's + was not sent as %%2B: %s", uris)
	}

	mu.Lock()
	if len(seen) < 2 {
		t.Fatalf("progress = %+v, want a start and an end", seen)
	}
	first, last := seen[0], seen[len(seen)-1]
	want := int64(len(f.Bin))
	if first.Done != 0 || last.Done != want || last.Total != want || last.URL != f.URL+"/v1.32.11%2Bk3s3/k3s" {
		t.Errorf("progress = %+v, want 0 → %d of %d for the asset URL", seen, want, want)
	}
	for i := 1; i < len(seen)-1; i++ {
		if gap := at[i].Sub(at[i-1]); gap < ProgressInterval || seen[i].Done < seen[i-1].Done {
			t.Errorf("progress %d came %s after the previous one (%+v)", i, gap, seen)
		}
	}
	mu.Unlock()

	// A second daemon with the same cache must not touch the network.
	binHits, sumHits, _, _ := f.stats()
	path2, source2, err := newResolver(t, f, cache).Resolve(testCtx(t), testTag)
	if err != nil || path2 != path || source2 != SourceCache {
		t.Fatalf("second Resolve = %s, %s, %v; want %s from the cache", path2, source2, err, path)
	}
	if b, s, _, _ := f.stats(); b != binHits || s != sumHits {
		t.Fatalf("second Resolve hit the server: binary %d→%d, sums %d→%d", binHits, b, sumHits, s)
	}
}

func TestChecksumMismatch(t *testing.T) {
	f := newRelease(t)
	f.Sums = strings.Repeat("0", 64) + "  k3s\n"
	cache := t.TempDir()
	_, _, err := newResolver(t, f, cache).Resolve(testCtx(t), testTag)
	var ie *InstallError
	var ce *ChecksumError
	if !errors.As(err, &ie) || !errors.As(err, &ce) {
		t.Fatalf("err = %v, want an *InstallError wrapping a *ChecksumError", err)
	}
	sum := sha256.Sum256(f.Bin)
	got := hex.EncodeToString(sum[:])
	if ce.Want != strings.Repeat("0", 64) || ce.Got != got {
		t.Errorf("ChecksumError = %+v, want %s vs %s", ce, ce.Want, got)
	}
	if msg := err.Error(); !strings.Contains(msg, ce.Want) || !strings.Contains(msg, got) {
		t.Errorf("message does not give both sums: %s", msg)
	}
	for _, p := range []string{cachePath(cache), cachePath(cache) + ".part"} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s exists after a mismatch: %v", p, err)
		}
	}
}

func TestTruncatedThenResumed(t *testing.T) {
	f := newRelease(t)
	half := len(f.Bin) / 2
	f.binary = func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(len(f.Bin)))
		_, _ = w.Write(f.Bin[:half])
	}
	cache := t.TempDir()
	_, _, err := newResolver(t, f, cache).Resolve(testCtx(t), testTag)
	var ie *InstallError
	if !errors.As(err, &ie) || !errors.Is(err, ErrTruncated) {
		t.Fatalf("err = %v, want an *InstallError wrapping ErrTruncated", err)
	}
	if fi, err := os.Stat(cachePath(cache) + ".part"); err != nil || fi.Size() != int64(half) {
		t.Fatalf("the partial file should hold the %d bytes received: %v %v", half, fi, err)
	}

	f.mu.Lock()
	f.binary = nil
	f.mu.Unlock()
	r := newResolver(t, f, cache)
	var firstDone int64 = -1
	r.Progress = func(p Progress) {
		if firstDone < 0 {
			firstDone = p.Done
		}
	}
	path, source, err := r.Resolve(testCtx(t), testTag)
	if err != nil || source != SourceDownload {
		t.Fatalf("resume: %s %s %v", path, source, err)
	}
	checkInstalled(t, f, path)
	_, _, ranges, served := f.stats()
	if want := fmt.Sprintf("bytes=%d-", half); ranges[len(ranges)-1] != want {
		t.Errorf("Range = %q, want %q", ranges[len(ranges)-1], want)
	}
	if served != int64(len(f.Bin)) { // half the first time, the other half now
		t.Errorf("the server sent %d bytes in all, want %d", served, len(f.Bin))
	}
	if firstDone != int64(half) {
		t.Errorf("first progress Done = %d, want %d", firstDone, half)
	}
}

func TestResumeFromPart(t *testing.T) {
	f := newRelease(t)
	cache := t.TempDir()
	third := len(f.Bin) / 3
	writePart(t, cache, f.Bin[:third])
	path, _, err := newResolver(t, f, cache).Resolve(testCtx(t), testTag)
	if err != nil {
		t.Fatal(err)
	}
	checkInstalled(t, f, path)
	if _, _, ranges, served := f.stats(); len(ranges) != 1 || served != int64(len(f.Bin)-third) {
		t.Errorf("ranges %q, served %d; want one ranged request for the last %d bytes", ranges, served, len(f.Bin)-third)
	}
}

func TestServerIgnoresRange(t *testing.T) {
	f := newRelease(t)
	f.binary = func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(len(f.Bin)))
		_, _ = w.Write(f.Bin)
	}
	cache := t.TempDir()
	writePart(t, cache, bytes.Repeat([]byte{'x'}, 1000))
	path, _, err := newResolver(t, f, cache).Resolve(testCtx(t), testTag)
	if err != nil {
		t.Fatal(err)
	}
	checkInstalled(t, f, path)
	if _, _, ranges, _ := f.stats(); len(ranges) != 1 || ranges[0] != "bytes=1000-" {
		t.Errorf("ranges = %q, want one request from byte 1000", ranges)
	}
}

// A kept prefix that does not belong to the release (an earlier build of
// the tag, a damaged disk) fails the checksum; one clean download fixes it.
func TestBadPrefixDownloadedAgain(t *testing.T) {
	f := newRelease(t)
	cache := t.TempDir()
	writePart(t, cache, bytes.Repeat([]byte{'x'}, 1000))
	path, _, err := newResolver(t, f, cache).Resolve(testCtx(t), testTag)
	if err != nil {
		t.Fatal(err)
	}
	checkInstalled(t, f, path)
	if _, _, ranges, _ := f.stats(); len(ranges) != 2 || ranges[0] != "bytes=1000-" || ranges[1] != "" {
		t.Errorf("ranges = %q, want a resume and then a whole download", ranges)
	}
}

// A .part exactly as long as the file is what a crash between the last byte
// and the rename leaves; the server answers 416 and the file is used as is.
func TestCompletePart(t *testing.T) {
	f := newRelease(t)
	cache := t.TempDir()
	writePart(t, cache, f.Bin)
	path, _, err := newResolver(t, f, cache).Resolve(testCtx(t), testTag)
	if err != nil {
		t.Fatal(err)
	}
	checkInstalled(t, f, path)
	// ServeContent's 416 carries a line of text, not the binary.
	if _, _, ranges, served := f.stats(); len(ranges) != 1 || served > 100 {
		t.Errorf("ranges %q, served %d bytes for a complete part", ranges, served)
	}
}

func writePart(t *testing.T, cache string, data []byte) {
	t.Helper()
	p := cachePath(cache) + ".part"
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestNotFound(t *testing.T) {
	t.Run("binary", func(t *testing.T) {
		f := newRelease(t)
		f.binary = http.NotFound
		_, _, err := newResolver(t, f, t.TempDir()).Resolve(testCtx(t), testTag)
		checkStatus(t, err, f.URL+"/v1.32.11%2Bk3s3/k3s", http.StatusNotFound)
	})
	t.Run("checksum file", func(t *testing.T) {
		f := newRelease(t)
		f.sums = http.NotFound
		_, _, err := newResolver(t, f, t.TempDir()).Resolve(testCtx(t), testTag)
		checkStatus(t, err, f.URL+"/v1.32.11%2Bk3s3/sha256sum-amd64.txt", http.StatusNotFound)
		if b, _, _, _ := f.stats(); b != 0 {
			t.Errorf("the binary was fetched although its checksum is missing")
		}
	})
	t.Run("no line for the binary", func(t *testing.T) {
		f := newRelease(t)
		f.Sums = strings.Repeat("ab", 32) + "  k3s-arm64\n"
		_, _, err := newResolver(t, f, t.TempDir()).Resolve(testCtx(t), testTag)
		if !errors.Is(err, ErrNoChecksum) {
			t.Fatalf("err = %v, want ErrNoChecksum", err)
		}
	})
}

func checkStatus(t *testing.T, err error, url string, code int) {
	t.Helper()
	var ie *InstallError
	var se *StatusError
	if !errors.As(err, &ie) || !errors.As(err, &se) || se.StatusCode != code {
		t.Fatalf("err = %v, want an *InstallError with HTTP %d", err, code)
	}
	if ie.URL != url {
		t.Errorf("URL = %s, want %s", ie.URL, url)
	}
}

// The message is what the user sees in KubernetesReady: it must name what
// failed and both ways out.
func TestErrorMessage(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mirror := "http://" + ln.Addr().String() + "/m"
	ln.Close() // offline: nothing listens there any more
	r := &Resolver{
		Getenv:   envOf(map[string]string{EnvMirror: mirror, "PATH": t.TempDir()}),
		CacheDir: t.TempDir(),
		Client:   loopbackClient(t),
		Arch:     "amd64",
	}
	_, _, err = r.Resolve(testCtx(t), testTag)
	var ie *InstallError
	if !errors.As(err, &ie) {
		t.Fatalf("err = %v, want an *InstallError", err)
	}
	msg := err.Error()
	for _, want := range []string{
		mirror + "/v1.32.11%2Bk3s3/sha256sum-amd64.txt",
		"RDD_K3S_BIN", "RDD_K3S_MIRROR",
		testTag + "/k3s", testTag + "/sha256sum-amd64.txt",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("message lacks %q: %s", want, msg)
		}
	}
}

func TestStall(t *testing.T) {
	t.Run("body", func(t *testing.T) {
		f := newRelease(t)
		f.binary = func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", fmt.Sprint(len(f.Bin)))
			_, _ = w.Write(f.Bin[:1000])
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
			case <-f.quit:
			}
		}
		r := newResolver(t, f, t.TempDir())
		r.StallTimeout = 50 * time.Millisecond
		_, _, err := r.Resolve(testCtx(t), testTag)
		var ie *InstallError
		if !errors.As(err, &ie) || !errors.Is(err, ErrStalled) {
			t.Fatalf("err = %v, want an *InstallError wrapping ErrStalled", err)
		}
	})
	t.Run("headers", func(t *testing.T) {
		f := newRelease(t)
		f.sums = func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-f.quit:
			}
		}
		r := newResolver(t, f, t.TempDir())
		r.StallTimeout = 50 * time.Millisecond
		_, _, err := r.Resolve(testCtx(t), testTag)
		if !errors.Is(err, ErrStalled) {
			t.Fatalf("err = %v, want ErrStalled", err)
		}
	})
}

func TestCancel(t *testing.T) {
	t.Run("download", func(t *testing.T) {
		f := newRelease(t)
		started := make(chan struct{})
		f.binary = func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", fmt.Sprint(len(f.Bin)))
			_, _ = w.Write(f.Bin[:1000])
			w.(http.Flusher).Flush()
			close(started)
			select {
			case <-r.Context().Done():
			case <-f.quit:
			}
		}
		ctx, cancel := context.WithCancel(testCtx(t))
		go func() {
			<-started
			cancel()
		}()
		_, _, err := newResolver(t, f, t.TempDir()).Resolve(ctx, testTag)
		var ie *InstallError
		if !errors.Is(err, context.Canceled) || errors.As(err, &ie) {
			t.Fatalf("err = %v, want context.Canceled and no install advice", err)
		}
	})
	t.Run("waiting for the lock", func(t *testing.T) {
		f := newRelease(t)
		cache := t.TempDir()
		dir := filepath.Dir(cachePath(cache))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		unlock, err := lockDir(testCtx(t), filepath.Join(dir, ".lock"), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer unlock()
		ctx, cancel := context.WithCancel(testCtx(t))
		r := newResolver(t, f, cache)
		r.onLockWait = cancel
		if _, _, err := r.Resolve(ctx, testTag); !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	})
}

// Two daemons resolving one tag: one downloads, the other waits for the lock
// and then takes the binary from the cache.
func TestConcurrentResolves(t *testing.T) {
	f := newRelease(t)
	waiting := make(chan struct{})
	var once sync.Once
	f.binary = func(w http.ResponseWriter, r *http.Request) {
		// Hold the download until the other resolver is blocked on the lock.
		select {
		case <-waiting:
		case <-r.Context().Done():
			return
		}
		http.ServeContent(w, r, "k3s", time.Time{}, bytes.NewReader(f.Bin))
	}
	cache := t.TempDir()
	type result struct{ path, source string }
	results := make(chan result, 2)
	errs := make(chan error, 2)
	for range 2 {
		r := newResolver(t, f, cache)
		r.onLockWait = func() { once.Do(func() { close(waiting) }) }
		go func() {
			p, s, err := r.Resolve(testCtx(t), testTag)
			errs <- err
			results <- result{p, s}
		}()
	}
	sources := map[string]int{}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
		res := <-results
		if res.path != cachePath(cache) {
			t.Errorf("path = %s, want %s", res.path, cachePath(cache))
		}
		sources[res.source]++
	}
	if sources[SourceDownload] != 1 || sources[SourceCache] != 1 {
		t.Errorf("sources = %v, want one download and one cache", sources)
	}
	if b, _, _, _ := f.stats(); b != 1 {
		t.Errorf("binary fetched %d times, want once", b)
	}
	checkInstalled(t, f, cachePath(cache))
}

func writeExe(t *testing.T, dir string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, "k3s")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil { // umask may have cleared bits
		t.Fatal(err)
	}
	return p
}

// noServer fails the test on any request: the local sources must win
// without the network.
func noServer(t *testing.T) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("unexpected request %s", r.URL)
		http.NotFound(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestEnvBin(t *testing.T) {
	pathDir := t.TempDir()
	writeExe(t, pathDir, 0o755)
	good := writeExe(t, t.TempDir(), 0o755)
	plain := writeExe(t, t.TempDir(), 0o644)
	mirror := noServer(t)
	resolve := func(bin string) (string, string, error) {
		r := &Resolver{
			Getenv:   envOf(map[string]string{EnvBin: bin, EnvMirror: mirror, "PATH": pathDir}),
			CacheDir: t.TempDir(),
			Client:   loopbackClient(t),
		}
		return r.Resolve(testCtx(t), testTag)
	}
	if p, s, err := resolve(good); err != nil || p != good || s != SourceEnv {
		t.Fatalf("RDD_K3S_BIN=%s: %s %s %v", good, p, s, err)
	}
	for _, bad := range []string{plain, filepath.Join(t.TempDir(), "missing"), t.TempDir()} {
		_, _, err := resolve(bad)
		if err == nil || !strings.Contains(err.Error(), "RDD_K3S_BIN="+bad) {
			t.Errorf("RDD_K3S_BIN=%s: err = %v, want an error naming the variable and its value", bad, err)
		}
	}
}

func TestPathLookup(t *testing.T) {
	notExec := t.TempDir()
	writeExe(t, notExec, 0o644)
	dir := t.TempDir()
	want := writeExe(t, dir, 0o755)
	r := &Resolver{
		Getenv:   envOf(map[string]string{EnvMirror: noServer(t), "PATH": strings.Join([]string{"", "relative", t.TempDir(), notExec, dir}, string(filepath.ListSeparator))}),
		CacheDir: t.TempDir(),
		Client:   loopbackClient(t),
	}
	p, s, err := r.Resolve(testCtx(t), testTag)
	if err != nil || p != want || s != SourcePath {
		t.Fatalf("Resolve = %s, %s, %v; want %s from PATH", p, s, err, want)
	}
}

func TestURLs(t *testing.T) {
	var r Resolver
	rel, err := r.urls("", testTag, "amd64")
	if err != nil {
		t.Fatal(err)
	}
	// Composed only, never fetched.
	if rel.Binary != DefaultMirror+"/v1.32.11%2Bk3s3/k3s" || rel.Sums != DefaultMirror+"/v1.32.11%2Bk3s3/sha256sum-amd64.txt" {
		t.Errorf("default URLs = %s, %s", rel.Binary, rel.Sums)
	}
	rel, err = r.urls("http://127.0.0.1:1/k3s/", testTag, "arm64")
	if err != nil {
		t.Fatal(err)
	}
	if rel.Binary != "http://127.0.0.1:1/k3s/v1.32.11%2Bk3s3/k3s-arm64" || rel.Sums != "http://127.0.0.1:1/k3s/v1.32.11%2Bk3s3/sha256sum-arm64.txt" {
		t.Errorf("arm64 mirror URLs = %s, %s", rel.Binary, rel.Sums)
	}
	for _, m := range []string{"file:///srv/k3s", "127.0.0.1/k3s", "http://"} {
		if _, err := r.urls(m, testTag, "amd64"); err == nil || !strings.Contains(err.Error(), "RDD_K3S_MIRROR") {
			t.Errorf("mirror %q: err = %v, want one naming RDD_K3S_MIRROR", m, err)
		}
	}
	if _, err := r.urls("", testTag, "mips"); err == nil || !strings.Contains(err.Error(), "RDD_K3S_BIN") {
		t.Errorf("mips: err = %v", err)
	}
}

func TestBadTag(t *testing.T) {
	r := &Resolver{Getenv: envOf(map[string]string{EnvMirror: noServer(t), "PATH": t.TempDir()}), CacheDir: t.TempDir(), Client: loopbackClient(t)}
	for _, tag := range []string{"", "..", "../../etc", "v1/2", ".hidden"} {
		if _, _, err := r.Resolve(testCtx(t), tag); err == nil {
			t.Errorf("tag %q accepted", tag)
		}
	}
}

func TestParseSums(t *testing.T) {
	a, b := strings.Repeat("ab", 32), strings.Repeat("CD", 32)
	data := []byte(a + "  k3s-arm64\n" + b + " *k3s\nnonsense\n" + "12  k3s-airgap\n")
	if s, ok := parseSums(data, "k3s"); !ok || s != strings.ToLower(b) {
		t.Errorf("k3s: %s %v", s, ok)
	}
	if s, ok := parseSums(data, "k3s-arm64"); !ok || s != a {
		t.Errorf("k3s-arm64: %s %v", s, ok)
	}
	if _, ok := parseSums(data, "k3s-airgap"); ok {
		t.Errorf("a short sum was accepted")
	}
}

func TestParseContentRange(t *testing.T) {
	for _, tc := range []struct {
		h           string
		start, size int64
		ok          bool
	}{
		{"bytes 100-199/200", 100, 200, true},
		{"bytes 0-9/*", 0, -1, true},
		{"bytes */200", -1, 200, true},
		{"items 0-9/10", 0, -1, false},
		{"bytes 5/10", 0, 10, false},
		{"", 0, -1, false},
	} {
		start, size, ok := parseContentRange(tc.h)
		if start != tc.start || size != tc.size || ok != tc.ok {
			t.Errorf("%q = %d %d %v, want %d %d %v", tc.h, start, size, ok, tc.start, tc.size, tc.ok)
		}
	}
}
