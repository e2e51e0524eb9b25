package dockertest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rdd-project/rdd/internal/logfile"

	"github.com/rdd-project/rdd/internal/proc"
)

// ErrNotInstalled is returned when no dockerd binary is on PATH.
var ErrNotInstalled = errors.New("dockertest: dockerd not found on PATH (install it: apt-get install docker.io)")

// Defaults for Options.
const (
	DefaultStartTimeout = 30 * time.Second
	DefaultStopTimeout  = 15 * time.Second
)

// Option changes how a Daemon is started.
type Option func(*config)

type config struct {
	args         []string
	startTimeout time.Duration
	stopTimeout  time.Duration
}

// WithArgs appends extra dockerd flags, e.g. "--storage-driver=vfs". The
// network flags of the package doc are always set and must not be
// overridden.
func WithArgs(args ...string) Option {
	return func(c *config) { c.args = append(c.args, args...) }
}

// WithStartTimeout bounds how long StartDaemon and Restart wait for the
// socket to answer /_ping (default DefaultStartTimeout).
func WithStartTimeout(d time.Duration) Option {
	return func(c *config) { c.startTimeout = d }
}

// WithStopTimeout bounds how long Stop waits after SIGTERM before it sends
// SIGKILL (default DefaultStopTimeout).
func WithStopTimeout(d time.Duration) Option {
	return func(c *config) { c.stopTimeout = d }
}

// Daemon is one dockerd started by this package. The path fields never change;
// PID changes on Restart and is 0 while dockerd is not running.
type Daemon struct {
	// Dir is the private directory that holds everything below.
	Dir string
	// Socket is the path of the API socket.
	Socket string
	// Host is the endpoint for Docker clients: "unix://" + Socket.
	Host string
	// DataRoot is dockerd's --data-root.
	DataRoot string
	// ExecRoot is dockerd's --exec-root.
	ExecRoot string
	// LogPath is the file that receives dockerd's output.
	LogPath string
	// PID is dockerd's process id (also its process group id), 0 when stopped.
	PID int

	cfg    config
	cmd    *exec.Cmd
	exited chan struct{} // closed once cmd.Wait returned
}

// StartDaemon starts dockerd with its files in dir, which must exist, be
// private to this daemon and be short enough for a Unix socket path (use
// os.MkdirTemp("/tmp", "rdd-d-")). It returns once the socket answers
// /_ping. On error nothing keeps running, but dir is left for the caller to
// remove (Close does it when StartDaemon succeeded).
func StartDaemon(ctx context.Context, dir string, opts ...Option) (*Daemon, error) {
	cfg := config{startTimeout: DefaultStartTimeout, stopTimeout: DefaultStopTimeout}
	for _, o := range opts {
		o(&cfg)
	}
	if _, err := exec.LookPath("dockerd"); err != nil {
		return nil, ErrNotInstalled
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("dockertest: %w", err)
	}
	d := &Daemon{
		Dir:      abs,
		Socket:   filepath.Join(abs, "docker.sock"),
		DataRoot: filepath.Join(abs, "data"),
		ExecRoot: filepath.Join(abs, "exec"),
		LogPath:  filepath.Join(abs, "dockerd.log"),
		cfg:      cfg,
	}
	d.Host = "unix://" + d.Socket
	if n := len(d.Socket); n >= 104 {
		return nil, fmt.Errorf("dockertest: socket path %s is %d bytes, the limit is 103: use a shorter dir", d.Socket, n)
	}
	if err := writeOwner(abs); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(abs, "daemon.json"), []byte("{}\n"), 0o600); err != nil {
		return nil, fmt.Errorf("dockertest: write daemon.json: %w", err)
	}
	if err := d.start(ctx); err != nil {
		return nil, err
	}
	return d, nil
}

