package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/rdd-project/rdd/internal/api/client"
	"github.com/rdd-project/rdd/internal/cli/render"
	"github.com/rdd-project/rdd/internal/cli/svc"
	"github.com/rdd-project/rdd/internal/daemon"
	"github.com/rdd-project/rdd/internal/paths"
)

func newSvcCommand(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "svc",
		Short: "Manage the rdd daemon of the instance",
		Long: `
			Start, stop, inspect and delete the daemon of the instance, and show
			its logs and file locations. App commands start the daemon on
			demand, so svc start is rarely needed.`,
		Example: `
			rdd svc start
			rdd svc status --json
			rdd svc logs -f
			rdd svc paths socket`,
		Args: groupArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newSvcStartCommand(e), newSvcStopCommand(e), newSvcStatusCommand(e),
		newSvcLogsCommand(e), newSvcPathsCommand(e), newSvcDeleteCommand(e))
	cmd.AddCommand(newSvcCheckCommand(e), newSvcRepairCommand(e))
	return cmd
}

// withTimeout is context.WithTimeout where 0 means no deadline.
func withTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if d <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, d)
}

func newSvcStartCommand(e *env) *cobra.Command {
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "start [--timeout=DUR]",
		Short: "Start the daemon and wait until it serves",
		Long: `
			Start rdd daemon for the instance, detached from this terminal (its
			output goes to rdd.stdout.log and rdd.stderr.log in the log
			directory), and wait until it answers on its socket. If a daemon
			already runs, only wait for it. A wait that reaches --timeout exits 4.`,
		Example: `
			rdd svc start
			RDD_VM_DRIVER=host rdd svc start --timeout=2m`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := e.instance()
			if err != nil {
				return err
			}
			ctx, cancel := withTimeout(cmd.Context(), timeout)
			defer cancel()
			if e.startDaemon != nil {
				err = e.startDaemon(ctx)
			} else {
				_, err = e.startDaemonProcess(ctx)
			}
			if err != nil {
				return err
			}
			pid, _ := svc.RunningPID(p)
			_, err = fmt.Fprintf(e.stdout, "rdd daemon for instance %s is ready (pid %d, socket %s)\n", p.Instance, pid, p.Socket)
			return err
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", svc.DefaultStartTimeout, "how long to wait for the daemon to serve; 0 means no limit")
	return cmd
}

// defaultStopGrace is how long svc stop lets the daemon exit after SIGINT
// before it sends SIGKILL. A clean stop takes well under a second; what
// outlives this is wedged (a blocked file system, a hung driver call).
const defaultStopGrace = time.Minute

func newSvcStopCommand(e *env) *cobra.Command {
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "stop [--timeout=DUR]",
		Short: "Stop the daemon gracefully, or kill it when it does not stop",
		Long: `
			Send SIGINT to the daemon and wait until its process has exited. The
			App's VM and engine keep their state in the event log and are
			recovered at the next start. A daemon still running after --timeout
			is sent SIGKILL, and the command says so; what it supervised is
			adopted or stopped by the next start. --timeout=0 waits without a
			limit and never kills. With no daemon running it exits 0.`,
		Example: `
			rdd svc stop
			rdd svc stop --timeout=10s`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := e.instance()
			if err != nil {
				return err
			}
			r, err := svc.StopOrKill(cmd.Context(), p, timeout)
			if err != nil {
				return err
			}
			msg := "is not running"
			switch {
			case r.Killed:
				msg = fmt.Sprintf("did not exit within %v of SIGINT and was killed (SIGKILL, pid %d); the next start adopts or stops what it left running", timeout, r.PID)
			case r.PID != 0:
				msg = "has stopped"
			}
			_, err = fmt.Fprintf(e.stdout, "rdd daemon for instance %s %s\n", p.Instance, msg)
			return err
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", defaultStopGrace, "how long the daemon gets to exit before it is killed; 0 means no limit")
	return cmd
}

