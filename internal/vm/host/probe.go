package host

import (
	"context"
	"net"

	"github.com/rdd-project/rdd/internal/engine"
)

// pingDocker succeeds when the Docker API on the Unix socket sock answers
// GET /_ping with 200 (the engine package's client, so both speak the same
// protocol).
func pingDocker(ctx context.Context, sock string) error {
	return engine.Ping(ctx, "unix://"+sock)
}

// dialSocket succeeds when the Unix socket sock accepts a connection.
func dialSocket(ctx context.Context, sock string) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", sock)
	if err != nil {
		return err
	}
	return c.Close()
}
