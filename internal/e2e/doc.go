// Package e2e holds the end-to-end tests: they build the rdd binary, give
// each test a fresh HOME, and drive the real daemon with the host driver
// against a real dockerd, exactly as a user would from a shell.
package e2e
