// Package dockertest runs a real, private dockerd for tests.
//
// A Daemon is one dockerd process started by this package, listening only on
// a Unix socket in a short private directory (os.MkdirTemp("/tmp", "rdd-d-"),
// because a Unix socket path must stay under 104 bytes). Everything it
// writes lives in that directory:
//
//	<dir>/docker.sock   API socket (Host is "unix://<dir>/docker.sock")
//	<dir>/data          --data-root (images, containers, volumes, containerd root)
//	<dir>/exec          --exec-root (containerd socket and state, netns files)
//	<dir>/docker.pid    --pidfile
//	<dir>/daemon.json   --config-file: "{}", so the host's /etc/docker/daemon.json is never read
//	<dir>/dockerd.log   dockerd's stdout and stderr
//	<dir>/owner         pid of the test process that owns the daemon
//
// # Network
//
// The daemon makes no network traffic and changes no host network state. It
// runs with
//
//	--bridge=none --iptables=false --ip6tables=false --ip-forward=false
//	--ip-masq=false --userland-proxy=false
//
// so it creates no docker0 bridge, writes no iptables rules and no sysctls.
// Containers must be created with HostConfig.NetworkMode "none"
// (CreateContainer does that). Images never come from a registry: use
// ImportBusybox, which builds a root filesystem in Go from the host's static
// /usr/bin/busybox and imports it through the API. Creating a container from
// a missing image fails instead of pulling (ContainerCreate never pulls; only
// the docker CLI's run does, so tests must not use `docker run` without
// --pull never).
//
// # What works on Debian 12 (dockerd 20.10.24, cgroup v1, ext4 /tmp)
//
// The defaults work: the overlay2 storage driver on /tmp, the cgroupfs cgroup
// driver, and the containerd that dockerd starts itself (its socket is
// <dir>/exec/containerd/containerd.sock). No --exec-opt or --storage-driver is
// needed; pass them with WithArgs where the defaults fail (e.g.
// "--storage-driver=vfs" on a filesystem overlayfs cannot sit on). A
// container starts in about half a second. --shutdown-timeout=1 keeps a
// graceful stop short, because a busybox `sleep` run as pid 1 ignores SIGTERM.
//
// # Processes and cleanup
//
// dockerd runs in its own process group; containerd runs in its own session
// and dies with dockerd (dockerd sets its parent-death signal). Stop sends
// SIGTERM to the group, then SIGKILL after a grace period, and reaps the
// process. Kill sends SIGKILL at once and keeps the directory, so Restart can
// start dockerd again on the same socket and data. Container shims
// (containerd-shim-runc-v2) and container processes outlive a killed dockerd;
// Close kills them (found through their command lines, which name the
// daemon's directory, and through the container cgroups), unmounts whatever
// dockerd left mounted under the directory, removes the container cgroups and
// then the directory. Start also reaps directories whose owner test process
// is gone (a test binary killed by -timeout), so crashed runs do not leak
// dockerd processes.
//
// # Concurrency
//
// A Daemon's methods must be called from one goroutine at a time (normally
// the test goroutine and its cleanups). Several daemons may run at once, in
// one or many processes.
package dockertest
