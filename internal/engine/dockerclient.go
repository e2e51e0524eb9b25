package engine

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
)

// API versions the client speaks (see negotiateAPIVersion).
const (
	// minAPIVersion is the oldest: dockerd 20.10's (Debian 12). Requests
	// use it until NegotiateAPIVersionPing is called.
	minAPIVersion = "1.41"
	// maxAPIVersion is the newest API version dockertypes.go was checked
	// against.
	maxAPIVersion = "1.47"
)

// unixHost is the URL host (and Host header) of requests over a Unix
// socket, the one Docker's own client sends.
const unixHost = "api.moby.localhost"

// maxErrorBody bounds how much of an error answer is read.
const maxErrorBody = 1 << 20

// dockerClient is a minimal Docker Engine API client: exactly the calls of
// dockerAPI, as plain GET requests over net/http, decoded into the wire
// types of dockertypes.go. It replaces Docker's client package, whose
// dependencies (github.com/distribution/reference, and go-digest through
// Docker's types packages) compile regular expressions at init and slow
// every rdd command's start.
//
// Errors: a failed dial is a *connectError that keeps the net error (and
// so errors.Is(err, syscall.ECONNREFUSED) works); a non-2xx answer is an
// *apiError with the status and the daemon's message, matching the
// containerd errdefs class of its status (cerrdefs.IsNotFound for 404), as
// Docker's client does; other transport errors are the *url.Error of
// net/http. Context errors can be tested with errors.Is.
//
// A dockerClient is safe for concurrent use. The Events goroutine is owned
// by the caller's ctx.
type dockerClient struct {
	host     string // the endpoint as given, for error messages
	scheme   string // "http" or "https"
	addr     string // URL host: unixHost, or host:port for TCP
	basePath string // path prefix of a tcp://host:port/prefix endpoint
	tr       *http.Transport
	hc       *http.Client

	mu      sync.Mutex
	version string // negotiated API version; guarded by mu
}

var _ dockerAPI = (*dockerClient)(nil)

// newDockerClient returns a client for host: "unix:///path/docker.sock"
// or "tcp://host:port" (HTTPS when tlsCfg is not nil; tlsCfg is ignored
// for Unix sockets). Nothing is dialed until the first request. Requests
// do not go through a proxy.
func newDockerClient(host string, tlsCfg *tls.Config) (*dockerClient, error) {
	proto, addr, ok := strings.Cut(host, "://")
	if !ok || addr == "" {
		return nil, fmt.Errorf("parse docker host %q: want unix:///path or tcp://host:port", host)
	}
	c := &dockerClient{host: host, scheme: "http", version: minAPIVersion}
	c.tr = &http.Transport{MaxIdleConns: 6, IdleConnTimeout: 30 * time.Second}
	switch proto {
	case "unix":
		var d net.Dialer
		c.addr = unixHost
		c.tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, "unix", addr)
		}
	case "tcp":
		u, err := url.Parse("tcp://" + addr)
		if err != nil {
			return nil, fmt.Errorf("parse docker host %q: %w", host, err)
		}
		if u.Port() == "" {
			return nil, fmt.Errorf("parse docker host %q: no port", host)
		}
		c.addr, c.basePath = u.Host, strings.TrimSuffix(u.Path, "/")
		if tlsCfg != nil {
			c.scheme = "https"
			c.tr.TLSClientConfig = tlsCfg
		}
	default:
		return nil, fmt.Errorf("parse docker host %q: unsupported scheme %q (want unix or tcp)", host, proto)
	}
	c.hc = &http.Client{
		Transport: c.tr,
		// The API does not redirect; a 3xx is reported as an apiError.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return c, nil
}

// dialDocker is the default WatcherOptions.dial.
func dialDocker(host string) (dockerAPI, error) {
	return newDockerClient(host, nil)
}

// connectError is a failure to reach the daemon. It keeps the dial error,
// so the message says why (no such file, connection refused, permission
// denied).
type connectError struct {
	host string
	err  error
}

func (e *connectError) Error() string {
	return "cannot connect to the Docker daemon at " + e.host + ": " + e.err.Error()
}

func (e *connectError) Unwrap() error { return e.err }

// apiError is a non-2xx answer of the daemon.
type apiError struct {
	// Status is the HTTP status code.
	Status int
	// Message is the daemon's JSON "message", or the text of a non-JSON
	// body; it may be empty.
	Message string
}

