package main

import (
	"context"
	"encoding/json"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rdd-project/rdd/internal/events"
)

// startDaemon runs `rdd daemon` in-process for h until the returned stop is
// called (or the test ends).
func (h *harness) startDaemon(args ...string) (stop func()) {
	h.t.Helper()
	ready := make(chan struct{})
	h.e.daemonReady = ready
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	done := make(chan int, 1)
	go func() { done <- execute(ctx, h.e, append([]string{"daemon"}, args...), nil) }()
	select {
	case <-ready:
	case code := <-done:
		cancel()
		h.t.Fatalf("rdd daemon exited %d before serving: %s", code, h.stderr)
	case <-time.After(time.Minute):
		cancel()
		h.t.Fatalf("rdd daemon did not serve within a minute: %s\n%s", h.stderr, goroutines())
	}
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case code := <-done:
			if code != 0 && code != 130 {
				h.t.Errorf("rdd daemon exited %d: %s", code, h.stderr)
			}
		case <-time.After(time.Minute):
			h.t.Errorf("rdd daemon did not stop within a minute of its cancellation:\n%s", goroutines())
		}
	}
	h.t.Cleanup(stop)
	return stop
}

// Against the real daemon: once RDD_RETAIN_EVENTS compacted the log, why and
// replay still answer, from the oldest snapshot the daemon can rebuild, and
// replay ends at the live snapshot.
func TestWhyAndReplayAfterRealCompaction(t *testing.T) {
	h := newHarness(t)
	h.env["RDD_VM_DRIVER"] = "host"
	h.env["RDD_RETAIN_EVENTS"] = "2"
	stop := h.startDaemon()
	for _, v := range []string{"1.32.0", "1.33.1", "1.34.2"} {
		if code := h.run("set", "--wait=false", "kubernetes.version="+v); code != 0 {
			t.Fatalf("set = %d: %s", code, h.stderr)
		}
	}
	stop() // the shutdown checkpoint compacts all but its last 2 events
	h.startDaemon()
	if code := h.run("set", "running=false"); code != 0 { // waits until Settled
		t.Fatalf("set = %d: %s", code, h.stderr)
	}

	h.reset()
	if code := h.run("events"); code != 1 || !strings.Contains(h.stderr.String(), "retention policy") {
		t.Fatalf("events from seq 0 of a compacted log = %d: %s", code, h.stderr)
	}
	// The daemon may still append (controllers observing), so compare the
	// replay with the live snapshot at the replay's own seq.
	h.reset()
	if code := h.run("replay", "-o", "json"); code != 0 {
		t.Fatalf("replay -o json = %d: %s", code, h.stderr)
	}
	replayed := h.stdout.String()
	if !strings.Contains(h.stderr.String(), "were removed by the daemon's retention policy") {
		t.Errorf("replay -o json does not say the log was compacted: %q", h.stderr)
	}
	var snap events.Snapshot
	if err := json.Unmarshal([]byte(replayed), &snap); err != nil {
		t.Fatal(err)
	}
	h.reset()
	if code := h.run("status", "-o", "json", "--at", strconv.FormatUint(snap.Seq, 10)); code != 0 || h.stdout.String() != replayed {
		t.Errorf("replay -o json:\n%s\nstatus --at %d = %d:\n%s%s", replayed, snap.Seq, code, h.stdout, h.stderr)
	}

	h.reset()
	if code := h.run("why", "settled"); code != 0 {
		t.Fatalf("why settled = %d: %s", code, h.stderr)
	}
	if out := h.stdout.String(); !strings.Contains(out, "Settled=True") || !strings.Contains(out, "removed by the daemon's retention policy") {
		t.Errorf("why settled after compaction:\n%s", out)
	}
}

// goroutines is a dump of every goroutine, for a daemon that hangs.
func goroutines() string {
	var b strings.Builder
	_ = pprof.Lookup("goroutine").WriteTo(&b, 1)
	return b.String()
}
