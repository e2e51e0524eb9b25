package k3sbin

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Errors an *InstallError may wrap, for errors.Is.
var (
	ErrStalled    = errors.New("download stalled")
	ErrTruncated  = errors.New("download truncated")
	ErrNoChecksum = errors.New("no checksum for the binary")
)

// InstallError is a failed download: URL is the address that failed, Err why.
// Its message tells the user how to get k3s some other way.
type InstallError struct {
	URL  string
	Tag  string
	Arch string
	Err  error
}

func (e *InstallError) Error() string {
	asset, sums, _ := assetNames(e.Arch)
	if asset == "" {
		asset, sums = "k3s", "sha256sum-"+e.Arch+".txt"
	}
	return fmt.Sprintf("cannot install k3s %s from %s: %v; set %s to a k3s binary, or %s to a mirror that serves %s/%s and %s/%s",
		e.Tag, e.URL, e.Err, EnvBin, EnvMirror, e.Tag, asset, e.Tag, sums)
}

func (e *InstallError) Unwrap() error { return e.Err }

// StatusError is an HTTP answer other than the one asked for.
type StatusError struct {
	StatusCode int
	Status     string
}

func (e *StatusError) Error() string { return "HTTP " + e.Status }

// ChecksumError is a downloaded binary whose SHA-256 is not the published one.
// The file has been deleted by the time it is returned.
type ChecksumError struct {
	SumsURL string
	Want    string
	Got     string
}

func (e *ChecksumError) Error() string {
	return fmt.Sprintf("checksum mismatch: %s says sha256 %s, the downloaded file has %s (deleted it)", e.SumsURL, e.Want, e.Got)
}

// release is where one tag's assets are for one arch.
type release struct {
	Tag, Arch string
	Asset     string // file name in the release: k3s, k3s-arm64, …
	Binary    string // URL of Asset
	Sums      string // URL of the sha256sum-<arch>.txt file
}

// assetNames follows k3s's install.sh: the amd64 binary has no suffix.
func assetNames(arch string) (asset, sums string, ok bool) {
	switch arch {
	case "amd64":
		return "k3s", "sha256sum-amd64.txt", true
	case "arm64":
		return "k3s-arm64", "sha256sum-arm64.txt", true
	case "arm":
		return "k3s-armhf", "sha256sum-arm.txt", true
	case "s390x":
		return "k3s-s390x", "sha256sum-s390x.txt", true
	}
	return "", "", false
}

func (r *Resolver) urls(mirror, tag, arch string) (release, error) {
	asset, sums, ok := assetNames(arch)
	if !ok {
		return release{}, fmt.Errorf("k3s publishes no binary for %s: set %s to a k3s binary", arch, EnvBin)
	}
	base := DefaultMirror
	if mirror != "" {
		u, err := url.Parse(mirror)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return release{}, fmt.Errorf("%s=%s is not an http(s) URL: point it at a mirror that serves %s/%s and %s/%s", EnvMirror, mirror, tag, asset, tag, sums)
		}
		base = strings.TrimRight(mirror, "/")
	}
	// PathEscape leaves "+" alone, but GitHub's release storage reads a bare
	// "+" in the tag as a space.
	dir := base + "/" + strings.ReplaceAll(url.PathEscape(tag), "+", "%2B") + "/"
	return release{Tag: tag, Arch: arch, Asset: asset, Binary: dir + asset, Sums: dir + sums}, nil
}

// install downloads rel into final. It holds the cache lock.
func (r *Resolver) install(ctx context.Context, rel release, final string) error {
	want, err := r.fetchSum(ctx, rel)
	if err != nil {
		return err
	}
	part := final + ".part"
	resumed, err := r.download(ctx, rel, part)
	if err != nil {
		return err
	}
	got, err := sumFile(part)
	if err != nil {
		return err
	}
	if got != want && resumed {
		// The kept prefix may be from an earlier build of the tag or damaged;
		// only a clean download can tell that from a bad release.
		if err := os.Remove(part); err != nil {
			return fmt.Errorf("k3s: remove %s: %w", part, err)
		}
		if _, err := r.download(ctx, rel, part); err != nil {
			return err
		}
		if got, err = sumFile(part); err != nil {
			return err
		}
	}
	if got != want {
		if err := os.Remove(part); err != nil {
			return fmt.Errorf("k3s: remove %s after a checksum mismatch: %w", part, err)
		}
		return &InstallError{URL: rel.Binary, Tag: rel.Tag, Arch: rel.Arch, Err: &ChecksumError{SumsURL: rel.Sums, Want: want, Got: got}}
	}
	if err := os.Chmod(part, 0o755); err != nil {
		return fmt.Errorf("k3s: %w", err)
	}
	if err := os.Rename(part, final); err != nil {
		return fmt.Errorf("k3s: %w", err)
	}
	// Without it a crash could leave the rename unrecorded while the lock
	// holder's successors already trust the cache.
	if d, err := os.Open(filepath.Dir(final)); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}

