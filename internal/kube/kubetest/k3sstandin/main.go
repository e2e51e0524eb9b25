// Command k3sstandin is a stand-in for the k3s binary in tests, where k3s
// cannot be downloaded. It is a test double of k3s's process contract, not of
// k3s: `k3s server` with k3s's flag names runs the real kube-apiserver and
// etcd (through internal/kube/kubetest) bound to loopback, writes a k3s-shaped
// kubeconfig once the API server is ready, and registers a kubelet-less Node
// whose Ready condition it keeps fresh. Flags that configure what it does not
// run (containerd, flannel, traefik, …) are accepted and ignored.
//
// Contract kept, because rdd supervises k3s by it:
//   - unknown flags: "Incorrect Usage: flag provided but not defined: -x" on
//     stdout and exit 1 (urfave/cli v1); unknown commands exit 3;
//   - a taken --https-listen-port: a fatal line with "bind: address already
//     in use" and exit 1, before anything starts;
//   - SIGTERM/SIGINT: the API server and etcd are stopped, exit 0;
//   - the API server or etcd dying: exit 1; children never outlive it.
//
// Test hooks: <data-dir>/standin/apiserver.pid and etcd.pid hold the
// children's pids while it runs; K3S_STANDIN_NODE_READY=false keeps the node
// NotReady; K3S_STANDIN_EXTRA_NODE=name registers a second, NotReady node.
//
// hack/k3s-standin.sh builds it into .cache/k3s-standin/k3s; tests find it
// with kubetest.K3sStandin.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rdd-project/rdd/internal/kube/kubetest"
)

// version is what `k3s --version` reports: the k3s release matching the
// kube-apiserver the stand-in runs.
const version = kubetest.Version + "+k3s1"

// Environment hooks for tests.
const (
	envNodeReady = "K3S_STANDIN_NODE_READY"
	envExtraNode = "K3S_STANDIN_EXTRA_NODE"
)

// Exit codes.
const (
	exitOK        = 0
	exitFatal     = 1 // logrus.Fatal in k3s: bad flags, start-up errors, a dead component
	exitNoCommand = 3 // urfave/cli's "No help topic"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	log := &logger{w: stderr}
	// urfave/cli's root: global flags, then a command.
	for len(args) > 0 && strings.HasPrefix(args[0], "-") {
		switch a := args[0]; a {
		case "-v", "--v", "-version", "--version":
			fmt.Fprintf(stdout, "k3s version v%s (standin)\ngo version %s\n", strings.TrimPrefix(version, "v"), runtime.Version())
			return exitOK
		case "-h", "--h", "-help", "--help":
			fmt.Fprint(stdout, rootUsage)
			return exitOK
		case "--debug", "-debug":
			args = args[1:]
		default:
			name := strings.TrimLeft(strings.SplitN(a, "=", 2)[0], "-")
			fmt.Fprintf(stdout, "Incorrect Usage: flag provided but not defined: -%s\n\n%s", name, rootUsage)
			log.fatal("flag provided but not defined: -%s", name)
			return exitFatal
		}
	}
	if len(args) == 0 {
		fmt.Fprint(stdout, rootUsage)
		return exitOK
	}
	switch args[0] {
	case "server":
		return serverCommand(args[1:], stdout, log)
	case "help", "h":
		fmt.Fprint(stdout, rootUsage)
		return exitOK
	default:
		// urfave/cli v1 falls back to its help command, which fails this way.
		fmt.Fprintf(stderr, "No help topic for '%s'\n", args[0])
		return exitNoCommand
	}
}

const rootUsage = `NAME:
   k3s - Kubernetes, but small and simple (stand-in for tests)

USAGE:
   k3s [global options] command [command options] [arguments...]

COMMANDS:
   server  Run management server

GLOBAL OPTIONS:
   --debug        (logging) Turn on debug logs
   --help, -h     show help
   --version, -v  print the version
`

func serverCommand(args []string, stdout io.Writer, log *logger) int {
	cfg, fs := newServerFlags()
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, serverUsage(fs))
			return exitOK
		}
		fmt.Fprintf(stdout, "Incorrect Usage: %v\n\n%s", err, serverUsage(fs))
		log.fatal("%v", err)
		return exitFatal
	}
	if fs.NArg() > 0 {
		// k3s would ignore them; rdd passing any is a bug worth seeing.
		log.fatal("unexpected arguments after the flags: %q", fs.Args())
		return exitFatal
	}
	if err := cfg.resolve(); err != nil {
		log.fatal("%v", err)
		return exitFatal
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	return serve(ctx, cfg, log)
}

// logger writes logrus's text format (k3s's, when stderr is not a terminal).
type logger struct{ w io.Writer }

func (l *logger) line(level, format string, args ...any) {
	fmt.Fprintf(l.w, "time=%q level=%s msg=%q\n", time.Now().Format(time.RFC3339), level, fmt.Sprintf(format, args...))
}

