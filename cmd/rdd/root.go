package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/rdd-project/rdd/internal/api/client"
	"github.com/rdd-project/rdd/internal/cli/exit"
	"github.com/rdd-project/rdd/internal/cli/svc"
	"github.com/rdd-project/rdd/internal/paths"
)

// env is everything a command needs from outside: the instance paths, stdio,
// the environment and the clock. main builds one per invocation; tests build
// their own and run newRootCommand in-process.
type env struct {
	paths paths.Paths
	// pathsErr is why paths could not be resolved (no HOME, socket path too
	// long); commands that need the instance report it.
	pathsErr error
	// resolve resolves the paths of an instance suffix ("" is the
	// default), for --instance given after the command name.
	resolve func(instance string) (paths.Paths, error)

	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	environ        func() []string
	now            func() time.Time
	build          buildInfo
	// stderrTTY says stderr is a terminal: a wait's heartbeat then updates
	// one line in place.
	stderrTTY bool
	// stdinTTY says stdin is a terminal: with stderrTTY, set may ask
	// before restarting the machine.
	stdinTTY bool
	// newTicker and newTimer replace time.NewTicker and time.NewTimer in
	// waits, so tests drive heartbeats and deadlines without waiting.
	newTicker func(time.Duration) (<-chan time.Time, func())
	newTimer  func(time.Duration) (<-chan time.Time, func())

	// startDaemon makes sure the daemon serves: the implicit start of App
	// commands. nil means spawning this executable (startDaemonProcess).
	startDaemon func(ctx context.Context) error
	// daemonReady, if non-nil, is closed once `rdd daemon` serves (tests
	// wait on it instead of polling the socket).
	daemonReady chan<- struct{}
	// catchInterrupts, if non-nil, makes SIGINT and SIGTERM end the
	// command's context instead of the process (see endsByItself).
	catchInterrupts func()
}

// instance returns the resolved paths, or why they could not be resolved.
func (e *env) instance() (paths.Paths, error) {
	if e.pathsErr != nil {
		return paths.Paths{}, e.pathsErr
	}
	return e.paths, nil
}

// client returns an API client for the instance's socket.
func (e *env) client() (*client.Client, error) {
	p, err := e.instance()
	if err != nil {
		return nil, err
	}
	return client.New(p.Socket), nil
}

// implicitStartTimeout is the limit of the implicit daemon start (behavior.md §9.1).
const implicitStartTimeout = svc.DefaultStartTimeout

// ensureDaemon starts the daemon if it does not serve, waiting up to 90 s.
func (e *env) ensureDaemon(ctx context.Context) error {
	if _, err := e.instance(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, implicitStartTimeout)
	defer cancel()
	if e.startDaemon != nil {
		return e.startDaemon(ctx)
	}
	pid, err := e.startDaemonProcess(ctx)
	if err == nil && pid != 0 {
		fmt.Fprintf(e.stderr, "Started the rdd daemon for instance %s (pid %d, log %s)\n", e.paths.Instance, pid, e.paths.DaemonLog)
	}
	return err
}

// startDaemonProcess spawns `rdd --instance S daemon` detached unless a
// daemon runs, and waits until it serves (svc.Start). It returns the PID it
// spawned, 0 when none.
func (e *env) startDaemonProcess(ctx context.Context) (int, error) {
	exe, err := os.Executable()
	if err != nil {
		return 0, fmt.Errorf("find the rdd executable: %w", err)
	}
	c := client.New(e.paths.Socket)
	pid, err := svc.Start(ctx, svc.StartOptions{
		Paths:   e.paths,
		Command: []string{exe, "--instance", e.paths.Instance, "daemon"},
		Healthz: func(ctx context.Context) error { _, err := c.Healthz(ctx); return err },
		Getenv:  e.getenv,
	})
	return pid, err
}

