package main

import (
	"context"
	"os"
	"os/exec"
	"runtime"
	"testing"

	"github.com/rdd-project/rdd/internal/api/client"
	"github.com/rdd-project/rdd/internal/vm"
)

// The daemon records where its VM driver choice came from; with only
// RDD_VM_DRIVER set that is the variable, not a --vm-driver nobody gave.
func TestDaemonRecordsWhereTheDriverChoiceCameFrom(t *testing.T) {
	for _, tc := range []struct {
		env    string
		args   []string
		reason string
	}{
		{"host", nil, "RDD_VM_DRIVER=host"},
		{"lima", []string{"--vm-driver=host"}, "--vm-driver=host"},
		{"", nil, ""}, // auto: the reason vm.Choose gives on this machine
	} {
		if tc.reason == "" {
			name, reason, err := vm.Choose("", runtime.GOOS, os.Geteuid(), vm.QEMUInstalled(runtime.GOARCH, os.Getenv, exec.LookPath))
			if err != nil || name != "host" {
				t.Logf("auto picks %q here (%v): the host-driver harness cannot check it", name, err)
				continue
			}
			tc.reason = reason
		}
		t.Run(tc.reason, func(t *testing.T) {
			h := newHarness(t)
			h.env["RDD_VM_DRIVER"] = tc.env
			stop := h.startDaemon(tc.args...)
			c := client.New(h.e.paths.Socket)
			snap, err := c.Status(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			stop()
			if d := snap.Daemon; d.VMDriver != "host" || d.VMDriverReason != tc.reason {
				t.Fatalf("DaemonStarted recorded driver %q reason %q, want host, %q", d.VMDriver, d.VMDriverReason, tc.reason)
			}
		})
	}
}
