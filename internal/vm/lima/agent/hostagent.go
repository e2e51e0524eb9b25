package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"

	"github.com/lima-vm/lima/pkg/hostagent"
	"github.com/lima-vm/lima/pkg/hostagent/api/server"
	"github.com/sirupsen/logrus"
)

// HostAgentOptions are the flags Lima's instance start passes to the host agent.
type HostAgentOptions struct {
	PIDFile, Socket, GuestAgent string
}

// RunHostAgent runs Lima's host agent for instance name in this process:
// it boots the VM, forwards its ports and sockets, writes its events as
// JSON lines on stdout (read by the daemon's watcher) and shuts the guest
// down on SIGINT or SIGTERM.
func RunHostAgent(ctx context.Context, name string, o HostAgentOptions, stdout, stderr io.Writer) error {
	if o.Socket == "" {
		return errors.New("hostagent: --socket is required")
	}
	if o.PIDFile != "" {
		if _, err := os.Stat(o.PIDFile); !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("hostagent: pid file %s exists: another host agent runs, or a crashed one left it", o.PIDFile)
		}
		if err := os.WriteFile(o.PIDFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
			return err
		}
		defer os.Remove(o.PIDFile)
	}
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(signals)

	logrus.SetOutput(stderr)
	logrus.SetFormatter(new(logrus.JSONFormatter))
	logrus.SetLevel(logrus.DebugLevel)
	var opts []hostagent.Opt
	if o.GuestAgent != "" {
		opts = append(opts, hostagent.WithGuestAgentBinary(o.GuestAgent))
	}
	ha, err := hostagent.New(name, &syncedWriter{w: stdout}, signals, opts...)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	server.AddRoutes(mux, &server.Backend{Agent: ha})
	_ = os.Remove(o.Socket)
	l, err := net.Listen("unix", o.Socket)
	if err != nil {
		return fmt.Errorf("hostagent: listen on %s: %w", o.Socket, err)
	}
	srv := &http.Server{Handler: mux}
	go func() { _ = srv.Serve(l) }()
	defer func() {
		_ = srv.Close()
		_ = os.Remove(o.Socket)
	}()
	return ha.Run(ctx)
}

// syncedWriter serialises the host agent's event writes and syncs each one
// to disk, so a reader of the file never sees half an event.
type syncedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncedWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, err := s.w.Write(p)
	if f, ok := s.w.(*os.File); ok && err == nil {
		_ = f.Sync()
	}
	return n, err
}
