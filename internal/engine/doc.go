// Package engine observes the container engine (moby/dockerd) of an rdd
// instance and manages the instance's Docker CLI context (behavior.md §7).
//
// # Watcher
//
// A Watcher connects to the Docker Engine API at one endpoint (normally
// unix://H/docker.sock) with API version negotiation, so it works with
// dockerd 20.10 (API 1.41) and current Docker. One connection is:
//
//  1. ping (DefaultPingTimeout, 5 s);
//  2. take the event cursor from the daemon's clock (Info.SystemTime,
//     DefaultInfoTimeout; fallback: host time minus SinceFallback). The
//     cursor is taken before the sync, so events that happen during the
//     sync are replayed after it; applying an event re-reads the object, so
//     replay is idempotent;
//  3. full sync: list all containers (running or not), images (one entry
//     per tag, one for a dangling image) and volumes, and replace the
//     Inventory in one step;
//  4. stream container, image and volume events from the cursor and apply
//     them: container create/start/stop/die/pause/unpause/restart/rename
//     re-list that container, destroy removes it; image
//     pull/import/load/tag/untag re-inspect the image and set exactly its
//     current tags (a tag that moved away from another image is taken from
//     it), delete removes every entry of the image; volume create inspects,
//     destroy removes. Per-event failures are logged and dropped, a panic is
//     recovered and logged;
//  5. every ResyncInterval (default 5 min, F21) a full sync heals what a
//     dropped event left wrong.
//
// When the stream errors or ends, the Watcher reports Disconnected, closes
// its client and reconnects with a fresh full sync after a backoff of
// 100 ms doubling to at most 5 s (F27); the backoff resets only after a
// connection that lasted 5 s, so a flapping engine is not resynced in a
// tight loop. A failed ping or sync is reported as ConnectFailed with the
// message "failed to ping Docker: …" or "failed to perform initial sync: …".
//
// The Engine API client is rdd's own (dockerclient.go), not Docker's
// client package, whose dependencies (distribution/reference, otel) cost
// every rdd command about 1.5 ms of init. It sends plain GET requests over
// net/http to unix:///path or tcp://host:port and decodes the answers into
// rdd's own wire structs (dockertypes.go), which hold only the fields the
// engine reads: Docker's api/types packages pull in go-digest, whose init
// compiles regular expressions. List filters are sent as the
// {"key":{"value":true}} JSON Docker's client sends. It negotiates the version
// from GET /_ping's API-Version header: the lower of the daemon's and 1.47,
// never below 1.41, and prefixes paths with /v<version>. A failed dial
// keeps its net error ("cannot connect to the Docker daemon at H: dial unix
// …: connect: connection refused"); a non-2xx answer reads "daemon returned
// 404 Not Found: <the daemon's message>" and matches the containerd errdefs
// class of its status (cerrdefs.IsNotFound).
//
// The Watcher only observes: it reports Phases through
// WatcherOptions.OnPhase, in order, on the goroutine running Run; the
// daemon turns them into engine machine transitions.
//
// # Concurrency
//
// Run owns every goroutine it starts (the client's event reader, which
// ends with the stream's ctx) and the API client; it returns only after
// they have stopped and the client is closed. The Inventory has one
// writer (Run's goroutine) and any number of readers; its accessors return
// sorted deep copies. ContextManager methods
// are safe for concurrent use; its probe goroutine is cancelled and waited
// for by Activate and Deactivate.
//
// # Docker context (behavior.md §7.4, F5, F6, F20)
//
// The context is stored as the Docker CLI stores it:
//
//	<cfg>/contexts/meta/<hex sha256(name)>/meta.json
//	{"Name":"N","Metadata":{"Description":"Rancher Desktop N"},"Endpoints":{"docker":{"Host":"unix://H/docker.sock","SkipTLSVerify":false}}}
//
// where <cfg> is $DOCKER_CONFIG or ~/.docker. config.json is edited as a map
// of raw top-level values, so keys rdd does not know survive; a file that is
// not a JSON object, has a non-string currentContext, or has auths entries
// the Docker CLI rejects is never written. Writes are atomic (temp file,
// fsync, rename), keep the file's mode (0600 for a new file) and owner, and
// follow a symlinked config.json to its target. The daemon's environment is
// frozen when it starts: DOCKER_HOST or DOCKER_CONTEXT set then turns the
// current-context switch off for the daemon's life (F20).
package engine