// Args returns the dockerd command line (without the binary).
func (d *Daemon) Args() []string {
	args := []string{
		"--host", d.Host,
		"--data-root", d.DataRoot,
		"--exec-root", d.ExecRoot,
		"--pidfile", filepath.Join(d.Dir, "docker.pid"),
		"--config-file", filepath.Join(d.Dir, "daemon.json"),
		"--bridge=none",
		"--iptables=false",
		"--ip6tables=false",
		"--ip-forward=false",
		"--ip-masq=false",
		"--userland-proxy=false",
		"--shutdown-timeout=1",
	}
	return append(args, d.cfg.args...)
}

func (d *Daemon) start(ctx context.Context) error {
	if err := d.clearStalePIDFiles(); err != nil {
		return err
	}
	logf, err := os.OpenFile(d.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("dockertest: open log: %w", err)
	}
	defer logf.Close() // the child has its own copy of the descriptor
	cmd := exec.Command("dockerd", d.Args()...)
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.Dir = d.Dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("dockertest: start dockerd: %w", err)
	}
	d.cmd = cmd
	d.PID = cmd.Process.Pid
	exited := make(chan struct{})
	d.exited = exited
	go func() { // reaper: owned by d, ends when dockerd exits
		_ = cmd.Wait()
		close(exited)
	}()

	if err := d.waitReady(ctx); err != nil {
		_ = d.signalAndWait(syscall.SIGKILL, d.cfg.stopTimeout)
		return fmt.Errorf("%w\n--- dockerd log (%s) ---\n%s", err, d.LogPath, d.LogTail(40))
	}
	return nil
}

// waitReady polls /_ping until it answers OK, dockerd exits, or the start
// timeout or ctx ends.
func (d *Daemon) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, d.cfg.startTimeout)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var lastErr error
	for {
		if lastErr = Ping(ctx, d.Socket); lastErr == nil {
			return nil
		}
		select {
		case <-d.exited:
			return fmt.Errorf("dockertest: dockerd exited during start: %s", d.cmd.ProcessState)
		case <-ctx.Done():
			return fmt.Errorf("dockertest: dockerd did not answer /_ping on %s within %s: %w", d.Socket, d.cfg.startTimeout, lastErr)
		case <-tick.C:
		}
	}
}

// Ping sends GET /_ping to the Docker API socket at path and returns nil if
// it answers 200 "OK". Each call is bounded by one second. It does not use
// engine.Ping because the engine's own tests import this package.
func Ping(ctx context.Context, socket string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var dl net.Dialer
			return dl.DialContext(ctx, "unix", socket)
		},
		DisableKeepAlives: true,
	}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://docker/_ping", nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64))
	if resp.StatusCode != http.StatusOK || string(body) != "OK" {
		return fmt.Errorf("dockertest: /_ping answered %s %q", resp.Status, body)
	}
	return nil
}

// Running reports whether dockerd is running (started and not yet reaped).
func (d *Daemon) Running() bool {
	if d.exited == nil {
		return false
	}
	select {
	case <-d.exited:
		return false
	default:
		return true
	}
}

// Exited returns a channel closed once the current dockerd process exited
// (nil before the first start).
func (d *Daemon) Exited() <-chan struct{} { return d.exited }

// Stop stops dockerd gracefully: SIGTERM to its process group, then SIGKILL
// after the stop timeout or when ctx ends. It returns once dockerd was
// reaped. Stopping a stopped daemon does nothing.
func (d *Daemon) Stop(ctx context.Context) error {
	if !d.Running() {
		d.PID = 0
		return nil
	}
	timeout := d.cfg.stopTimeout
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < timeout {
		timeout = max(time.Until(dl), 0)
	}
	if err := d.signalAndWait(syscall.SIGTERM, timeout); err == nil {
		d.PID = 0
		return nil
	}
	err := d.signalAndWait(syscall.SIGKILL, d.cfg.stopTimeout)
	d.PID = 0
	return err
}

