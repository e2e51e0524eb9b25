// Command rdd brings up a local container and Kubernetes developer
// environment. `rdd daemon` is the long-running process; every other command
// is a client of its Unix socket (design.md §6, §7).
//
// # Structure
//
// main resolves the instance (splitInstance: `--instance X` only as the first
// argument, else $RDD_INSTANCE, else "2"), builds paths.Paths once and an env
// holding stdio, the environment and the clock, and runs newRootCommand(env).
// Each command has its own constructor (newSetCommand, …) with its flags in
// local variables. Tests run newRootCommand in-process through execute with
// their own env (harness_test.go), against the real API server serving a
// fake Backend (fakeserver_test.go).
//
// # Exit codes (design.md §7)
//
// 0 ok; 1 error (including "daemon not reachable", whose message says how to
// start it); 2 usage: unknown commands and flags — including --instance
// anywhere but first — wrong argument counts and invalid flag values (the
// reference used 1; design.md §7 gives 2 to cobra's usage errors); 3 the
// daemon rejected a spec change; 4 a wait deadline (set/start/stop/run wait,
// the 90 s implicit daemon start, svc start/stop/delete); rdd run exits with
// its command's code, 255 when a signal ended it, 127 when it was not found.
// A command interrupted by SIGINT/SIGTERM exits 130, except the streams
// (status --watch, events --follow, svc logs -f), for which an interrupt is
// the normal end (0). internal/cli/exit classifies; only main calls os.Exit.
//
// # Decisions not fixed by the spec
//
//   - Client-side, set only checks the PROPERTY=VALUE format (exit 1); the
//     daemon validates names and values (design.md §7), so an unknown property
//     or a bad value exits 3, not 1 as in the reference.
//   - "Created" (svc status) means the event log D/events.db exists; "running"
//     means D/rdd.pid, which the daemon writes, names a live process; "serving"
//     means GET /v1/healthz answers.
//   - rdd stop never starts the daemon (F16). With no daemon it prints
//     "App does not exist; nothing to stop" when the instance was never
//     created, else that the daemon is not running; both exit 0.
//   - Set progress lines go to stderr by default (F19); stdout stays empty so
//     scripts can use it. --dry-run prints what would change: each
//     property's old → new value and whether the machine restarts (the
//     daemon decides, from the driver's restart key).
//   - set asks before a change that restarts a machine holding containers
//     only when stdin and stderr are terminals and it waits: a script, or
//     --wait=false, is never blocked and gets a warning on stderr; --yes
//     skips the question.
//   - The daemon's rejection of a kubernetes.version keeps the wording of
//     behavior.md §2.1; the CLI appends the valid versions and channels.
//   - rdd run refuses docker and docker-compose at once when the App runs
//     containerd: there is no Docker API, so no Docker context to use.
//   - svc logs reads the logs as files (no daemon needed); --engine picks
//     dockerd.log or containerd.log from the App's spec.
//   - svc delete first deletes the App when a daemon serves one (DELETE
//     /v1/app), so the VM/engine and the instance's contexts are cleaned up
//     before the directories go (F15); a failure there is a warning, a
//     deadline exits 4 and keeps everything.
//   - svc stop sends SIGINT, polls every 100 ms, and on its deadline sends
//     SIGTERM (the daemon treats both as a graceful stop) and exits 4.
//   - svc start rotates L/rdd.stdout.log and L/rdd.stderr.log (five backups,
//     all with RDD_KEEP_LOGS; RDD_LOG_TITLE as first line) and starts the
//     daemon in its own session.
//   - JSON output is json.Marshal plus "\n", the daemon's encoding, so
//     `rdd events -o json | rdd replay - -o json` prints the bytes of
//     `rdd status -o json`.
package main