func (e *apiError) Error() string {
	s := "daemon returned " + strconv.Itoa(e.Status) + " " + http.StatusText(e.Status)
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// Is matches the containerd errdefs error of the status, as the errors of
// Docker's client do: errors.Is(err, cerrdefs.ErrNotFound) for a 404.
func (e *apiError) Is(target error) bool {
	return errors.Is(errdefFromStatus(e.Status), target)
}

// errdefFromStatus maps a status as containerd's errhttp.ToNative does;
// other 4xx are invalid arguments, other 5xx internal errors.
func errdefFromStatus(status int) error {
	switch status {
	case http.StatusNotModified:
		return cerrdefs.ErrNotModified
	case http.StatusBadRequest:
		return cerrdefs.ErrInvalidArgument
	case http.StatusUnauthorized:
		return cerrdefs.ErrUnauthenticated
	case http.StatusForbidden:
		return cerrdefs.ErrPermissionDenied
	case http.StatusNotFound:
		return cerrdefs.ErrNotFound
	case http.StatusConflict:
		return cerrdefs.ErrConflict
	case http.StatusPreconditionFailed:
		return cerrdefs.ErrFailedPrecondition
	case http.StatusTooManyRequests:
		return cerrdefs.ErrResourceExhausted
	case http.StatusNotImplemented:
		return cerrdefs.ErrNotImplemented
	case http.StatusServiceUnavailable:
		return cerrdefs.ErrUnavailable
	}
	switch {
	case status >= 400 && status < 500:
		return cerrdefs.ErrInvalidArgument
	case status >= 500 && status < 600:
		return cerrdefs.ErrInternal
	default:
		return cerrdefs.ErrUnknown
	}
}

// negotiateAPIVersion returns the API version to use with a daemon that
// announces server: the lower of server and maxAPIVersion, never below
// minAPIVersion (an empty or malformed announcement gives minAPIVersion).
func negotiateAPIVersion(server string) string {
	switch {
	case !apiVersionAtLeast(server, minAPIVersion):
		return minAPIVersion
	case apiVersionAtLeast(server, maxAPIVersion):
		return maxAPIVersion
	default:
		return server
	}
}

// apiVersionAtLeast reports whether the API version v ("1.41") is at least
// want; a malformed v is below every version.
func apiVersionAtLeast(v, want string) bool {
	vMaj, vMin, ok := parseAPIVersion(v)
	if !ok {
		return false
	}
	wMaj, wMin, _ := parseAPIVersion(want)
	return vMaj > wMaj || vMaj == wMaj && vMin >= wMin
}

func parseAPIVersion(v string) (major, minor int, ok bool) {
	a, b, ok := strings.Cut(v, ".")
	if !ok {
		return 0, 0, false
	}
	major, err1 := strconv.Atoi(a)
	minor, err2 := strconv.Atoi(b)
	if err1 != nil || err2 != nil || major < 0 || minor < 0 {
		return 0, 0, false
	}
	return major, minor, true
}

// Ping sends GET /_ping (unversioned) and returns the daemon's headers. A
// non-2xx answer returns the headers read and an *apiError.
func (c *dockerClient) Ping(ctx context.Context) (pingResponse, error) {
	resp, err := c.send(ctx, c.basePath+"/_ping", nil)
	if err != nil {
		return pingResponse{}, err
	}
	defer closeBody(resp)
	p := pingResponse{
		APIVersion: resp.Header.Get("API-Version"),
		OSType:     resp.Header.Get("OSType"),
	}
	if !success(resp.StatusCode) {
		return p, responseError(resp)
	}
	return p, nil
}

// NegotiateAPIVersionPing sets the version of later requests from a
// Ping's answer (see negotiateAPIVersion).
func (c *dockerClient) NegotiateAPIVersionPing(p pingResponse) {
	v := negotiateAPIVersion(p.APIVersion)
	c.mu.Lock()
	c.version = v
	c.mu.Unlock()
}

// ClientVersion returns the API version requests use.
func (c *dockerClient) ClientVersion() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.version
}

// Info returns GET /info.
func (c *dockerClient) Info(ctx context.Context) (infoResponse, error) {
	var info infoResponse
	err := c.getJSON(ctx, "/info", nil, &info)
	return info, err
}

// ContainerList returns GET /containers/json.
func (c *dockerClient) ContainerList(ctx context.Context, o containerListOptions) ([]containerSummary, error) {
	q := url.Values{}
	if o.All {
		q.Set("all", "1")
	}
	if err := setFilters(q, o.Filters); err != nil {
		return nil, err
	}
	var out []containerSummary
	err := c.getJSON(ctx, "/containers/json", q, &out)
	return out, err
}

// ImageList returns GET /images/json.
func (c *dockerClient) ImageList(ctx context.Context, o imageListOptions) ([]imageSummary, error) {
	q := url.Values{}
	if o.All {
		q.Set("all", "1")
	}
	if err := setFilters(q, o.Filters); err != nil {
		return nil, err
	}
	var out []imageSummary
	err := c.getJSON(ctx, "/images/json", q, &out)
	return out, err
}

// ImageInspect returns GET /images/<ref>/json. An empty ref is not found.
func (c *dockerClient) ImageInspect(ctx context.Context, ref string) (imageInspectResponse, error) {
	var out imageInspectResponse
	if ref == "" {
		return out, fmt.Errorf("no such image: empty reference: %w", cerrdefs.ErrNotFound)
	}
	err := c.getJSON(ctx, "/images/"+ref+"/json", nil, &out)
	return out, err
}

