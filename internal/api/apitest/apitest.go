// Package apitest provides an in-memory api.Backend and a helper that serves
// it on a real Unix socket, for tests of the server, the client and the CLI.
//
// Backend keeps an event log and the snapshot after every event. Its fold is
// deliberately simple (seq, exists, generation, time): it is a fake of the
// daemon's contract, not of its projector.
package apitest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/rdd-project/rdd/internal/api"
	"github.com/rdd-project/rdd/internal/events"
	"github.com/rdd-project/rdd/internal/spec"
)

// Epoch is the time of the event with seq 0; event seq n is Epoch + n seconds.
var Epoch = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

// DefaultWatchBuffer is the per-watcher buffer of a Backend whose
// WatchBuffer is 0.
const DefaultWatchBuffer = 128

// Properties lists the properties the fake SetSpec accepts.
var Properties = []string{"running", "containerEngine.name", "kubernetes.enabled", "kubernetes.version"}

// Backend is an in-memory api.Backend. The zero value is not usable: call
// NewBackend. Configure the exported fields before serving.
type Backend struct {
	// WatchBuffer bounds how many snapshots may wait for one watcher; a
	// watcher that falls further behind ends with api.ErrWatcherTooSlow.
	WatchBuffer int
	// WatchEnded, if non-nil, receives the error of every Watch of a
	// client's stream that returns, except when the stream was parked with
	// the server's broadcast (api.ErrStreamParked).
	WatchEnded chan error
	// SetHook, if non-nil, runs first in SetSpec; a non-nil error is returned.
	SetHook func(ctx context.Context, req api.SetRequest) error

	mu      sync.Mutex
	log     []events.Envelope // log[i].Seq == i+1
	snaps   []events.Snapshot // snaps[seq]: the snapshot after seq; snaps[0] is empty
	subs    map[*sub]struct{}
	cutAt   uint64        // see CutWatchers
	changed chan struct{} // closed and replaced on every append
	sets    []SetCall
	deletes []api.Source
}

// SetCall records one SetSpec call.
type SetCall struct {
	Req api.SetRequest
	Src api.Source
}

type sub struct {
	ch        chan events.Snapshot
	tooSlow   bool
	broadcast bool // the server's broadcast (api.IsBroadcast), not a client's stream
}

var _ api.Backend = (*Backend)(nil)

// NewBackend returns an empty Backend (seq 0, exists false).
func NewBackend() *Backend { return NewBackendFrom(emptySnapshot()) }

// NewBackendFrom returns a Backend whose snapshot before the first event is
// base (its Seq is ignored); each event then changes only what the simple
// fold changes. Use it with Sample for realistically sized snapshots.
func NewBackendFrom(base events.Snapshot) *Backend {
	base.Seq = 0
	return &Backend{
		snaps:   []events.Snapshot{base},
		subs:    map[*sub]struct{}{},
		changed: make(chan struct{}),
	}
}

// Sample returns a snapshot shaped like design.md §8 with all five
// conditions and four machines: about the size the daemon serves.
func Sample() events.Snapshot {
	sp := spec.Default()
	sp.Running = true
	sp.Kubernetes = spec.Kubernetes{Enabled: true, Version: "1.34.6"}
	s := events.Snapshot{Exists: true, Generation: 3, Spec: &sp,
		Status:   events.AppStatus{KubernetesPort: 7443},
		Machines: map[events.Machine]events.MachineStatus{},
		Daemon:   events.DaemonInfo{PID: 4242, Version: "0.1.0", VMDriver: "host", VMDriverReason: "linux as root", StartedSeq: 1},
	}
	for i, t := range events.ConditionOrder {
		s.Status.Conditions = append(s.Status.Conditions, events.Condition{
			Type: t, Status: events.StatusTrue, Reason: string(t), ObservedGeneration: 3,
			Message:            "The " + string(t) + " condition holds for the App at generation 3",
			LastTransitionTime: Epoch.Add(time.Duration(i) * time.Second), LastTransitionSeq: uint64(10 + i), ReasonSeq: uint64(10 + i),
		})
	}
	for i, m := range events.Machines {
		s.Machines[m] = events.MachineStatus{State: "running", SinceSeq: uint64(20 + i), ObservedGeneration: 3,
			Facts: events.Facts{PID: 100 + i, Port: 7443, TemplateHash: sp.TemplateHash(7443)}}
	}
	return s
}

func emptySnapshot() events.Snapshot {
	return events.Snapshot{Status: events.AppStatus{Conditions: []events.Condition{}}, Machines: map[events.Machine]events.MachineStatus{}}
}

