//go:build !linux && !darwin

package api

import (
	"errors"
	"net"
)

// peerCred is not implemented here: every peer is refused.
func peerCred(*net.UnixConn) (Source, error) {
	return Source{}, errors.New("peer credentials are not supported on this platform")
}
