package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/rdd-project/rdd/internal/cli/exit"
	"github.com/rdd-project/rdd/internal/paths"
	"github.com/rdd-project/rdd/internal/spec"
)

func newRunCommand(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "run [--] COMMAND [ARG...]",
		Short: "Run a command against the App's container engine and cluster",
		Long: `
			Start the App (creating it when it does not exist), wait until it has
			settled, then run COMMAND with an environment that points at this
			instance: PATH starts with the instance's bin directory (when it exists),
			DOCKER_CONTEXT names the instance's Docker context, KUBECONFIG is the
			instance's kubeconfig, and DOCKER_HOST is removed. Your own Docker
			and kube contexts are left unchanged.

			When the App does not exist and COMMAND is kubectl or helm,
			Kubernetes is enabled as well. An existing App is only started,
			never reconfigured. docker and docker-compose need the moby
			engine: with containerd, rdd run fails at once and says how to switch.

			rdd run exits with COMMAND's exit code (255 when a signal ended it).
			Everything after run belongs to COMMAND; a leading "--" is dropped,
			so rdd run -- --help runs a command named --help.`,
		Example: `
			rdd run docker ps
			rdd run kubectl get nodes
			rdd run -- sh -c 'echo $DOCKER_CONTEXT'`,
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
				return cmd.Help()
			}
			inst, args, found, err := cutInstance(args)
			if err != nil {
				return err
			}
			if found {
				if err := e.selectInstance(inst); err != nil {
					return err
				}
			}
			args = runArgs(args)
			if len(args) == 0 {
				return usageErrf("rdd run needs a command to run")
			}
			return e.runCommand(cmd, args)
		},
	}
	return cmd
}

// runArgs drops the leading "--" that separates rdd's arguments from the command's.
func runArgs(args []string) []string {
	if len(args) > 0 && args[0] == "--" {
		return args[1:]
	}
	return args
}

// isKubeCommand reports whether name is kubectl or helm (basename, without .exe).
func isKubeCommand(name string) bool {
	base := strings.TrimSuffix(filepath.Base(name), ".exe")
	return base == "kubectl" || base == "helm"
}

// isDockerCommand reports whether name is a client of the Docker API that
// finds the engine through DOCKER_CONTEXT (basename, without .exe).
func isDockerCommand(name string) bool {
	base := strings.TrimSuffix(filepath.Base(name), ".exe")
	return base == "docker" || base == "docker-compose"
}

// dockerNeedsMoby is the error of `rdd run docker …` when the App runs
// containerd: there is no Docker API and so no Docker context to point at,
// and the docker CLI would fail later with "context not found".
func dockerNeedsMoby(p paths.Paths, command string) error {
	flag := ""
	if p.Instance != paths.DefaultInstance {
		flag = " --instance " + p.Instance
	}
	return fmt.Errorf("rdd run %s: the App of instance %s runs the containerd engine, and the %s CLI needs the moby engine (the Docker API); "+
		"switch with: rdd%s set containerEngine.name=moby (this restarts the machine), or use a containerd client such as nerdctl",
		command, p.Instance, filepath.Base(command), flag)
}

// runEnv is environ with PATH prefixed by H/bin (only when that directory
// exists: a directory that does not is a PATH entry anyone could create
// later), DOCKER_CONTEXT=N, KUBECONFIG=H/kube.config and no DOCKER_HOST.
func runEnv(environ []string, p paths.Paths) []string {
	out := make([]string, 0, len(environ)+3)
	path := ""
	for _, kv := range environ {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "PATH":
			path = v
		case "DOCKER_CONTEXT", "KUBECONFIG", "DOCKER_HOST":
		default:
			out = append(out, kv)
		}
	}
	newPath := path
	if st, err := os.Stat(p.BinDir); err == nil && st.IsDir() {
		newPath = p.BinDir
		if path != "" {
			newPath += string(os.PathListSeparator) + path
		}
	}
	return append(out, "PATH="+newPath, "DOCKER_CONTEXT="+p.Name, "KUBECONFIG="+p.KubeConfig)
}

// lookPath finds name like exec.LookPath, but in the PATH of the child's
// environment, so tools in H/bin win.
func lookPath(name string, environ []string) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	var path string
	for _, kv := range environ {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path = v
		}
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		f := filepath.Join(dir, name)
		if st, err := os.Stat(f); err == nil && st.Mode().IsRegular() && st.Mode().Perm()&0o111 != 0 {
			return f, nil
		}
	}
	return "", fmt.Errorf("%q: %w", name, exec.ErrNotFound)
}

// runCommand starts the App, waits for it to settle, then runs args and
// returns a silent exit error carrying the child's exit code.
func (e *env) runCommand(cmd *cobra.Command, args []string) error {
	ctx := cmd.Context()
	if err := e.ensureDaemon(ctx); err != nil {
		return err
	}
	c, err := e.client()
	if err != nil {
		return err
	}
	snap, err := c.Status(ctx)
	if err != nil {
		return err
	}
	if isDockerCommand(args[0]) && snap.Exists && snap.Spec != nil && snap.Spec.ContainerEngine.Name == spec.EngineContainerd {
		return dockerNeedsMoby(e.paths, args[0])
	}
	props := map[string]string{"running": "true"}
	if !snap.Exists && isKubeCommand(args[0]) {
		props["kubernetes.enabled"] = "true"
	}
	o := waitOptions{wait: true, timeout: defaultWaitTimeout}
	if err := e.applySpec(ctx, props, o, "rdd run "+args[0]); err != nil {
		return err
	}

	childEnv := runEnv(e.environ(), e.paths)
	path, err := lookPath(args[0], childEnv)
	if err != nil {
		return &exit.Error{Code: 127, Err: fmt.Errorf("rdd run: %w", err)}
	}
	child := exec.Command(path, args[1:]...)
	child.Args[0] = args[0]
	child.Env = childEnv
	child.Stdin, child.Stdout, child.Stderr = e.stdin, e.stdout, e.stderr
	if err := child.Start(); err != nil {
		code := 126
		if errors.Is(err, fs.ErrNotExist) {
			code = 127
		}
		return &exit.Error{Code: code, Err: fmt.Errorf("rdd run: %w", err)}
	}
	// The terminal sends SIGINT to the whole foreground process group, so
	// the child already gets it (main's handler keeps rdd alive). SIGTERM
	// aimed at rdd alone is passed on.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM)
	defer signal.Stop(sigs)
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			select {
			case s := <-sigs:
				_ = child.Process.Signal(s)
			case <-done:
				return
			}
		}
	}()
	return childExit(child.Wait())
}

// childExit maps the child's wait error to rdd's exit: the child's code,
// 255 for a signal, nil for success.
func childExit(err error) error {
	if err == nil {
		return nil
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return fmt.Errorf("rdd run: %w", err)
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return exit.Silent(255)
	}
	return exit.Silent(ee.ExitCode())
}
