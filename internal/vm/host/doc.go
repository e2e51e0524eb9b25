// Package host is the "host" VM driver (Linux): there is no VM, the host is
// the machine. Created means the instance directories exist; Running means
// the engine processes rdd started are alive and the engine socket answers.
//
// # Processes
//
// Every engine runs a private containerd (config H/run/containerd.toml,
// socket H/containerd.sock, root D/engine/containerd, state H/run/containerd,
// no TCP listener, CRI plugin disabled). For moby, dockerd runs on top of it
// (socket H/docker.sock, data root D/engine/docker, exec root H/run/docker,
// --iptables=false --ip6tables=false --ip-forward=false --ip-masq=false, and
// the bridge below). rdd never lets dockerd start its own containerd, because
// dockerd 20.10 silently uses /run/containerd/containerd.sock whenever that
// file exists. containerd is started first and leads a new process group;
// dockerd joins that group. Both are detached from rdd (own process group,
// stdin /dev/null, output appended to L/containerd.log and L/dockerd.log,
// rotated on every start as behavior.md §1.2 says), so they survive rdd being
// killed, and a later rdd re-adopts them.
//
// The engine process is the last one started (dockerd, or containerd for the
// containerd engine); Info.PID is its pid. The machine is all or nothing:
// when any of its processes exits, the driver's watcher stops the others and
// only then closes Info.Exited.
//
// # State file
//
// H/run/engine.json (JSON, version field "v" = 1) records the engine, the
// template hash, the start time, the process group, the socket to probe and,
// per process, its name, pid, log file and start time in clock ticks since
// boot (/proc/<pid>/stat field 22). A process counts as running only when its
// pid exists, is not a zombie and has the recorded start time, so a reused
// pid is never mistaken for the engine. Start records containerd's command
// line before it spawns it and rewrites the file after each process it
// spawns, so an rdd crash at any point leaves every process findable. Stop
// and Delete remove it; Inspect removes it once nothing it names runs.
//
// # Interrupted starts
//
// An rdd killed during Start leaves a half-started machine: containerd up and
// dockerd never spawned, a containerd spawned but not yet recorded, or part
// of a machine whose other processes exited while no rdd ran. It never
// served anyone, so Inspect stops it at once (SIGTERM, then SIGKILL after
// 2 s; only the processes the state file names, their process group, and a
// process with the recorded command line started after the recording rdd)
// and reports it stopped, naming what it found. Start and Stop also unmount
// what a SIGKILLed dockerd left mounted under D/engine and H/run. Every probe
// speaks the protocol of its process: GET /_ping for dockerd, a gRPC Version
// call for containerd. For the crash tests, RDD_HOST_TEST_HOLD=containerd
// (or dockerd) makes Start block right after that process is recorded.
//
// # Network
//
// Options.Network (the daemon's RDD_HOST_NETWORK) is "bridge" by default:
// before dockerd starts, rdd gives the instance a Linux bridge of its own and
// starts dockerd with --bridge=<it> --ip=127.0.0.1 --userland-proxy=true, so
// `docker run -p 8080:80` publishes on 127.0.0.1:8080 (through docker-proxy)
// unless the user names another address (-p 0.0.0.0:8080:80). dockerd keeps
// --iptables=false and changes no sysctl, so it never touches a system
// dockerd's chains; everything below is rdd's.
//
//   - Bridge name: "rdd-" + up to 4 letters/digits of the instance suffix +
//     "-" + 6 hex digits of sha256(D/engine), at most 15 bytes (IFNAMSIZ).
//     The hash keeps two HOMEs running the same instance suffix apart.
//   - Subnet: a /24 from 10.213.0.0/16, else 192.168.216.0/21 (outside
//     Docker's and k3s's default pools), starting at an offset from the same
//     hash, skipping every /24 that overlaps a route in /proc/net/route
//     (default routes aside), an interface address, or 172.17.0.0/16 (the
//     system docker0, even before it exists). The choice is recorded in
//     D/engine/network.json and reused on every start while it still
//     collides with nothing. The bridge carries the subnet's first address,
//     dockerd's gateway for the containers. A flock on
//     /run/rdd-host-network.lock keeps two instances from choosing at once.
//   - NAT: `-t nat POSTROUTING -s <subnet> ! -o <bridge> -j MASQUERADE`, and
//     in FORWARD `-i <bridge> -j ACCEPT` and `-o <bridge> conntrack
//     RELATED,ESTABLISHED -j ACCEPT` (a system dockerd sets the FORWARD
//     policy to DROP), each with the comment "rdd:<bridge>". rdd sets
//     net.ipv4.ip_forward=1 in this mode only, and never resets it, as
//     dockerd does not: others may rely on it by then.
//   - Cleanup: Stop, Delete and a failed Start remove the bridge and every
//     rule with the comment (network.json stays until Delete, for a stable
//     subnet). A start after a crash reuses a leftover bridge (resetting its
//     address if it differs) and deletes stale or duplicate rules before it
//     adds what is missing, so each rule exists exactly once.
//
// "none" starts dockerd with --bridge=none: containers have loopback only
// (sandboxes, hosts where rdd must not touch networking); a bridge left by an
// earlier bridge-mode start is removed. The containerd engine gets no network
// from rdd in either mode: containerd has no network of its own (its CRI
// plugin, which would run CNI, is disabled), so containers run with
// whatever the user sets up (e.g. `ctr run --net-host`, or CNI by hand).
//
// # Kubernetes
//
// With Kubernetes enabled, the kube controller has the driver run `k3s
// server` (vm.KubernetesRunner, k3s.go) beside the engine but outside the
// machine: k3s leads a process group of its own, is recorded in
// H/run/k3s.json (command line, tag, port, pid and start ticks) and has its
// own pidfd watcher, so a k3s exit never tears the engine down and toggling
// Kubernetes never restarts the engine. Its data is D/k3s, its kubeconfig
// D/k3s.yaml, its output L/k3s.log. The machine's Stop and Delete stop it
// first; Delete also removes D/k3s and D/k3s.yaml. The flags and their
// sources are in k3s.go and docs/decisions.md.
//
// # Concurrency
//
// Every method of Driver waits for the one before it (a ctx-aware token), so
// Inspect may be called from another goroutine than the controller's. The
// Exited channels may be read from any goroutine. Watchers wait on pidfds
// (poll(2), no CPU while waiting), or check /proc every 500 ms where pidfds
// are unavailable; Close stops them all.
package host