// execute runs the command line args and returns the exit code. Only main
// turns it into os.Exit. A non-nil pre is an error found before cobra ran.
func execute(ctx context.Context, e *env, args []string, pre error) int {
	err := pre
	var cmd *cobra.Command
	if err == nil {
		root := newRootCommandFor(e, onlySubcommand(args))
		root.SetArgs(args)
		cmd, err = root.ExecuteContextC(ctx)
	}
	if err != nil && errors.Is(err, context.Canceled) && ctx.Err() != nil {
		fmt.Fprintln(e.stderr, "Interrupted")
		return 130
	}
	code := exit.Classify(err)
	if err != nil && !exit.IsSilent(err) {
		fmt.Fprintf(e.stderr, "Error: %v\n", err)
		if code == exit.CodeUsage && cmd != nil {
			fmt.Fprintf(e.stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
		}
	}
	return code
}

// newRootCommand builds the whole command tree for e.
func newRootCommand(e *env) *cobra.Command { return newRootCommandFor(e, "") }

// newRootCommandFor builds the root command with only the subcommand
// named only, or with all of them when only is "".
func newRootCommandFor(e *env, only string) *cobra.Command {
	var versionFlag string
	root := &cobra.Command{
		Use:   "rdd",
		Short: "A local container and Kubernetes developer environment",
		Long: `
			rdd runs a container engine and, optionally, Kubernetes in a local VM
			(or on the host), driven by a daemon that records every change in an
			event log.

			The instance is chosen by --instance NAME (anywhere before a
			"--"; for rdd run, before the command), else $RDD_INSTANCE, else "2".
			Its daemon (rdd daemon) is started on demand by set, start and run,
			or with rdd svc start.

			Exit codes: 0 ok, 1 error, 2 usage, 3 rejected by validation,
			4 wait deadline, 5 status read the event log because the daemon
			is not running; rdd run exits with its command's code.

			status, events, why and replay read the event log on disk when
			the daemon is not running, and say so.`,
		Example: `
			rdd start                        # create the App if needed and run it
			rdd set kubernetes.enabled=true  # enable Kubernetes and wait until settled
			rdd status                       # conditions of the App
			rdd --instance dev status -o json
			rdd run kubectl get nodes`,
		Args:          rootArgs,
		SilenceErrors: true,
		SilenceUsage:  true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if e.catchInterrupts != nil && !endsByItself(cmd) {
				e.catchInterrupts()
			}
			if f := cmd.Flags().Lookup("instance"); f != nil && f.Changed {
				return e.selectInstance(f.Value.String())
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cmd.Flags().Changed("version") {
				return printVersion(e, versionFlag)
			}
			return cmd.Help()
		},
	}
	root.Flags().StringVar(&versionFlag, "version", "", "print the version and exit (--version=raw for build details)")
	root.Flags().Lookup("version").NoOptDefVal = "true"
	// main takes --instance off the front of the command line before cobra
	// runs (rdd run must not see it); this declaration serves every other
	// position, help and completion.
	root.PersistentFlags().String("instance", "", `the instance to use (default $RDD_INSTANCE, else "`+paths.DefaultInstance+`")`)
	_ = root.RegisterFlagCompletionFunc("instance", func(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
		return e.instanceNames(), cobra.ShellCompDirectiveNoFileComp
	})
	root.CompletionOptions.DisableDefaultCmd = true
	root.SetIn(e.stdin)
	root.SetOut(e.stdout)
	root.SetErr(e.stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return exit.Usage(flagError(err)) })
	formatHelpOnShow(root)

	root.AddGroup(
		&cobra.Group{ID: "app", Title: "App commands:"},
		&cobra.Group{ID: "inspect", Title: "Inspecting state and history:"},
		&cobra.Group{ID: "service", Title: "Daemon commands:"},
	)
	for _, sub := range subcommands {
		if only != "" && sub.name != only {
			continue
		}
		c := sub.build(e)
		c.GroupID = sub.group
		root.AddCommand(c)
	}
	return root
}

// endsByItself tells the commands that only read and print, and end by
// themselves: an interrupt may kill them as it would by default, with
// nothing to clean up or report. Catching signals costs every command a
// thread blocked in the signal loop, which was a quarter of the whole run
// of `rdd status -o json`; the commands that wait, stream, hold locks or
// serve still catch them.
func endsByItself(cmd *cobra.Command) bool {
	on := func(flag string) bool {
		f := cmd.Flags().Lookup(flag)
		return f != nil && f.Value.String() == "true"
	}
	switch cmd.CommandPath() {
	case "rdd status":
		return !on("watch")
	case "rdd events":
		return !on("follow")
	case "rdd why", "rdd version", "rdd svc paths", "rdd svc status":
		return true
	}
	return false
}

