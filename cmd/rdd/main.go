package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
	"time"

	"golang.org/x/term"

	"github.com/rdd-project/rdd/internal/paths"
)

// Set with -ldflags "-X main.version=… -X main.commit=… -X main.buildDate=…".
var (
	version   = "dev"
	commit    = "unknown"
	buildDate = ""
)

func main() {
	os.Exit(run())
}

// run builds the environment of one invocation from the process (arguments,
// environment, home directory, stdio) and executes the command line.
func run() int {
	instance, args, instErr := splitInstance(os.Args[1:], os.Getenv)
	e := &env{
		stdin:   os.Stdin,
		stdout:  os.Stdout,
		stderr:  os.Stderr,
		getenv:  os.Getenv,
		environ: os.Environ,
		now:     time.Now,
		build:   buildInfo{Version: version, Commit: commit, BuildDate: buildDate},
		// Only the heartbeat of waits looks at it.
		stderrTTY: term.IsTerminal(int(os.Stderr.Fd())),
		stdinTTY:  term.IsTerminal(int(os.Stdin.Fd())),
	}
	if instErr != nil {
		return execute(context.Background(), e, nil, instErr)
	}
	home, homeErr := os.UserHomeDir()
	e.resolve = func(instance string) (paths.Paths, error) {
		if homeErr != nil {
			return paths.Paths{}, homeErr
		}
		return paths.Resolve(instance, home, os.Getenv)
	}
	e.paths, e.pathsErr = e.resolve(instance)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	e.catchInterrupts = func() {
		sctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
		// After the first signal a second one kills, as by default.
		context.AfterFunc(sctx, func() { stop(); cancel() })
	}
	return execute(ctx, e, args, nil)
}