func newSvcStatusCommand(e *env) *cobra.Command {
	var out outputFlags
	formats := []render.Format{render.Text, render.JSON}
	cmd := &cobra.Command{
		Use:   "status [-o text|json]",
		Short: "Show whether the daemon is created and running",
		Long: `
			Show whether the instance is created (its event log exists), whether
			its daemon runs and with which PID, its socket, and whether the
			daemon answers on it.`,
		Example: `
			rdd svc status
			rdd svc status --json`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := out.format(formats...)
			if err != nil {
				return err
			}
			p, err := e.instance()
			if err != nil {
				return err
			}
			st, err := svc.Inspect(p)
			if err != nil {
				return err
			}
			if st.Running {
				ctx, cancel := context.WithTimeout(cmd.Context(), 2*time.Second)
				_, err := client.New(p.Socket).Healthz(ctx)
				st.Serving = err == nil
				cancel()
			}
			if f == render.JSON {
				return render.WriteJSON(e.stdout, st)
			}
			pid := "-"
			if st.Running {
				pid = fmt.Sprint(st.PID)
			}
			return render.Table(e.stdout, [][]string{
				{"instance:", st.Instance + " (" + st.Name + ")"},
				{"created:", fmt.Sprint(st.Created)},
				{"running:", fmt.Sprint(st.Running)},
				{"pid:", pid},
				{"serving:", fmt.Sprint(st.Serving)},
				{"socket:", st.Socket},
			})
		},
	}
	out.add(cmd, formats...)
	return cmd
}