// subcommands are the commands under rdd, in the order help lists them
// within their group.
var subcommands = []struct {
	name, group string
	build       func(*env) *cobra.Command
}{
	{"set", "app", newSetCommand},
	{"start", "app", newStartCommand},
	{"stop", "app", newStopCommand},
	{"run", "app", newRunCommand},
	{"status", "inspect", newStatusCommand},
	{"events", "inspect", newEventsCommand},
	{"replay", "inspect", newReplayCommand},
	{"why", "inspect", newWhyCommand},
	{"svc", "service", newSvcCommand},
	{"daemon", "service", newDaemonCommand},
	{"version", "", newVersionCommand},
	{"completion", "", newCompletionCommand},
}

// onlySubcommand returns the subcommand args run when the tree needs no
// other: args name it first, so neither help nor completion lists the
// commands and no suggestion for a mistyped name is needed. The flags of
// every command cost each run about 50 KB of allocations in a fresh heap;
// a command builds its own. "" means the whole tree.
func onlySubcommand(args []string) string {
	if len(args) == 0 {
		return ""
	}
	for _, sub := range subcommands {
		if sub.name == args[0] && sub.name != "completion" {
			return sub.name
		}
	}
	return ""
}

// rootArgs rejects unknown commands as usage errors (cobra's own check
// returns a plain error), with cobra's suggestions for a mistyped name.
func rootArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
		if cmd.SuggestionsMinimumDistance <= 0 {
			cmd.SuggestionsMinimumDistance = 2 // cobra's default, applied only on its own path
		}
		if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
			msg += "\n\nDid you mean this?\n\t" + strings.Join(s, "\n\t") + "\n"
		}
		return exit.Usage(errors.New(msg))
	}
	return nil
}

// flagError rewrites pflag's parse errors, which quote strconv ("parsing
// \"maybe\": invalid syntax"), as what the flag accepts.
func flagError(err error) error {
	iv, ok := errors.AsType[*pflag.InvalidValueError](err)
	if !ok {
		return err
	}
	f := iv.GetFlag()
	want := ""
	switch f.Value.Type() {
	case "bool":
		want = "true or false"
	case "duration":
		want = "a duration such as 90s, 5m or 1h30m"
	case "int", "uint64":
		want = "a whole number"
	default:
		return err
	}
	return fmt.Errorf("invalid value %q for --%s: want %s", iv.GetValue(), f.Name, want)
}

// groupArgs is rootArgs for a command that only groups subcommands.
var groupArgs = rootArgs

// usageArgs makes the errors of an argument validator usage errors.
func usageArgs(v cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := v(cmd, args); err != nil {
			return exit.Usage(err)
		}
		return nil
	}
}

// Long and Example texts are raw string literals indented like the code
// around them. They are formatted only when help shows them: formatting
// the texts of every command cost each run, `rdd status -o json` included,
// about a third of building the command tree.

// formatHelpOnShow makes root's help and usage format the Long and Example
// texts of the command they show first.
func formatHelpOnShow(root *cobra.Command) {
	help, usage := root.HelpFunc(), root.UsageFunc()
	root.SetHelpFunc(func(c *cobra.Command, args []string) {
		formatHelpText(c)
		help(c, args)
	})
	root.SetUsageFunc(func(c *cobra.Command) error {
		formatHelpText(c)
		return usage(c)
	})
}

// formatHelpText formats c's Long and Example texts; formatting twice
// changes nothing.
func formatHelpText(c *cobra.Command) {
	c.Long = dedent(c.Long)
	c.Example = indentExample(c.Example)
}

// dedent drops the leading newline of s and the indentation of its first
// line from every line.
func dedent(s string) string {
	s = strings.TrimPrefix(s, "\n")
	indent := s[:len(s)-len(strings.TrimLeft(s, "\t "))]
	if indent == "" {
		return s
	}
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimPrefix(l, indent)
	}
	return strings.Join(lines, "\n")
}

// indentExample dedents s, then indents its lines by two spaces.
func indentExample(s string) string {
	lines := strings.Split(dedent(s), "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = "  " + l
		}
	}
	return strings.Join(lines, "\n")
}

// usageErr and usageErrf are exit.Usage for flag values that cobra accepted
// but the command cannot use.
func usageErr(err error) error { return exit.Usage(err) }

func usageErrf(format string, args ...any) error { return exit.Usagef(format, args...) }
