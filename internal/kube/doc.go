// Package kube publishes rdd's Kubernetes context into the user's kubeconfig,
// decides whether to switch the user's current-context, and probes the cluster
// (behavior.md §8.2–8.4, findings F1–F5, F7).
//
// # Kubeconfig contract
//
// Every read and write follows, step by step, what client-go's clientcmd.Load
// and clientcmd.Write do (kubeconfig.go: YAML to JSON, client-go's v1 types,
// their defaulting and generated conversions; compat_test.go holds the results,
// error texts and bytes to clientcmd's own); YAML is never edited as text and
// kubectl is never run. Neither clientcmd nor its codec package is linked:
// they pull in rest, exec plugins and apimachinery's meta/v1, whose init every
// rdd command would pay.
//
//   - Destination: Target.Files resolves $KUBECONFIG as a list with kubectl's
//     rules (split with filepath.SplitList, empty entries dropped, duplicates
//     removed); without it, ~/.kube/config. The entry for context N goes to the
//     first listed file that already holds any of context, cluster or user N,
//     else to the first listed file (F4). Because kubectl merges "first file
//     wins", that choice shadows any stale copy in a later file.
//   - Locking: a file is only written while rdd holds kubectl's own lock, the
//     file <path>.lock created with O_EXCL (clientcmd.ModifyConfig uses the
//     same protocol), so rdd and kubectl never interleave. kubectl gives up at
//     once on a held lock; rdd retries for Publication.LockWait and then fails
//     with a *LockError naming the lock file. A lock rdd did not create is never
//     removed (F5).
//   - Atomicity: the new content is written to a temporary file in the
//     directory of the resolved target, fsynced, renamed onto the target, and
//     the directory is fsynced. A symlinked config stays a link; its target is
//     replaced. The file mode is kept (0600 for a new file, its directory is
//     created 0700), and so is the owner where the process may set it (F5).
//   - Idempotence: a file is rewritten only when its semantic content changes,
//     so an unchanged merge keeps inode and mtime; removal never creates a file
//     (F1).
//   - Hostile files: a file that cannot be parsed is never written (*ParseError
//     with the path); a directory where a file should be, a ~/.kube that is not
//     a directory, an immutable file, or a held lock fail with an error naming
//     the path, and leave every byte of the user's files as they were.
//   - The standalone kubeconfig (only N, current-context N) is written after a
//     successful merge, never after a failed one.
//
// # Current-context
//
// DecideCurrentContext is the F2/F3 policy as a function: switch to N only
// when current-context is empty, "default", names a missing context or
// cluster, or its server fails at the transport level (refused, TLS failure,
// timeout). Any HTTP answer, 401 and 403 included, means alive; exec and
// auth-provider users count as alive, and so does anything rdd cannot
// evaluate. Calling it at most once per Ready transition (F2) is the caller's
// job.
//
// # Probe
//
// Probe classifies GET <server>/healthz over the kubeconfig's TLS as Healthy,
// Unhealthy, Unreachable or Ambiguous (§8.2); AnyNodeReady lists nodes with a
// plain GET /api/v1/nodes. Both go through an Endpoint, built from a
// kubeconfig cluster and user with clientcmd's rules (validation, relative
// paths, token files, proxy-url, TLS server name) instead of client-go's
// rest.Config. Nothing imports the generated clientset, client-go's rest or
// clientcmd, and the package does no work at init.
//
// # Concurrency
//
// Functions are safe to call from several goroutines; writers of one file are
// serialised by its lock file, across processes too. ErrorLogger is safe for
// concurrent use.
package kube
