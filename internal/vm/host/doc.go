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
// --bridge=none --iptables=false --ip6tables=false --ip-forward=false
// --ip-masq=false). rdd never lets dockerd start its own containerd, because
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
// pid is never mistaken for the engine. Start rewrites the file after each
// process it spawns, so an rdd crash at any point leaves every process
// findable. Stop and Delete remove it; Inspect removes it once nothing it
// names runs.
//
// # Concurrency
//
// Every method of Driver waits for the one before it (a ctx-aware token), so
// Inspect may be called from another goroutine than the controller's. The
// Exited channels may be read from any goroutine. Watchers wait on pidfds
// (poll(2), no CPU while waiting), or check /proc every 500 ms where pidfds
// are unavailable; Close stops them all.
package host