func (l *logger) info(format string, args ...any)  { l.line("info", format, args...) }
func (l *logger) warn(format string, args ...any)  { l.line("warning", format, args...) }
func (l *logger) fatal(format string, args ...any) { l.line("fatal", format, args...) }

// exitAfter maps a component's death to k3s's: fatal, exit 1.
func exitAfter(log *logger, what string) int {
	log.fatal("%s", what)
	return exitFatal
}

// standinDir holds the stand-in's own files under the data directory.
func standinDir(dataDir string) string { return filepath.Join(dataDir, "standin") }

func serve(ctx context.Context, cfg *serverConfig, log *logger) int {
	began := time.Now()
	log.info("Starting k3s v%s (standin)", strings.TrimPrefix(version, "v"))
	for _, f := range cfg.ignored {
		log.info("standin: --%s accepted and ignored (nothing here runs what it configures)", f)
	}
	useRepoAPIServer()
	srv, err := kubetest.StartInDir(ctx, kubetest.DirOptions{
		Dir:                filepath.Join(cfg.dataDir, "server"),
		BindAddress:        cfg.bindAddress,
		Port:               cfg.httpsPort,
		ExtraAPIServerArgs: cfg.apiArgs,
		Logf:               log.info,
	})
	if err != nil {
		if ctx.Err() != nil {
			log.info("standin: stopped during start-up: %v", context.Cause(ctx))
			return exitOK
		}
		return exitAfter(log, "starting kubernetes: "+err.Error())
	}
	defer func() {
		if err := srv.Stop(); err != nil {
			log.warn("standin: stop: %v", err)
		}
		removePIDFiles(cfg.dataDir)
	}()
	log.info("standin: kube-apiserver (pid %d) and etcd (pid %d) ready after %s", srv.APIServerPID(), srv.EtcdPID(), time.Since(began).Round(time.Millisecond))
	if err := writePIDFiles(cfg.dataDir, srv); err != nil {
		return exitAfter(log, err.Error())
	}
	kc, err := srv.KubeconfigBytes(kubetest.CredAdmin)
	if err != nil {
		return exitAfter(log, err.Error())
	}
	if err := writeFileAtomic(cfg.kubeconfig, kc, cfg.kubeconfigMode); err != nil {
		return exitAfter(log, fmt.Sprintf("write kubeconfig: %v", err))
	}
	log.info("Wrote kubeconfig %s (%s after start)", cfg.kubeconfig, time.Since(began).Round(time.Millisecond))

	nodesDone := make(chan struct{})
	nodeCtx, cancelNodes := context.WithCancel(ctx)
	defer func() {
		cancelNodes()
		<-nodesDone
	}()
	if cfg.disableAgent {
		close(nodesDone)
	} else {
		go func() {
			defer close(nodesDone)
			runNodes(nodeCtx, srv, cfg, log)
		}()
	}

	select {
	case <-ctx.Done():
		log.info("standin: %v, shutting down", context.Cause(ctx))
		return exitOK
	case <-srv.APIServerDone():
		return exitAfter(log, "apiserver exited: "+srv.APIServerExit())
	case <-srv.EtcdDone():
		return exitAfter(log, "etcd exited: "+srv.EtcdExit())
	}
}

// useRepoAPIServer points kubetest at the kube-apiserver cached in the
// repository the stand-in was built into, so it works from any working
// directory (rdd's daemon under test runs elsewhere).
func useRepoAPIServer() {
	if os.Getenv(kubetest.EnvAPIServer) != "" {
		return
	}
	exe, err := os.Executable()
	if err != nil {
		return
	}
	root, err := kubetest.RepoRoot(filepath.Dir(exe))
	if err != nil {
		return
	}
	if fi, err := os.Stat(kubetest.CachePath(root)); err == nil && fi.Mode().IsRegular() {
		_ = os.Setenv(kubetest.EnvAPIServer, kubetest.CachePath(root))
	}
}

func writePIDFiles(dataDir string, srv *kubetest.Server) error {
	dir := standinDir(dataDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	for name, pid := range map[string]int{"apiserver.pid": srv.APIServerPID(), "etcd.pid": srv.EtcdPID()} {
		if err := writeFileAtomic(filepath.Join(dir, name), []byte(strconv.Itoa(pid)+"\n"), 0o600); err != nil {
			return err
		}
	}
	return nil
}

// removePIDFiles keeps a later reader from signalling a recycled pid.
func removePIDFiles(dataDir string) {
	for _, name := range []string{"apiserver.pid", "etcd.pid"} {
		_ = os.Remove(filepath.Join(standinDir(dataDir), name))
	}
}

// writeFileAtomic writes data with mode (umask does not apply) through a
// rename, so a reader polling for path never sees it half written.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
