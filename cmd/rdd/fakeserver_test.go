package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rdd-project/rdd/internal/api"
	"github.com/rdd-project/rdd/internal/events"
)

// fakeBackend is an api.Backend whose answers the test scripts.
type fakeBackend struct {
	mu sync.Mutex
	// envs is the event log; snap the current snapshot.
	envs []events.Envelope
	snap events.Snapshot
	// watch, when non-nil, is what Watch sends instead of snap; after it,
	// Watch blocks until the reader goes away.
	watch []events.Snapshot
	// resume, when non-nil, is what Watch sends when resumed (since > 0);
	// then the first watch ends with api.ErrWatcherTooSlow after watch.
	resume []events.Snapshot
	// more, when non-nil, feeds Watch after its script, for tests that
	// script a wait step by step.
	more chan events.Snapshot
	// autoSeq numbers the scripted snapshots that have no seq: the server
	// shares one encoding per seq among watchers, as a seq names exactly one
	// snapshot in a real log.
	autoSeq uint64
	// watchSince records the since of every Watch.
	watchSince []uint64
	// set answers SetSpec; nil answers generation 1, seq 1.
	set     func(api.SetRequest) (api.SetResponse, error)
	sets    []api.SetRequest
	deletes int
	// deleteApp answers DeleteApp; nil succeeds.
	deleteApp func(context.Context) error
	// compacted, when > 0, plays a retention policy that removed the
	// events up to it: reads below it are a Conflict with resumeSeq, and
	// SnapshotAt can rebuild nothing older than oldest (its oldest
	// checkpoint). snapshotAts counts SnapshotAt calls.
	compacted, oldest uint64
	snapshotAts       int
}

func (b *fakeBackend) retentionError() error {
	return &api.Error{Code: api.CodeConflict, Message: "removed by the retention policy", ResumeSeq: b.compacted}
}

var _ api.Backend = (*fakeBackend)(nil)

func (b *fakeBackend) Snapshot() events.Snapshot {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.snap
}

func (b *fakeBackend) SnapshotAt(_ context.Context, at api.At) (events.Snapshot, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.snapshotAts++
	if b.compacted > 0 && at.Seq > 0 && at.Seq < b.oldest {
		return events.Snapshot{}, b.retentionError()
	}
	n := 0
	for n < len(b.envs) && (at.Seq == 0 || b.envs[n].Seq <= at.Seq) && (at.Time.IsZero() || !b.envs[n].Time.After(at.Time)) {
		n++
	}
	return events.Replay(b.envs[:n])
}

func (b *fakeBackend) Watch(ctx context.Context, since uint64, fn func([]events.Snapshot) error) error {
	if api.IsBroadcast(ctx) {
		// The script is for the CLI's watches: the server's broadcast gets
		// nothing, so no stream parks with it.
		<-ctx.Done()
		return ctx.Err()
	}
	b.mu.Lock()
	b.watchSince = append(b.watchSince, since)
	script, resume, more := b.watch, b.resume, b.more
	if script == nil {
		script = []events.Snapshot{b.snap}
	}
	if since > 0 && resume != nil {
		script, resume = resume, nil
	}
	b.mu.Unlock()
	for _, s := range script {
		if err := fn([]events.Snapshot{b.numbered(s)}); err != nil {
			return err
		}
	}
	if resume != nil {
		return api.ErrWatcherTooSlow
	}
	for {
		select {
		case s := <-more:
			if err := fn([]events.Snapshot{b.numbered(s)}); err != nil {
				return err
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// numbered gives s a seq of its own when the script left it 0.
func (b *fakeBackend) numbered(s events.Snapshot) events.Snapshot {
	if s.Seq != 0 {
		return s
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.autoSeq++
	s.Seq = 1<<20 + b.autoSeq
	return s
}

func (b *fakeBackend) Events(ctx context.Context, q api.EventQuery, fn func(events.Envelope) error) error {
	b.mu.Lock()
	envs, compacted := b.envs, b.compacted
	b.mu.Unlock()
	if q.Since < compacted {
		return b.retentionError()
	}
	n := 0
	for _, e := range envs {
		if e.Seq <= q.Since {
			continue
		}
		if q.Limit > 0 && n == q.Limit {
			break
		}
		if err := fn(e); err != nil {
			return err
		}
		n++
	}
	if q.Follow {
		<-ctx.Done()
		return ctx.Err()
	}
	return nil
}

func (b *fakeBackend) SetSpec(_ context.Context, req api.SetRequest, _ api.Source) (api.SetResponse, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.sets = append(b.sets, req)
	if b.set == nil {
		return api.SetResponse{Generation: 1, Seq: 1}, nil
	}
	return b.set(req)
}

func (b *fakeBackend) DeleteApp(ctx context.Context, _ api.Source) error {
	b.mu.Lock()
	b.deletes++
	hook := b.deleteApp
	b.mu.Unlock()
	if hook != nil {
		return hook(ctx)
	}
	return nil
}

func (b *fakeBackend) recordedSets() []api.SetRequest {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]api.SetRequest(nil), b.sets...)
}

// serve runs the real API server for b on the harness's socket until the test ends.
func (h *harness) serve(b *fakeBackend) {
	h.t.Helper()
	h.serveWith(b, api.ServerOptions{Version: "test", ShutdownGrace: time.Second})
}

// serveWith is serve with the server's options.
func (h *harness) serveWith(b *fakeBackend, opts api.ServerOptions) {
	h.t.Helper()
	ln, err := api.Listen(h.e.paths.Socket)
	if err != nil {
		h.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv := api.NewServer(b, nil, opts)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	h.t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			h.t.Errorf("fake server: %v", err)
		}
	})
}

// loadEvents reads a testdata event log.
func loadEvents(t *testing.T, name string) []events.Envelope {
	t.Helper()
	b, err := os.ReadFile("testdata/replay/" + name)
	if err != nil {
		t.Fatal(err)
	}
	var envs []events.Envelope
	err = readEvents(bytes.NewReader(b), 0, func(ev events.Envelope) error { envs = append(envs, ev); return nil })
	if err != nil {
		t.Fatal(err)
	}
	return envs
}

// logBackend serves the testdata log name with its replayed snapshot.
func logBackend(t *testing.T, name string) *fakeBackend {
	t.Helper()
	envs := loadEvents(t, name)
	snap, err := events.Replay(envs)
	if err != nil {
		t.Fatal(err)
	}
	return &fakeBackend{envs: envs, snap: snap}
}

// cond builds a condition for scripted snapshots.
func cond(typ events.ConditionType, status events.ConditionStatus, reason string, gen int64) events.Condition {
	return events.Condition{Type: typ, Status: status, Reason: reason, Message: strings.ToLower(reason) + " message", ObservedGeneration: gen}
}

func appAt(gen int64, cs ...events.Condition) events.Snapshot {
	return events.Snapshot{Exists: true, Generation: gen, Status: events.AppStatus{Conditions: cs}}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
