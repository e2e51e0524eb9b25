package dockertest

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
)

// Start starts a private dockerd for the test (see StartDaemon) in a new
// directory under /tmp and registers a cleanup that closes it. A missing
// dockerd fails the test with the install hint; it never skips. Before
// starting, directories left by dead test processes are reaped.
func Start(t testing.TB, opts ...Option) *Daemon {
	t.Helper()
	if _, err := ReapStale(); err != nil {
		t.Logf("dockertest: reaping stale daemons: %v", err)
	}
	dir, err := os.MkdirTemp("/tmp", "rdd-d-")
	if err != nil {
		t.Fatalf("dockertest: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*DefaultStartTimeout)
	defer cancel()
	d, err := StartDaemon(ctx, dir, opts...)
	if err != nil {
		_ = cleanupDir(dir)
		if errors.Is(err, ErrNotInstalled) {
			t.Fatalf("%v", err)
		}
		t.Fatalf("dockertest: start dockerd: %v", err)
	}
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Errorf("dockertest: close daemon: %v", err)
		}
	})
	return d
}

// NewClient returns a Docker API client for d (API version negotiated, so it
// works with dockerd 20.10's API 1.41). The caller closes it.
func (d *Daemon) NewClient() (*client.Client, error) {
	return client.NewClientWithOpts(client.WithHost(d.Host), client.WithAPIVersionNegotiation())
}

// Client returns a Docker API client for d that is closed when the test ends.
func Client(t testing.TB, d *Daemon) *client.Client {
	t.Helper()
	cli, err := d.NewClient()
	if err != nil {
		t.Fatalf("dockertest: new client: %v", err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	return cli
}

// ImportBusybox imports the busybox test image (see WriteBusyboxRootfs) into
// d as BusyboxRef and returns the ref.
func ImportBusybox(t testing.TB, d *Daemon) string {
	t.Helper()
	cli := Client(t, d)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := ImportBusyboxImage(ctx, cli, BusyboxRef); err != nil {
		t.Fatalf("%v", err)
	}
	return BusyboxRef
}

// CreateContainer creates (does not start) a container from ref running
// cmd, with no network. name may be empty. It returns the container id.
// The container's stop timeout is one second, so stopping it (or a dockerd
// restart, which stops containers it finds running) does not wait the
// default ten seconds for a pid 1 that ignores SIGTERM.
func CreateContainer(ctx context.Context, cli client.APIClient, ref, name string, cmd ...string) (string, error) {
	stopTimeout := 1
	resp, err := cli.ContainerCreate(ctx,
		&container.Config{Image: ref, Cmd: cmd, StopTimeout: &stopTimeout},
		&container.HostConfig{NetworkMode: "none"},
		nil, nil, name)
	if err != nil {
		return "", err
	}
	return resp.ID, nil
}

// RunContainer creates a container from ref with no network, starts it,
// waits until it exits, removes it, and returns its exit code.
func RunContainer(ctx context.Context, cli client.APIClient, ref string, cmd ...string) (int64, error) {
	id, err := CreateContainer(ctx, cli, ref, "", cmd...)
	if err != nil {
		return -1, err
	}
	defer func() {
		rmCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		_ = cli.ContainerRemove(rmCtx, id, container.RemoveOptions{Force: true})
	}()
	// Wait for "next-exit" before starting, so a fast exit is not missed.
	waitCh, errCh := cli.ContainerWait(ctx, id, container.WaitConditionNextExit)
	if err := cli.ContainerStart(ctx, id, container.StartOptions{}); err != nil {
		return -1, err
	}
	select {
	case w := <-waitCh:
		if w.Error != nil && w.Error.Message != "" {
			return w.StatusCode, errors.New(w.Error.Message)
		}
		return w.StatusCode, nil
	case err := <-errCh:
		return -1, err
	}
}