// VolumeList returns GET /volumes.
func (c *dockerClient) VolumeList(ctx context.Context, o volumeListOptions) (volumeListResponse, error) {
	q := url.Values{}
	if err := setFilters(q, o.Filters); err != nil {
		return volumeListResponse{}, err
	}
	var out volumeListResponse
	err := c.getJSON(ctx, "/volumes", q, &out)
	return out, err
}

// VolumeInspect returns GET /volumes/<name>. An empty name is an invalid
// argument.
func (c *dockerClient) VolumeInspect(ctx context.Context, name string) (volumeResponse, error) {
	var out volumeResponse
	if name == "" {
		return out, fmt.Errorf("invalid volume name: empty: %w", cerrdefs.ErrInvalidArgument)
	}
	err := c.getJSON(ctx, "/volumes/"+name, nil, &out)
	return out, err
}

// Events streams GET /events like Docker's client: the request is made
// before Events returns; then a goroutine decodes the stream and sends
// each message on the first channel (unbuffered, never closed). It ends
// when ctx ends (ctx.Err() is sent), when the stream fails (the error) or
// when the daemon closes it (io.EOF), and then closes the error channel,
// which holds one error. A failed request sends its error at once.
func (c *dockerClient) Events(ctx context.Context, o eventsOptions) (<-chan eventMessage, <-chan error) {
	msgs := make(chan eventMessage)
	errs := make(chan error, 1)
	fail := func(err error) (<-chan eventMessage, <-chan error) {
		errs <- err
		close(errs)
		return msgs, errs
	}
	q := url.Values{}
	if !o.Since.IsZero() {
		q.Set("since", formatSince(o.Since))
	}
	if err := setFilters(q, o.Filters); err != nil {
		return fail(err)
	}
	resp, err := c.get(ctx, "/events", q)
	if err != nil {
		return fail(err)
	}
	go func() {
		defer close(errs)
		defer resp.Body.Close()
		dec := json.NewDecoder(resp.Body)
		for {
			var m eventMessage
			err := ctx.Err()
			if err == nil {
				err = dec.Decode(&m)
			}
			if err != nil {
				if ctx.Err() != nil { // reading a cancelled body fails too
					err = ctx.Err()
				}
				errs <- err
				return
			}
			select {
			case msgs <- m:
			case <-ctx.Done():
				errs <- ctx.Err()
				return
			}
		}
	}()
	return msgs, errs
}

// formatSince formats t as the "<unix>.<nanos>" timestamp of the events
// API (nanoseconds zero-padded to nine digits, as the daemon parses them).
func formatSince(t time.Time) string {
	return strconv.FormatInt(t.Unix(), 10) + "." + fmt.Sprintf("%09d", t.Nanosecond())
}

// Close closes the idle connections. An open Events stream ends with its
// ctx.
func (c *dockerClient) Close() error {
	c.tr.CloseIdleConnections()
	return nil
}

// setFilters sets the "filters" parameter of q; empty filters send none.
func setFilters(q url.Values, f listFilters) error {
	s, err := f.encode()
	if err != nil {
		return fmt.Errorf("encode filters: %w", err)
	}
	if s != "" {
		q.Set("filters", s)
	}
	return nil
}

// getJSON GETs the versioned path and decodes the answer into out.
func (c *dockerClient) getJSON(ctx context.Context, path string, q url.Values, out any) error {
	resp, err := c.get(ctx, path, q)
	if err != nil {
		return err
	}
	defer closeBody(resp)
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("decode %s: %w", resp.Request.URL.Path, err)
	}
	return nil
}

// get GETs /v<version><path>. On success the caller closes the body; a
// non-2xx answer is an *apiError.
func (c *dockerClient) get(ctx context.Context, path string, q url.Values) (*http.Response, error) {
	resp, err := c.send(ctx, c.basePath+"/v"+c.ClientVersion()+path, q)
	if err != nil {
		return nil, err
	}
	if !success(resp.StatusCode) {
		defer closeBody(resp)
		return nil, responseError(resp)
	}
	return resp, nil
}

// send GETs the absolute path and returns the answer whatever its status.
func (c *dockerClient) send(ctx context.Context, path string, q url.Values) (*http.Response, error) {
	u := &url.URL{Scheme: c.scheme, Host: c.addr, Path: path, RawQuery: q.Encode()}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("docker request: %w", err)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			return nil, &connectError{host: c.host, err: op}
		}
		return nil, err
	}
	return resp, nil
}

func success(status int) bool { return status >= 200 && status < 300 }

// responseError reads a non-2xx answer into an *apiError.
func responseError(resp *http.Response) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	msg := strings.TrimSpace(string(body))
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt == "application/json" {
		var er struct {
			Message string `json:"message"`
		}
		if json.Unmarshal(body, &er) == nil {
			msg = strings.TrimSpace(er.Message)
		}
	}
	return &apiError{Status: resp.StatusCode, Message: msg}
}

// closeBody drains a little of the body, so the connection can be reused,
// and closes it.
func closeBody(resp *http.Response) {
	_, _ = io.CopyN(io.Discard, resp.Body, 512)
	_ = resp.Body.Close()
}