func newSvcPathsCommand(e *env) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "paths [KEY] [-o table|json|shell]",
		Short: "Print the instance's directories and files",
		Long: `
			Print the locations the instance uses. With KEY, print only that
			path. -o shell prints KEY='VALUE' lines for eval.

			Keys: ` + strings.Join(pathKeys(), ", "),
		Example: `
			rdd svc paths
			rdd svc paths socket
			eval "$(rdd svc paths -o shell)"; echo "$log_dir"`,
		Args: usageArgs(cobra.MaximumNArgs(1)),
		ValidArgsFunction: func(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
			return pathKeys(), cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(_ *cobra.Command, args []string) error {
			p, err := e.instance()
			if err != nil {
				return err
			}
			return writePaths(e, p.Map(), args, output)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table, json or shell")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]cobra.Completion{"table", "json", "shell"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

func pathKeys() []string {
	return slices.Sorted(maps.Keys(paths.Paths{}.Map()))
}

// writePaths prints m (or m[args[0]]) in the given format.
func writePaths(e *env, m map[string]string, args []string, output string) error {
	keys := slices.Sorted(maps.Keys(m))
	if len(args) == 1 {
		v, ok := m[args[0]]
		if !ok {
			return usageErrf("unknown key %q; valid keys: %s", args[0], strings.Join(keys, ", "))
		}
		_, err := fmt.Fprintln(e.stdout, v)
		return err
	}
	switch output {
	case "table":
		rows := [][]string{{"KEY", "PATH"}}
		for _, k := range keys {
			rows = append(rows, []string{k, m[k]})
		}
		return render.Table(e.stdout, rows)
	case "json":
		// One line like every other -o json (doc.go), not indented.
		return render.WriteJSON(e.stdout, m)
	case "shell":
		var b strings.Builder
		for _, k := range keys {
			fmt.Fprintf(&b, "%s=%s\n", k, shellQuote(m[k]))
		}
		_, err := fmt.Fprint(e.stdout, b.String())
		return err
	}
	return usageErrf("invalid output format %q: valid formats: table, json, shell", output)
}

// shellQuote quotes s for POSIX shells.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func newSvcDeleteCommand(e *env) *cobra.Command {
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "delete [--timeout=DUR]",
		Short: "Stop the daemon and delete the instance's files, killing it when it does not stop",
		Long: `
			Delete the instance: when the daemon serves and the App exists, delete
			the App first (it stops the VM and engine and removes the instance's
			Docker and kube contexts); then stop the daemon with SIGINT and remove
			the service, short and log directories (logs are kept when
			RDD_KEEP_LOGS is set). --timeout bounds both steps: a daemon still
			running then is sent SIGKILL, and the command says so on stderr and
			stops the engine or VM the daemon left running before it deletes the
			files. --timeout=0 waits without a limit and never kills. Deleting an
			instance that does not exist succeeds.`,
		Example: `
			rdd svc delete
			rdd svc delete --timeout=10s
			RDD_KEEP_LOGS=1 rdd --instance test svc delete`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := e.instance()
			if err != nil {
				return err
			}
			deadline := time.Now().Add(timeout)
			ctx, cancel := withTimeout(cmd.Context(), timeout)
			err = e.deleteApp(ctx)
			cancel()
			if err != nil {
				if cmd.Context().Err() != nil || !errors.Is(err, context.DeadlineExceeded) {
					return err
				}
				fmt.Fprintf(e.stderr, "Warning: the App of instance %s was not deleted within --timeout (%v); stopping the daemon\n", p.Instance, timeout)
			}
			var grace time.Duration
			if timeout > 0 {
				// --timeout bounds the whole delete; a daemon that used it
				// up answering the App deletion is killed at once.
				grace = max(time.Until(deadline), time.Millisecond)
			}
			r, err := svc.Delete(cmd.Context(), p, svc.DeleteOptions{
				KeepLogs: e.getenv("RDD_KEEP_LOGS") != "",
				Grace:    grace,
				Release:  e.releaseMachine,
			})
			if r.Stop.Killed {
				fmt.Fprintf(e.stderr, "rdd daemon for instance %s (pid %d) did not exit within --timeout (%v) and was killed (SIGKILL); the engine or VM it left running is stopped and deleted with the instance\n", p.Instance, r.Stop.PID, timeout)
			}
			if err != nil {
				return err
			}
			msg := "has been deleted"
			if !r.Existed {
				msg = "does not exist"
			}
			_, err = fmt.Fprintf(e.stdout, "instance %s %s\n", p.Instance, msg)
			return err
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", defaultStopGrace, "how long the App deletion and the daemon's exit may take before the daemon is killed; 0 means no limit")
	return cmd
}

// releaseTimeout bounds the forced deletion of a machine whose daemon is
// gone: SIGTERM with a short grace, SIGKILL, unmounts (internal/vm/host).
const releaseTimeout = time.Minute

// releaseMachine deletes the machine (engine, k3s, VM) that a daemon which
// did not stop gracefully may have left running, with the VM driver that
// daemon recorded, so that no process or mount outlives the instance; then
// the docker and kube contexts the App deletion would have removed.
func (e *env) releaseMachine(ctx context.Context) error {
	p := e.paths
	if _, err := os.Stat(p.EventLog); errors.Is(err, fs.ErrNotExist) {
		return nil // no daemon ever ran here, so nothing it started can run
	}
	driver := "" // unreadable log: the driver a daemon started now would use
	if l, err := e.openOffline(); err == nil {
		s, err := l.Status(ctx)
		_ = l.Close()
		if err == nil {
			driver = s.Daemon.VMDriver
		}
	}
	ctx, cancel := context.WithTimeout(ctx, releaseTimeout)
	defer cancel()
	err := daemon.DeleteMachine(ctx, p, driver, e.getenv)
	if errors.Is(err, daemon.ErrDriverUnavailable) {
		// Refusing would leave the instance undeletable for good.
		fmt.Fprintf(e.stderr, "Warning: %v; deleting the instance's files anyway: stop what that driver may have left running by hand\n", err)
		return nil
	}
	if err != nil {
		return fmt.Errorf("%w; no file of the instance was deleted: run rdd svc delete again", err)
	}
	if err := daemon.RemoveContexts(ctx, p, e.getenv); err != nil {
		// Stale contexts are the user's to clean; the instance still goes.
		fmt.Fprintf(e.stderr, "Warning: the docker or kube context of instance %s was not removed: %v; remove it with docker context rm %s and kubectl config delete-context %s\n", p.Instance, err, p.Name, p.Name)
	}
	return nil
}

// deleteApp deletes the App when a daemon serves and the App exists, so its
// VM, engine and contexts are cleaned up before the files go (F15). A
// deadline is returned; other failures are reported and do not block the
// deletion of the instance.
func (e *env) deleteApp(ctx context.Context) error {
	c := client.New(e.paths.Socket)
	s, err := c.Status(ctx)
	if err == nil && s.Exists {
		err = c.DeleteApp(ctx)
	}
	switch {
	case err == nil || errors.Is(err, client.ErrDaemonNotRunning):
		return nil
	case ctx.Err() != nil:
		return fmt.Errorf("delete the App: %w", ctx.Err())
	}
	fmt.Fprintf(e.stderr, "Warning: could not delete the App before deleting the instance: %v\n", err)
	return nil
}