// Kill sends SIGKILL to dockerd's process group and waits until dockerd was
// reaped. The directory, the socket file and any containers stay, so Restart
// can bring the same daemon back. It simulates a crash of the engine.
func (d *Daemon) Kill() error {
	if !d.Running() {
		d.PID = 0
		return nil
	}
	err := d.signalAndWait(syscall.SIGKILL, d.cfg.stopTimeout)
	d.PID = 0
	return err
}

// Restart starts dockerd again on the same socket and directories (after
// stopping it gracefully if it runs) and waits until it answers /_ping.
func (d *Daemon) Restart(ctx context.Context) error {
	if err := d.Stop(ctx); err != nil {
		return err
	}
	return d.start(ctx)
}

// clearStalePIDFiles removes the pid files a killed dockerd and its
// containerd left behind. dockerd treats a pid file naming a live process as
// "already running", and a zombie counts as live: where pid 1 does not reap
// orphans (containers, some sandboxes) the killed containerd stays a zombie,
// and a restarted dockerd would wait for it forever. A containerd that is
// still dying is waited for.
func (d *Daemon) clearStalePIDFiles() error {
	for _, pf := range []string{filepath.Join(d.Dir, "docker.pid"), filepath.Join(d.ExecRoot, "containerd", "containerd.pid")} {
		b, err := os.ReadFile(pf)
		if err != nil {
			continue
		}
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 && refersTo(pid, d.Dir) {
			waitGone([]int{pid}, d.cfg.stopTimeout)
			if !isZombie(pid) {
				return fmt.Errorf("dockertest: process %d named by %s still runs", pid, pf)
			}
		}
		if err := os.Remove(pf); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("dockertest: %w", err)
		}
	}
	return nil
}

// refersTo reports whether process pid's command line names dir.
func refersTo(pid int, dir string) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	return err == nil && bytes.Contains(b, []byte(dir+"/"))
}

// signalAndWait signals dockerd's process group and waits up to timeout for
// the reaper to see it exit.
func (d *Daemon) signalAndWait(sig syscall.Signal, timeout time.Duration) error {
	pid := d.cmd.Process.Pid
	if err := syscall.Kill(-pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("dockertest: signal dockerd group %d with %s: %w", pid, sig, err)
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-d.exited:
		return nil
	case <-t.C:
		return fmt.Errorf("dockertest: dockerd (pid %d) still running %s after %s", pid, timeout, sig)
	}
}

// Close stops dockerd, kills the container shims and container processes it
// left behind, unmounts what is still mounted under Dir, removes the
// container cgroups, and removes Dir. It is safe to call more than once.
func (d *Daemon) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*d.cfg.stopTimeout)
	defer cancel()
	errs := []error{d.Stop(ctx)}
	errs = append(errs, cleanupDir(d.Dir))
	return errors.Join(errs...)
}

// LogTail returns the last n lines of dockerd's log.
func (d *Daemon) LogTail(n int) string {
	s, err := logfile.Tail(d.LogPath, n)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	return s
}

// writeOwner records this process (pid and start time) as the owner of dir,
// so that ReapStale can recognise directories whose test process died.
func writeOwner(dir string) error {
	st, err := procStartTime(os.Getpid())
	if err != nil {
		return fmt.Errorf("dockertest: %w", err)
	}
	b := fmt.Appendf(nil, "%d %s\n", os.Getpid(), st)
	if err := os.WriteFile(filepath.Join(dir, "owner"), b, 0o600); err != nil {
		return fmt.Errorf("dockertest: write owner: %w", err)
	}
	return nil
}

// procStartTime returns the start time of pid (field 22 of /proc/<pid>/stat,
// in clock ticks since boot) as a string, to tell a live owner from a reused pid.
func procStartTime(pid int) (string, error) {
	st, err := proc.ReadStat(pid)
	if err != nil {
		return "", err
	}
	return strconv.FormatUint(st.StartTicks, 10), nil
}