// Append appends an event of type t with payload data (nil means {}), folds
// it and publishes the new snapshot to every watcher. It returns the snapshot.
func (b *Backend) Append(t events.Type, data any) events.Snapshot {
	raw := json.RawMessage("{}")
	if data != nil {
		var err error
		if raw, err = json.Marshal(data); err != nil {
			panic(fmt.Sprintf("apitest: encode %s payload: %v", t, err))
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.appendLocked(t, raw)
}

// Publish appends a Transition event; shorthand for tests that only need
// "a change".
func (b *Backend) Publish() events.Snapshot {
	return b.Append(events.TypeTransition, events.Transition{Machine: events.MachineVM, Event: "test", From: "a", To: "b"})
}

func (b *Backend) appendLocked(t events.Type, data json.RawMessage) events.Snapshot {
	seq := uint64(len(b.log)) + 1
	e := events.Envelope{Seq: seq, Time: Epoch.Add(time.Duration(seq) * time.Second), Type: t, V: events.CurrentVersion, Data: data}
	b.log = append(b.log, e)
	s := b.snaps[seq-1] // maps and slices are never mutated: sharing them is safe
	s.Seq = seq
	switch t {
	case events.TypeSpecChanged:
		s.Exists = true
		s.Generation++
	case events.TypeAppDeleted:
		s = emptySnapshot()
		s.Seq = seq
	}
	b.snaps = append(b.snaps, s)
	for w := range b.subs {
		select {
		case w.ch <- s:
		default: // full: cut the watcher off rather than wait for it
			b.cutLocked(w)
		}
	}
	close(b.changed)
	b.changed = make(chan struct{})
	return s
}

// CutWatchers ends every open watch with api.ErrWatcherTooSlow, as if each
// had fallen behind.
func (b *Backend) CutWatchers() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for w := range b.subs {
		b.cutLocked(w)
	}
	// Streams parked with the server's broadcast are cut when they come
	// back from where they were: they were open now.
	b.cutAt = uint64(len(b.snaps) - 1)
}

// CutBroadcast ends the server's broadcast Watch with
// api.ErrWatcherTooSlow, as if it had fallen behind; the streams' own
// watches go on.
func (b *Backend) CutBroadcast() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for w := range b.subs {
		if w.broadcast {
			b.cutLocked(w)
		}
	}
}

// cutLocked ends w's Watch with api.ErrWatcherTooSlow; b.mu is held.
func (b *Backend) cutLocked(w *sub) {
	w.tooSlow = true
	close(w.ch)
	delete(b.subs, w)
}

// Watchers returns the number of open watches of client streams that are
// not parked with the server's broadcast.
func (b *Backend) Watchers() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for w := range b.subs {
		if !w.broadcast {
			n++
		}
	}
	return n
}

// Backlog returns how many snapshots wait in watcher buffers.
func (b *Backend) Backlog() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for w := range b.subs {
		n += len(w.ch)
	}
	return n
}

// Sets returns the SetSpec calls so far.
func (b *Backend) Sets() []SetCall {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]SetCall(nil), b.sets...)
}

// Deletes returns the sources of the DeleteApp calls so far.
func (b *Backend) Deletes() []api.Source {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]api.Source(nil), b.deletes...)
}

// Snapshot implements api.Backend.
func (b *Backend) Snapshot() events.Snapshot {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.snaps[len(b.snaps)-1]
}

// SnapshotAt implements api.Backend: by seq, or the last event at or before
// the time; an at beyond the log is the current snapshot.
func (b *Backend) SnapshotAt(_ context.Context, at api.At) (events.Snapshot, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	last := uint64(len(b.log))
	switch {
	case at.Seq > 0:
		return b.snaps[min(at.Seq, last)], nil
	case !at.Time.IsZero():
		n := sort.Search(len(b.log), func(i int) bool { return b.log[i].Time.After(at.Time) })
		return b.snaps[n], nil
	}
	return events.Snapshot{}, api.Errorf(api.CodeBadRequest, "empty at")
}

// Watch implements api.Backend. The first snapshots are taken and the
// watcher registered under one lock, so no change falls in between. A batch
// is what the watcher's buffer holds when fn is called.
func (b *Backend) Watch(ctx context.Context, since uint64, fn func([]events.Snapshot) error) (err error) {
	broadcast := api.IsBroadcast(ctx)
	if b.WatchEnded != nil && !broadcast {
		defer func() {
			if !errors.Is(err, api.ErrStreamParked) {
				b.WatchEnded <- err
			}
		}()
	}
	size := b.WatchBuffer
	if size <= 0 {
		size = DefaultWatchBuffer
	}
	w := &sub{ch: make(chan events.Snapshot, size), broadcast: broadcast}
	b.mu.Lock()
	if since > 0 && since <= b.cutAt {
		b.mu.Unlock()
		return api.ErrWatcherTooSlow // a parked stream, open at the cut
	}
	var first []events.Snapshot
	if since == 0 {
		first = []events.Snapshot{b.snaps[len(b.snaps)-1]}
	} else if since < uint64(len(b.snaps)) {
		first = append(first, b.snaps[since+1:]...)
	}
	b.subs[w] = struct{}{}
	b.mu.Unlock()
	defer b.unsubscribe(w)

	if len(first) > 0 {
		if err := fn(first); err != nil {
			return b.parkedOrCut(w, err)
		}
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case s, ok := <-w.ch:
			if !ok {
				return api.ErrWatcherTooSlow
			}
			batch := []events.Snapshot{s}
			for more := true; more; {
				select {
				case s, ok := <-w.ch:
					if ok {
						batch = append(batch, s)
					}
					more = ok
				default:
					more = false
				}
			}
			if err := fn(batch); err != nil {
				return b.parkedOrCut(w, err)
			}
		}
	}
}

