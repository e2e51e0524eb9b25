package host

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"

	"github.com/rdd-project/rdd/internal/engine"
)

// Every probe speaks the protocol of the process it probes: a Docker _ping
// sent to containerd's gRPC socket fails with "malformed HTTP response",
// which once made a half-started engine (containerd up, dockerd not yet)
// look broken for as long as the probe was retried.

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

// containerdVersionMethod is containerd's Version service; every containerd
// since 1.0 serves it and it needs no namespace.
const containerdVersionMethod = "/containerd.services.version.v1.Version/Version"

// probeContainerd succeeds when containerd answers a gRPC Version call on
// the Unix socket sock, and returns the version it reports. gRPC is HTTP/2
// with prior knowledge (no TLS, no upgrade), which net/http speaks without
// the grpc module in the binary; the request is an empty message
// (google.protobuf.Empty) in gRPC's 5-byte length-prefixed framing.
func probeContainerd(ctx context.Context, sock string) (string, error) {
	var protos http.Protocols
	protos.SetUnencryptedHTTP2(true)
	tr := &http.Transport{
		Protocols: &protos,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
	}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://containerd"+containerdVersionMethod,
		bytes.NewReader([]byte{0, 0, 0, 0, 0}))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/grpc")
	req.Header.Set("TE", "trailers")
	resp, err := tr.RoundTrip(req)
	if err != nil {
		return "", fmt.Errorf("gRPC Version call: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return "", fmt.Errorf("gRPC Version call: read reply: %w", err)
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/grpc") {
		return "", fmt.Errorf("gRPC Version call: HTTP %d %q: not a gRPC server", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	// A failed call has no message; its status is in the trailers, or in
	// the headers for a trailers-only reply.
	status := resp.Trailer.Get("Grpc-Status")
	if status == "" {
		status = resp.Header.Get("Grpc-Status")
	}
	if status != "0" {
		msg := resp.Trailer.Get("Grpc-Message") + resp.Header.Get("Grpc-Message")
		return "", fmt.Errorf("gRPC Version call: status %q: %s", status, msg)
	}
	return versionField(body)
}

// versionField extracts field 1 (version, a string) of the
// containerd.services.version.v1.VersionResponse in one gRPC frame.
func versionField(frame []byte) (string, error) {
	if len(frame) < 5 || frame[0] != 0 || int(binary.BigEndian.Uint32(frame[1:5])) != len(frame)-5 {
		return "", errors.New("gRPC Version call: malformed reply frame")
	}
	msg := frame[5:]
	for len(msg) > 0 {
		key, n := binary.Uvarint(msg)
		if n <= 0 {
			break
		}
		msg = msg[n:]
		if key&7 != 2 { // every field of VersionResponse is a string
			break
		}
		l, n := binary.Uvarint(msg)
		if n <= 0 || uint64(len(msg)-n) < l {
			break
		}
		if key>>3 == 1 {
			return string(msg[n : n+int(l)]), nil
		}
		msg = msg[n+int(l):]
	}
	return "", errors.New("gRPC Version call: the reply has no version")
}

// probeProcess speaks the protocol of the process named name on sock:
// the Docker API for dockerd, gRPC for containerd.
func probeProcess(ctx context.Context, name, sock string) error {
	if name == "dockerd" {
		return pingDocker(ctx, sock)
	}
	_, err := probeContainerd(ctx, sock)
	return err
}

// containerdReady is probeProcess for containerd, for waitReady.
func containerdReady(ctx context.Context, sock string) error {
	_, err := probeContainerd(ctx, sock)
	return err
}
