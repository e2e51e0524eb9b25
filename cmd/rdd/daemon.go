package main

import (
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/rdd-project/rdd/internal/daemon"
)

func newDaemonCommand(e *env) *cobra.Command {
	var vmDriver, logLevel string
	var retainEvents uint64
	cmd := &cobra.Command{
		Use:   "daemon",
		Short: "Run the rdd daemon in the foreground",
		Long: `
			Run the daemon of the instance in the foreground until SIGINT or
			SIGTERM, then shut down gracefully. It serves the API on the
			instance's Unix socket and logs to the daemon log (rdd svc paths).

			rdd svc start runs this command detached; App commands (set, start,
			run) do so implicitly when no daemon serves.

			--vm-driver (default $RDD_VM_DRIVER, else auto) chooses how the VM is
			provided: lima, host (Linux: the host is the machine) or auto.
			--log-level (default $RDD_LOG_LEVEL) sets the log level.
			--retain-events N (default $RDD_RETAIN_EVENTS) keeps N events before
			the latest checkpoint and removes older ones; by default the event
			log keeps everything.`,
		Example: `
			rdd daemon --vm-driver=host --log-level=debug
			RDD_VM_DRIVER=host rdd --instance test daemon`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			// Pass the flag only when it was given: the daemon then reads
			// RDD_VM_DRIVER itself and records that, not --vm-driver, as
			// the reason for its choice (DaemonStarted).
			driverFlag := ""
			if cmd.Flags().Changed("vm-driver") {
				switch vmDriver {
				case "host", "lima", "auto":
				default:
					return usageErrf("invalid --vm-driver %q: use host, lima or auto", vmDriver)
				}
				driverFlag = vmDriver
			}
			p, err := e.instance()
			if err != nil {
				return err
			}
			// stop is deferred, not called on the first signal: a second
			// SIGINT/SIGTERM during the drain must not kill the daemon.
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			return daemon.Run(ctx, daemon.Options{
				Paths:     p,
				VMDriver:  driverFlag,
				LogLevel:  logLevel,
				Version:   e.build.Version,
				Commit:    e.build.Commit,
				BuildDate: e.build.BuildDate,
				Getenv:    e.getenv,
				Ready:     e.daemonReady,

				RetainEvents: retainEvents,
			})
		},
	}
	driver := e.getenv("RDD_VM_DRIVER")
	if driver == "" {
		driver = "auto"
	}
	cmd.Flags().StringVar(&vmDriver, "vm-driver", driver, "VM driver: host, lima or auto (env RDD_VM_DRIVER)")
	cmd.Flags().StringVar(&logLevel, "log-level", e.getenv("RDD_LOG_LEVEL"), "log level: debug, info, warn, error (env RDD_LOG_LEVEL)")
	cmd.Flags().Uint64Var(&retainEvents, "retain-events", 0, "keep this many events before the latest checkpoint, remove older ones; 0 keeps everything (env RDD_RETAIN_EVENTS)")
	return cmd
}
