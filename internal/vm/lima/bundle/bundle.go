// Package bundle holds the programs of the lima driver that rdd carries
// inside its own binary when built with `make build` (tag limabundle):
// rdd-lima and Lima's guest agent for the native architecture, gzipped.
// They are data, not code: carrying them costs rdd's start-up nothing.
package bundle
