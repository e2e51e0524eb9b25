//go:build !limabundle

package bundle

// Without the limabundle tag (plain `go build`), rdd carries nothing and
// finds rdd-lima next to its executable or through RDD_LIMA_HELPER.
var Helper, GuestAgent []byte

// Digest is empty without the bundle.
var Digest string
