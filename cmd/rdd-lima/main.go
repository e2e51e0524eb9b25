// Command rdd-lima is the part of rdd that links Lima: it creates, inspects,
// starts, stops and deletes the Lima instance and runs Lima's host agent.
// It is a program of its own because linking Lima costs every command that
// links it 8-10 ms of package initialisation (rdd's whole `status` takes
// about 5.6 ms); rdd carries it inside its binary and runs it only for the
// lima driver. Every command prints one JSON document on stdout (an
// {"error": ...} object and exit status 1 on failure). LIMA_HOME selects
// the instance's home.
//
// Run as qemu-system-<arch> (a link to it), it is the QEMU wrapper that
// applies RDD_VM_ACCEL and RDD_VM_RESTRICT_NETWORK.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/rdd-project/rdd/internal/vm/lima"
	"github.com/rdd-project/rdd/internal/vm/lima/agent"
)

const usage = `usage: rdd-lima COMMAND [flags]
  inspect                     report the instance (JSON)
  create  < lima.yaml         create and prepare it, or adopt a complete one
  start   < lima.yaml         launch the host agent (the boot goes on in it)
  stop    [-timeout 30s]      stop gracefully, then by force
  delete                      stop by force and remove it
  hostagent [flags] NAME      run Lima's host agent (started by start)
`

func main() {
	if strings.HasPrefix(filepath.Base(os.Args[0]), "qemu-system-") {
		if err := agent.ExecQEMU(os.Args[1:]); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer cancel()
	out, err := run(ctx, os.Args[1], os.Args[2:], os.Stdin)
	if err != nil {
		_ = json.NewEncoder(os.Stdout).Encode(lima.Error{Error: err.Error()})
		os.Exit(1)
	}
	if out != nil {
		_ = json.NewEncoder(os.Stdout).Encode(out)
	}
}

func run(ctx context.Context, cmd string, args []string, stdin io.Reader) (any, error) {
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	name := fs.String("name", lima.InstanceName, "instance name")
	switch cmd {
	case "inspect":
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		return agent.Inspect(*name)
	case "create", "start":
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		tmpl, err := io.ReadAll(io.LimitReader(stdin, 1<<20))
		if err != nil {
			return nil, fmt.Errorf("read the template from stdin: %w", err)
		}
		if cmd == "create" {
			return agent.Create(ctx, *name, tmpl)
		}
		self, err := os.Executable()
		if err != nil {
			return nil, err
		}
		return agent.Start(ctx, *name, tmpl, self)
	case "stop":
		timeout := fs.Duration("timeout", 30*time.Second, "graceful part of the stop")
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		sctx, cancel := context.WithTimeout(ctx, *timeout)
		defer cancel()
		return struct{}{}, agent.Stop(sctx, *name)
	case "delete":
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		return struct{}{}, agent.Delete(ctx, *name)
	case "hostagent":
		var o agent.HostAgentOptions
		fs.StringVar(&o.PIDFile, "pidfile", "", "write the pid to this file")
		fs.StringVar(&o.Socket, "socket", "", "the host agent's API socket")
		fs.StringVar(&o.GuestAgent, "guestagent", "", "the guest agent binary")
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() != 1 {
			return nil, fmt.Errorf("hostagent: want one instance name, got %q", fs.Args())
		}
		// The host agent's stdout is its event stream: nothing else goes there.
		// The host agent handles SIGINT and SIGTERM itself (a graceful guest
		// shutdown), so it does not run under the command's signal context.
		if err := agent.RunHostAgent(context.Background(), fs.Arg(0), o, os.Stdout, os.Stderr); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	return nil, fmt.Errorf("unknown command %q\n%s", cmd, usage)
}
