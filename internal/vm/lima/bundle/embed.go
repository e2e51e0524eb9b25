//go:build limabundle

package bundle

import _ "embed"

// Helper is rdd-lima, gzipped.
//
//go:embed rdd-lima.gz
var Helper []byte

// GuestAgent is Lima's guest agent for the native architecture, gzipped.
//
//go:embed lima-guestagent.gz
var GuestAgent []byte
