package main

import (
	"fmt"
	"runtime"

	"github.com/spf13/cobra"

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
	return fmt.Sprintf("rdd version %s (commit %s, %s %s)", b.Version, b.Commit, b.GoVersion, b.Platform)
}

func newVersionCommand(e *env) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version of rdd",
		Long:  "Print the rdd version, the commit it was built from and the Go version. `rdd --version` prints the same line.",
		Example: example(`
			rdd version
			rdd version -o json`),
		Args: usageArgs(cobra.NoArgs),
		RunE: func(*cobra.Command, []string) error {
			f, err := render.ParseFormat(output, render.Text, render.JSON)
			if err != nil {
				return usageErr(err)
			}
			b := e.build.complete()
			if f == render.JSON {
				return render.WriteJSON(e.stdout, b)
			}
			_, err = fmt.Fprintln(e.stdout, b.short())
			return err
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	return cmd
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
		Use:   "completion bash|zsh|fish",
		Short: "Print a shell completion script",
		Long: doc(`
			Print the completion script for a shell. Load it in the current shell,
			or save it where your shell loads completions from.`),
		Example: example(`
			source <(rdd completion bash)
			rdd completion zsh > "${fpath[1]}/_rdd"
			rdd completion fish > ~/.config/fish/completions/rdd.fish`),
		ValidArgs: []string{"bash", "zsh", "fish"},
		Args:      usageArgs(cobra.MatchAll(cobra.ExactArgs(1), cobra.OnlyValidArgs)),
		RunE: func(cmd *cobra.Command, args []string) error {
			root := cmd.Root()
			switch args[0] {
			case "bash":
				return root.GenBashCompletionV2(e.stdout, true)
			case "zsh":
				return root.GenZshCompletion(e.stdout)
			default:
				return root.GenFishCompletion(e.stdout, true)
			}
		},
	}
}
