// Package paths resolves the instance model of behavior.md §1: the instance
// suffix, the instance name N, its index, and every directory and file rdd uses.
// Paths is built once in main and passed down; nothing here is cached globally.
package paths

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
)

// DefaultInstance is the instance suffix when neither --instance nor
// RDD_INSTANCE is given.
const DefaultInstance = "2"

// Paths holds every location of one instance.
type Paths struct {
	Instance string // suffix S
	Name     string // N = rancher-desktop-S
	Index    int    // I
	Home     string

	ServiceDir string // D
	LogDir     string // L
	ShortDir   string // H

	Socket          string // H/rdd.sock
	DockerSocket    string // H/docker.sock
	KubeConfig      string // H/kube.config (standalone)
	BinDir          string // H/bin
	LimaHome        string // H/lima
	EventLog        string // D/events.db
	PIDFile         string // D/rdd.pid
	K3sConfig       string // D/k3s.yaml
	DaemonLog       string // L/rdd.log
	DaemonStdoutLog string // L/rdd.stdout.log
	DaemonStderrLog string // L/rdd.stderr.log
	EngineDataDir   string // D/engine (host driver: dockerd/containerd data)
	EngineRunDir    string // H/run (host driver: exec-root, pid files)

	// ContainerdSocket and ContainerdTTRPCSocket are the host driver's
	// private containerd (gRPC and ttrpc). containerd names the ttrpc socket
	// after the gRPC one plus ".ttrpc", which makes it the instance's longest.
	ContainerdSocket      string // H/containerd.sock
	ContainerdTTRPCSocket string // H/containerd.sock.ttrpc

	// CacheDir holds downloads every instance of the user can share (k3s
	// binaries): a cache, not instance data, so it goes where backups and
	// cleaners expect re-downloadable files, ~/.cache/rdd or
	// ~/Library/Caches/rdd, rather than next to D.
	CacheDir string
}

// Resolve builds the paths of instance suffix s for the user whose home is home.
// env is consulted for RDD_LOG_DIR. An empty s means DefaultInstance.
func Resolve(s, home string, getenv func(string) string) (Paths, error) {
	if s == "" {
		s = DefaultInstance
	}
	if home == "" {
		return Paths{}, errors.New("cannot resolve instance paths: home directory is unknown (set HOME)")
	}
	if getenv == nil {
		getenv = os.Getenv
	}
	p := Paths{Instance: s, Name: "rancher-desktop-" + s, Index: Index(s), Home: home}
	if runtime.GOOS == "darwin" {
		p.ServiceDir = filepath.Join(home, "Library", "Application Support", p.Name)
		p.LogDir = filepath.Join(home, "Library", "Logs", p.Name)
		p.CacheDir = filepath.Join(home, "Library", "Caches", "rdd")
	} else {
		p.ServiceDir = filepath.Join(home, ".local", "share", p.Name)
		p.LogDir = filepath.Join(home, ".local", "state", p.Name)
		p.CacheDir = filepath.Join(home, ".cache", "rdd")
	}
	if d := getenv("RDD_LOG_DIR"); d != "" {
		p.LogDir = d
	}
	p.ShortDir = filepath.Join(home, ".rd"+s)
	p.Socket = filepath.Join(p.ShortDir, "rdd.sock")
	p.DockerSocket = filepath.Join(p.ShortDir, "docker.sock")
	p.ContainerdSocket = filepath.Join(p.ShortDir, "containerd.sock")
	p.ContainerdTTRPCSocket = p.ContainerdSocket + ".ttrpc"
	p.KubeConfig = filepath.Join(p.ShortDir, "kube.config")
	p.BinDir = filepath.Join(p.ShortDir, "bin")
	p.LimaHome = filepath.Join(p.ShortDir, "lima")
	p.EventLog = filepath.Join(p.ServiceDir, "events.db")
	p.PIDFile = filepath.Join(p.ServiceDir, "rdd.pid")
	p.K3sConfig = filepath.Join(p.ServiceDir, "k3s.yaml")
	p.DaemonLog = filepath.Join(p.LogDir, "rdd.log")
	p.DaemonStdoutLog = filepath.Join(p.LogDir, "rdd.stdout.log")
	p.DaemonStderrLog = filepath.Join(p.LogDir, "rdd.stderr.log")
	p.EngineDataDir = filepath.Join(p.ServiceDir, "engine")
	p.EngineRunDir = filepath.Join(p.ShortDir, "run")
	// Checking only rdd.sock let a HOME pass whose containerd ttrpc socket
	// then failed to bind, and `rdd start` waited out its whole timeout.
	for _, sock := range p.Sockets() {
		if len(sock) > MaxSocketPath {
			return Paths{}, fmt.Errorf("socket path %s is %d bytes; Unix sockets allow at most %d (the longest socket of instance %q decides): use a shorter HOME or instance name", sock, len(sock), MaxSocketPath, s)
		}
	}
	return p, nil
}

// MaxSocketPath is the longest socket path rdd accepts: sun_path holds 104
// bytes on macOS (108 on Linux) including the terminating NUL, and an
// instance must work on both.
const MaxSocketPath = 103

// Sockets lists every Unix socket the instance binds, longest last.
func (p Paths) Sockets() []string {
	return []string{p.Socket, p.DockerSocket, p.ContainerdSocket, p.ContainerdTTRPCSocket}
}

// Index computes I of behavior.md §1.1.
func Index(s string) int {
	if n, err := strconv.Atoi(s); err == nil && n > 0 && n < 100 {
		return n
	}
	sum := 0
	for _, r := range s {
		sum += int(r)
	}
	return 100 + sum%100
}

// PreferredK3sPort is 7441+I (behavior.md §1.1).
func (p Paths) PreferredK3sPort() int { return 7441 + p.Index }

// EnsureDirs creates D and L, and creates or checks H with EnsurePrivateDir
// (H holds the sockets: whoever controls it can stand in for the daemon).
func (p Paths) EnsureDirs() error {
	for _, d := range []string{p.ServiceDir, p.LogDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("create directory %s: %w", d, err)
		}
	}
	return EnsurePrivateDir(p.ShortDir)
}

// Map returns the keys of `rdd svc paths`.
func (p Paths) Map() map[string]string {
	return map[string]string{
		"dir":           p.ServiceDir,
		"log_dir":       p.LogDir,
		"short_dir":     p.ShortDir,
		"socket":        p.Socket,
		"docker_socket": p.DockerSocket,
		"kube_config":   p.KubeConfig,
		"k3s_config":    p.K3sConfig,
		"lima_home":     p.LimaHome,
		"event_log":     p.EventLog,
		"pid_file":      p.PIDFile,
		"daemon_log":    p.DaemonLog,
	}
}
