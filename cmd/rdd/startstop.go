package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/rdd-project/rdd/internal/api/client"
	"github.com/rdd-project/rdd/internal/cli/render"
	"github.com/rdd-project/rdd/internal/cli/svc"
)

func newStartCommand(e *env) *cobra.Command {
	var o waitOptions
	cmd := &cobra.Command{
		Use:   "start [--wait=BOOL] [--timeout=DUR]",
		Short: "Start the App (rdd set running=true)",
		Long: `
			Start the App: the same as rdd set running=true, so it creates the App
			when it does not exist, starts the daemon when it does not run, and
			waits until the App has settled (exit 4 after --timeout).`,
		Example: `
			rdd start
			rdd start --wait=false
			rdd start --timeout=10m`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.parseFormat(); err != nil {
				return err
			}
			if err := e.ensureDaemon(cmd.Context()); err != nil {
				return err
			}
			o.noopMessage = "The App is already running"
			return e.applySpec(cmd.Context(), map[string]string{"running": "true"}, o, "rdd start")
		},
	}
	addWaitFlags(cmd, &o)
	return cmd
}

// msgNothingToStop is printed by `rdd stop` when there is no App (scenario 15).
const msgNothingToStop = "App does not exist; nothing to stop"

func newStopCommand(e *env) *cobra.Command {
	var o waitOptions
	cmd := &cobra.Command{
		Use:   "stop [--wait=BOOL] [--timeout=DUR]",
		Short: "Stop the App (rdd set running=false)",
		Long: `
			Stop the App: the same as rdd set running=false, waiting until the App
			has settled (exit 4 after --timeout). When the App does not exist,
			stop prints a message, creates nothing and exits 0. It never starts
			the daemon: with no daemon running there is nothing to stop.`,
		Example: `
			rdd stop
			rdd stop --timeout=1m`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.parseFormat(); err != nil {
				return err
			}
			p, err := e.instance()
			if err != nil {
				return err
			}
			c := client.New(p.Socket)
			snap, err := c.Status(cmd.Context())
			if errors.Is(err, client.ErrDaemonNotRunning) {
				st, ierr := svc.Inspect(p)
				if ierr == nil && st.Created {
					return e.nothingToStop(o.format, fmt.Sprintf("The rdd daemon of instance %s is not running; nothing to stop", p.Instance))
				}
				return e.nothingToStop(o.format, msgNothingToStop)
			}
			if err != nil {
				return err
			}
			if !snap.Exists {
				return e.nothingToStop(o.format, msgNothingToStop)
			}
			return e.applySpec(cmd.Context(), map[string]string{"running": "false"}, o, "rdd stop")
		},
	}
	addWaitFlags(cmd, &o)
	return cmd
}

// nothingToStop reports a stop with nothing to do: the message on stdout,
// or on stderr beside an empty result when stdout carries data.
func (e *env) nothingToStop(f render.Format, msg string) error {
	if f == render.JSON || f == render.YAML {
		fmt.Fprintln(e.stderr, msg)
		return e.printResult(f, setResult{})
	}
	_, err := fmt.Fprintln(e.stdout, msg)
	return err
}
