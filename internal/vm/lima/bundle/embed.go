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

// Digest names this pair (the first 16 hex digits of the SHA-256 of both
// files), computed by `make build`: hashing 25 MB at every daemon start
// only to find the extracted copy cost more than the rest of the lookup.
//
//go:embed digest
var Digest string
