package main

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/rdd-project/rdd/internal/api"
	"github.com/rdd-project/rdd/internal/api/client"
	"github.com/rdd-project/rdd/internal/cli/render"
)

// buildInfo is what `rdd version` prints; main fills it from -ldflags.
type buildInfo struct {
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	BuildDate string `json:"buildDate,omitempty"`
	GoVersion string `json:"goVersion"`
	Platform  string `json:"platform"`
}

func (b buildInfo) complete() buildInfo {
	b.GoVersion = runtime.Version()
	b.Platform = runtime.GOOS + "/" + runtime.GOARCH
	return b
}

// short is the one-line form of `rdd version` and `rdd --version`.
func (b buildInfo) short() string {
	built := ""
	if b.BuildDate != "" {
		built = "built " + b.BuildDate + ", "
	}
	return fmt.Sprintf("rdd version %s (commit %s, %s%s %s)", b.Version, b.Commit, built, b.GoVersion, b.Platform)
}

// versionReport is what `rdd version -o json|yaml` prints: the client's
// build at the top level, then the daemon's when it runs.
type versionReport struct {
	buildInfo
	Instance      string         `json:"instance"`
	DaemonRunning bool           `json:"daemonRunning"`
	Daemon        *daemonVersion `json:"daemon,omitempty"`
}

// daemonVersion is the daemon's build and what it runs (GET /v1/healthz).
type daemonVersion struct {
	Version    string         `json:"version"`
	Commit     string         `json:"commit,omitempty"`
	BuildDate  string         `json:"buildDate,omitempty"`
	GoVersion  string         `json:"goVersion,omitempty"`
	PID        int            `json:"pid"`
	Engine     *api.Component `json:"engine,omitempty"`
	Kubernetes *api.Component `json:"kubernetes,omitempty"`
}

// daemonHealthTimeout bounds the question to the daemon: version must
// answer even when the daemon is wedged.
const daemonHealthTimeout = 2 * time.Second

func newVersionCommand(e *env) *cobra.Command {
	var out outputFlags
	formats := []render.Format{render.Text, render.JSON, render.YAML}
	cmd := &cobra.Command{
		Use:   "version [-o text|json|yaml]",
		Short: "Print the versions of rdd, its daemon, the engine and k3s",
		Long: `
			Print the rdd version, the commit and date it was built from and
			its Go version; then, when the daemon of the instance runs, the
			daemon's version (it may be older than this rdd until it is
			restarted with rdd svc stop) and the versions of the container
			engine and k3s it runs. version never starts the daemon.
			rdd --version prints the first line alone.`,
		Example: `
			rdd version
			rdd version -o json | jq -r .daemon.engine.version`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := out.format(formats...)
			if err != nil {
				return err
			}
			r := versionReport{buildInfo: e.build.complete()}
			if p, err := e.instance(); err == nil {
				r.Instance = p.Instance
				r.Daemon, err = e.daemonVersion(cmd.Context())
				if err != nil {
					fmt.Fprintf(e.stderr, "Warning: the rdd daemon of instance %s did not say its version: %v\n", p.Instance, err)
				}
				r.DaemonRunning = r.Daemon != nil
			}
			switch f {
			case render.JSON:
				return render.WriteJSON(e.stdout, r)
			case render.YAML:
				return render.WriteYAML(e.stdout, r)
			}
			return r.writeText(e.stdout)
		},
	}
	out.add(cmd, formats...)
	return cmd
}

// daemonVersion asks the instance's daemon for its version; nil, nil when
// no daemon runs.
func (e *env) daemonVersion(ctx context.Context) (*daemonVersion, error) {
	c, err := e.client()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, daemonHealthTimeout)
	defer cancel()
	h, err := c.Healthz(ctx)
	if client.IsDaemonNotRunning(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &daemonVersion{Version: h.Version, Commit: h.Commit, BuildDate: h.BuildDate, GoVersion: h.GoVersion,
		PID: h.PID, Engine: h.Engine, Kubernetes: h.Kubernetes}, nil
}

func (r versionReport) writeText(w io.Writer) error {
	var b strings.Builder
	b.WriteString(r.short() + "\n")
	switch d := r.Daemon; {
	case r.Instance == "":
	case d == nil:
		fmt.Fprintf(&b, "daemon of instance %s: not running\n", r.Instance)
	default:
		fmt.Fprintf(&b, "daemon of instance %s: rdd version %s (commit %s", r.Instance, d.Version, orUnknown(d.Commit))
		if d.BuildDate != "" {
			fmt.Fprintf(&b, ", built %s", d.BuildDate)
		}
		fmt.Fprintf(&b, ", %s), pid %d\n", orUnknown(d.GoVersion), d.PID)
		fmt.Fprintf(&b, "  engine:     %s\n", componentText(d.Engine))
		fmt.Fprintf(&b, "  kubernetes: %s\n", componentText(d.Kubernetes))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// componentText is "NAME VERSION", or says the component does not run.
func componentText(c *api.Component) string {
	switch {
	case c == nil:
		return "not running"
	case c.Version == "":
		return c.Name + " (version unknown)"
	}
	return c.Name + " " + c.Version
}

// printVersion handles `rdd --version[=VALUE]`: true prints the version line,
// raw prints every build detail, false prints help.
func printVersion(e *env, value string) error {
	b := e.build.complete()
	switch value {
	case "true", "1":
		_, err := fmt.Fprintln(e.stdout, b.short())
		return err
	case "raw":
		_, err := fmt.Fprintf(e.stdout, "Version: %s\nGitCommit: %s\nBuildDate: %s\nGoVersion: %s\nCompiler: %s\nPlatform: %s\n",
			b.Version, b.Commit, b.BuildDate, b.GoVersion, runtime.Compiler, b.Platform)
		return err
	case "false", "0":
		return nil
	}
	return usageErrf("invalid value %q for --version: use true, false or raw", value)
}

func newCompletionCommand(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "completion bash|zsh|fish|powershell",
		Short: "Print a shell completion script",
		Long: `
			Print the completion script for a shell. Load it in the current shell,
			or save it where your shell loads completions from.`,
		Example: `
			source <(rdd completion bash)
			rdd completion zsh > "${fpath[1]}/_rdd"
			rdd completion fish > ~/.config/fish/completions/rdd.fish
			rdd completion powershell | Out-String | Invoke-Expression`,
		ValidArgs: []string{"bash", "zsh", "fish", "powershell"},
		Args:      usageArgs(cobra.MatchAll(cobra.ExactArgs(1), cobra.OnlyValidArgs)),
		RunE: func(cmd *cobra.Command, args []string) error {
			root := cmd.Root()
			switch args[0] {
			case "bash":
				return root.GenBashCompletionV2(e.stdout, true)
			case "zsh":
				return root.GenZshCompletion(e.stdout)
			case "powershell":
				return root.GenPowerShellCompletionWithDesc(e.stdout)
			default:
				return root.GenFishCompletion(e.stdout, true)
			}
		},
	}
}