// parkedOrCut returns fn's error err, unless the stream parks after w was
// cut off: then it is cut off, as it would have been a moment later.
func (b *Backend) parkedOrCut(w *sub, err error) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if w.tooSlow && errors.Is(err, api.ErrStreamParked) {
		return api.ErrWatcherTooSlow
	}
	return err
}

func (b *Backend) unsubscribe(w *sub) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.subs, w)
}

// Events implements api.Backend.
func (b *Backend) Events(ctx context.Context, q api.EventQuery, fn func(events.Envelope) error) error {
	next, sent := q.Since, 0
	for {
		b.mu.Lock()
		var batch []events.Envelope
		if next < uint64(len(b.log)) {
			batch = b.log[next:]
		}
		changed := b.changed
		b.mu.Unlock()
		for _, e := range batch {
			if q.Limit > 0 && sent == q.Limit {
				return nil
			}
			if err := fn(e); err != nil {
				return err
			}
			next, sent = e.Seq, sent+1
		}
		if !q.Follow || (q.Limit > 0 && sent == q.Limit) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		}
	}
}

// SetSpec implements api.Backend: unknown properties are rejected; anything
// else appends a SpecChanged with the keys in sorted order.
func (b *Backend) SetSpec(ctx context.Context, req api.SetRequest, src api.Source) (api.SetResponse, error) {
	if b.SetHook != nil {
		if err := b.SetHook(ctx, req); err != nil {
			return api.SetResponse{}, err
		}
	}
	keys := make([]string, 0, len(req.Set))
	for k := range req.Set {
		known := false
		for _, p := range Properties {
			known = known || p == k
		}
		if !known {
			return api.SetResponse{}, &api.RejectedError{Message: fmt.Sprintf("unknown property %q", k)}
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.sets = append(b.sets, SetCall{Req: req, Src: src})
	cur := b.snaps[len(b.snaps)-1]
	if req.DryRun || len(keys) == 0 {
		return api.SetResponse{Generation: cur.Generation, Changed: keys}, nil
	}
	data, _ := json.Marshal(events.SpecChanged{Generation: cur.Generation + 1, Changed: keys,
		Source: events.Source{UID: src.UID, PID: src.PID, Command: req.Command}})
	s := b.appendLocked(events.TypeSpecChanged, data)
	return api.SetResponse{Generation: s.Generation, Seq: s.Seq, Changed: keys, Created: cur.Generation == 0}, nil
}

// DeleteApp implements api.Backend. Deleting when no App exists is a 404.
func (b *Backend) DeleteApp(_ context.Context, src api.Source) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.deletes = append(b.deletes, src)
	if !b.snaps[len(b.snaps)-1].Exists {
		return api.Errorf(api.CodeNotFound, "no App to delete")
	}
	data, _ := json.Marshal(events.AppDeleted{Source: events.Source{UID: src.UID, PID: src.PID}})
	b.appendLocked(events.TypeAppDeleted, data)
	return nil
}

// Inventory is a static api.EngineInventory. A non-nil Err is returned by
// every method.
type Inventory struct {
	ContainerList, ImageList, VolumeList any
	Err                                  error
}

var _ api.EngineInventory = (*Inventory)(nil)

// Containers implements api.EngineInventory.
func (i *Inventory) Containers(context.Context) (any, error) { return i.ContainerList, i.Err }

// Images implements api.EngineInventory.
func (i *Inventory) Images(context.Context) (any, error) { return i.ImageList, i.Err }

// Volumes implements api.EngineInventory.
func (i *Inventory) Volumes(context.Context) (any, error) { return i.VolumeList, i.Err }

// Served is a server running for one test.
type Served struct {
	Socket string
	Server *api.Server
	// Stop cancels Serve and returns its error; cleanup calls it too.
	Stop func() error
}

// Serve starts an api.Server for b on a fresh socket under /tmp (short
// enough for sun_path) and stops it when the test ends.
func Serve(tb testing.TB, b api.Backend, opts api.ServerOptions) *Served {
	tb.Helper()
	dir, err := os.MkdirTemp("/tmp", "rdd-api-")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = os.RemoveAll(dir) })
	sock := filepath.Join(dir, "rdd.sock")
	ln, err := api.Listen(sock)
	if err != nil {
		tb.Fatal(err)
	}
	srv := api.NewServer(b, zaptest.NewLogger(tb, zaptest.Level(zap.InfoLevel)), opts)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	var once sync.Once
	var serveErr error
	stop := func() error {
		once.Do(func() { cancel(); serveErr = <-done })
		return serveErr
	}
	tb.Cleanup(func() {
		if err := stop(); err != nil {
			tb.Errorf("Serve: %v", err)
		}
	})
	return &Served{Socket: sock, Server: srv, Stop: stop}
}

// HTTPClient returns a plain http.Client that dials socket, for requests
// the typed client does not make (wrong methods, raw bodies, headers).
// Use any host in URLs, e.g. http://rdd/v1/status.
func HTTPClient(socket string) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
	}}
}