// fail turns a transfer error into what Resolve returns: the caller's own
// cancellation stays recognisable, anything else says what to do.
func fail(ctx context.Context, rel release, u string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("k3s: download %s: %w", u, ctx.Err())
	}
	return &InstallError{URL: u, Tag: rel.Tag, Arch: rel.Arch, Err: err}
}

func (r *Resolver) fetchSum(ctx context.Context, rel release) (string, error) {
	wd := newWatchdog(ctx, r.stallTimeout())
	defer wd.stop()
	req, err := http.NewRequestWithContext(wd.ctx, http.MethodGet, rel.Sums, nil)
	if err != nil {
		return "", fail(ctx, rel, rel.Sums, err)
	}
	resp, err := r.client().Do(req)
	if err != nil {
		return "", fail(ctx, rel, rel.Sums, wd.explain(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fail(ctx, rel, rel.Sums, &StatusError{StatusCode: resp.StatusCode, Status: resp.Status})
	}
	// A checksum file lists a few dozen assets; a limit keeps a misbehaving
	// mirror from filling memory.
	data, err := io.ReadAll(io.LimitReader(stallReader{resp.Body, wd}, 1<<20))
	if err != nil {
		return "", fail(ctx, rel, rel.Sums, wd.explain(err))
	}
	want, ok := parseSums(data, rel.Asset)
	if !ok {
		return "", fail(ctx, rel, rel.Sums, fmt.Errorf("%w: no line for %s", ErrNoChecksum, rel.Asset))
	}
	return want, nil
}

// parseSums reads sha256sum output ("<hex>  <name>", "*" marking binary mode).
func parseSums(data []byte, asset string) (string, bool) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 2 || strings.TrimPrefix(f[1], "*") != asset {
			continue
		}
		sum := strings.ToLower(f[0])
		if b, err := hex.DecodeString(sum); err == nil && len(b) == sha256.Size {
			return sum, true
		}
	}
	return "", false
}

