package daemon

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/rdd-project/rdd/internal/api"
	"github.com/rdd-project/rdd/internal/api/client"
	"github.com/rdd-project/rdd/internal/events"
	"github.com/rdd-project/rdd/internal/store"
)

// With a retention policy the log drops what lies more than N events before
// the latest checkpoint; reading below it says so instead of returning a log
// with a hole, and a restarted daemon comes back to the same snapshot.
func TestRetentionPolicy(t *testing.T) {
	p := testPaths(t)
	drv := &fakeDriver{}
	tweak := func(o *Options) { o.RetainEvents, o.checkpointEvery = 5, 8 }
	td := startDaemon(t, p, drv, tweak)
	ctx := context.Background()
	var last api.SetResponse
	for i := 0; i < 12; i++ {
		last = td.set("kubernetes.version", []string{"1.32.0", "1.33.1", "1.34.2"}[i%3])
	}
	td.waitFor("settled", settledAt(last.Generation))

	// Controllers may still be appending (and compacting) while we read, so
	// a client follows the answer's resumeSeq until it gets through.
	since, first := uint64(0), uint64(0)
	for attempt := 0; ; attempt++ {
		err := td.cli.Events(ctx, api.EventQuery{Since: since}, func(_ []byte, e events.Envelope) error {
			if first == 0 {
				first = e.Seq
			}
			return nil
		})
		if err == nil {
			break
		}
		var apiErr *client.APIError
		if !errors.As(err, &apiErr) || apiErr.Code != api.CodeConflict || !strings.Contains(apiErr.Message, "retention policy") {
			t.Fatalf("events since %d after compaction: %v, want a Conflict naming the retention policy", since, err)
		}
		if apiErr.ResumeSeq == 0 || attempt == 5 {
			t.Fatalf("the answer does not lead to the start of the log: %+v", apiErr)
		}
		since = apiErr.ResumeSeq
		first = 0
	}
	if since == 0 || first != since+1 {
		t.Fatalf("events since %d: first seq %d; want a compacted log read from just after the compaction point", since, first)
	}

	before, _ := td.cli.Status(ctx)
	if err := td.stop(); err != nil {
		t.Fatal(err)
	}
	log, err := store.Open(p.EventLog, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	compacted := log.CompactedThrough()
	log.Close()
	if compacted == 0 {
		t.Fatal("nothing was compacted")
	}

	td2 := startDaemon(t, p, drv, tweak)
	after := td2.waitFor("settled after restart", settledAt(before.Generation))
	if after.Generation != before.Generation || after.Spec.Running != before.Spec.Running || after.Spec.Kubernetes.Version != before.Spec.Kubernetes.Version {
		t.Fatalf("restart from the compacted log: generation %d spec %+v, want %d %+v", after.Generation, after.Spec, before.Generation, before.Spec)
	}
}

func TestRetentionFromEnvironment(t *testing.T) {
	for v, want := range map[string]uint64{"": 0, "0": 0, "1000": 1000} {
		got, err := retention(0, func(string) string { return v })
		if err != nil || got != want {
			t.Errorf("RDD_RETAIN_EVENTS=%q: %d, %v; want %d", v, got, err, want)
		}
	}
	if _, err := retention(0, func(string) string { return "lots" }); err == nil || !strings.Contains(err.Error(), "RDD_RETAIN_EVENTS") {
		t.Errorf("a bad RDD_RETAIN_EVENTS gives %v", err)
	}
	if got, _ := retention(7, func(string) string { return "1000" }); got != 7 {
		t.Errorf("the option does not win over the environment: %d", got)
	}
}
