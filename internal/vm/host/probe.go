package host

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
)

// pingDocker sends GET /_ping to the Docker API on the Unix socket sock and
// succeeds on 200. It keeps no connection open afterwards.
func pingDocker(ctx context.Context, sock string) error {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
		DisableKeepAlives: true,
	}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://docker/_ping", nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /_ping on %s: %s", sock, resp.Status)
	}
	return nil
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