func sumFile(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", fmt.Errorf("k3s: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("k3s: read %s: %w", p, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// download fetches rel.Binary into part, continuing what part already holds
// when the server honours Range. resumed reports that a kept prefix is part
// of the result.
func (r *Resolver) download(ctx context.Context, rel release, part string) (resumed bool, err error) {
	f, err := os.OpenFile(part, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return false, fmt.Errorf("k3s: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return false, fmt.Errorf("k3s: %w", err)
	}
	off := fi.Size()
	wd := newWatchdog(ctx, r.stallTimeout())
	defer wd.stop()
	for {
		req, err := http.NewRequestWithContext(wd.ctx, http.MethodGet, rel.Binary, nil)
		if err != nil {
			return false, fail(ctx, rel, rel.Binary, err)
		}
		if off > 0 {
			req.Header.Set("Range", fmt.Sprintf("bytes=%d-", off))
		}
		resp, err := r.client().Do(req)
		if err != nil {
			return false, fail(ctx, rel, rel.Binary, wd.explain(err))
		}
		total, restart := int64(-1), false
		switch resp.StatusCode {
		case http.StatusOK:
			// The server ignored Range (or none was sent): it starts at zero.
			off, total = 0, resp.ContentLength
		case http.StatusPartialContent:
			start, size, ok := parseContentRange(resp.Header.Get("Content-Range"))
			restart = !ok || start != off
			total = size
		case http.StatusRequestedRangeNotSatisfiable:
			// part is at least as long as the file: complete if exactly as
			// long, since a crash can come between the last byte and the rename.
			_, size, _ := parseContentRange(resp.Header.Get("Content-Range"))
			resp.Body.Close()
			if off > 0 && size == off {
				return true, nil
			}
			restart = true
		default:
			resp.Body.Close()
			return false, fail(ctx, rel, rel.Binary, &StatusError{StatusCode: resp.StatusCode, Status: resp.Status})
		}
		if restart {
			resp.Body.Close()
			if off == 0 {
				return false, fail(ctx, rel, rel.Binary, fmt.Errorf("server answered a plain GET with %s", resp.Status))
			}
			off = 0
			continue
		}
		resumed, err = r.copyBody(ctx, rel, f, resp, off, total, wd)
		resp.Body.Close()
		return resumed, err
	}
}

func (r *Resolver) copyBody(ctx context.Context, rel release, f *os.File, resp *http.Response, off, total int64, wd *watchdog) (bool, error) {
	if err := f.Truncate(off); err != nil {
		return false, fmt.Errorf("k3s: %w", err)
	}
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return false, fmt.Errorf("k3s: %w", err)
	}
	done := off
	r.report(Progress{URL: rel.Binary, Done: done, Total: total})
	last := time.Now()
	buf := make([]byte, 256<<10)
	body := stallReader{resp.Body, wd}
	for {
		n, rerr := body.Read(buf)
		if n > 0 {
			if _, err := f.Write(buf[:n]); err != nil {
				return false, fmt.Errorf("k3s: write %s: %w", f.Name(), err)
			}
			done += int64(n)
			if now := time.Now(); now.Sub(last) >= ProgressInterval {
				r.report(Progress{URL: rel.Binary, Done: done, Total: total})
				last = now
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			err := wd.explain(rerr)
			if errors.Is(rerr, io.ErrUnexpectedEOF) && !errors.Is(err, ErrStalled) {
				err = fmt.Errorf("%w: got %d of %d bytes; the next attempt resumes from there", ErrTruncated, done, total)
			}
			return false, fail(ctx, rel, rel.Binary, err)
		}
	}
	if total >= 0 && done < total {
		return false, fail(ctx, rel, rel.Binary, fmt.Errorf("%w: got %d of %d bytes; the next attempt resumes from there", ErrTruncated, done, total))
	}
	if err := f.Sync(); err != nil {
		return false, fmt.Errorf("k3s: %w", err)
	}
	if total < 0 {
		total = done
	}
	r.report(Progress{URL: rel.Binary, Done: done, Total: total})
	return off > 0, nil
}

func (r *Resolver) report(p Progress) {
	if r.Progress != nil {
		r.Progress(p)
	}
}

// parseContentRange reads "bytes first-last/size" and "bytes */size"; size is
// -1 when given as "*".
func parseContentRange(h string) (start, size int64, ok bool) {
	rest, found := strings.CutPrefix(h, "bytes ")
	if !found {
		return 0, -1, false
	}
	rng, sz, found := strings.Cut(rest, "/")
	if !found {
		return 0, -1, false
	}
	size = -1
	if sz != "*" {
		n, err := strconv.ParseInt(sz, 10, 64)
		if err != nil || n < 0 {
			return 0, -1, false
		}
		size = n
	}
	if rng == "*" {
		return -1, size, true
	}
	first, _, found := strings.Cut(rng, "-")
	if !found {
		return 0, size, false
	}
	n, err := strconv.ParseInt(first, 10, 64)
	if err != nil || n < 0 {
		return 0, size, false
	}
	return n, size, true
}

// watchdog cancels a transfer that receives nothing for d: a per-read
// deadline the http.Client has no setting for.
type watchdog struct {
	ctx    context.Context
	cancel context.CancelCauseFunc
	timer  *time.Timer
	d      time.Duration
}

func newWatchdog(parent context.Context, d time.Duration) *watchdog {
	ctx, cancel := context.WithCancelCause(parent)
	w := &watchdog{ctx: ctx, cancel: cancel, d: d}
	w.timer = time.AfterFunc(d, func() { cancel(fmt.Errorf("%w: nothing received for %s", ErrStalled, d)) })
	return w
}

func (w *watchdog) kick() { w.timer.Reset(w.d) }

func (w *watchdog) stop() {
	w.timer.Stop()
	w.cancel(nil)
}

// explain replaces the transport's "context canceled" by the stall, when
// that is what cancelled it.
func (w *watchdog) explain(err error) error {
	if c := context.Cause(w.ctx); errors.Is(c, ErrStalled) {
		return c
	}
	return err
}

type stallReader struct {
	r  io.Reader
	wd *watchdog
}

func (s stallReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if n > 0 {
		s.wd.kick()
	}
	return n, err
}
