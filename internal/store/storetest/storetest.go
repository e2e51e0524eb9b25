// Package storetest is the conformance suite of store.EventLog: every
// implementation (the bbolt Log and the in-memory Mem) must pass Run.
package storetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rdd-project/rdd/internal/events"
	"github.com/rdd-project/rdd/internal/store"
)

// Factory returns a new, empty log. It registers its own cleanup (closing the
// log, and checking it first where the implementation can); tests may close
// the log themselves as well.
type Factory func(t *testing.T) store.EventLog

// Run runs the conformance suite against the logs newLog makes.
func Run(t *testing.T, newLog Factory) {
	tests := []struct {
		name string
		fn   func(*testing.T, Factory)
	}{
		{"Empty", testEmpty},
		{"AppendAssignsSequence", testAppendAssignsSequence},
		{"AppendNormalizes", testAppendNormalizes},
		{"AppendAllOrNothing", testAppendAllOrNothing},
		{"RangeSinceLimit", testRangeSinceLimit},
		{"RangeStopsOnError", testRangeStopsOnError},
		{"RangeLong", testRangeLong},
		{"Get", testGet},
		{"Checkpoints", testCheckpoints},
		{"CheckpointArguments", testCheckpointArguments},
		{"CheckpointRetention", testCheckpointRetention},
		{"Compact", testCompact},
		{"SeqAtTime", testSeqAtTime},
		{"AppendSizeLimit", testAppendSizeLimit},
		{"Closed", testClosed},
		{"ConcurrentReaders", testConcurrentReaders},
		{"CloseWhileReading", testCloseWhileReading},
		{"Property", testProperty},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newLog) })
	}
}

// Base is the time of the first envelope Envelope makes.
var Base = time.Date(2026, 11, 26, 12, 0, 0, 123456789, time.UTC)

// Envelope returns a valid unsequenced envelope, distinct for each i.
func Envelope(i int) events.Envelope {
	e, err := events.New(Base.Add(time.Duration(i)*time.Millisecond), &events.Transition{
		Machine: events.MachineVM, Event: "start", From: "stopped", To: "starting",
		Reason: "Starting", Message: fmt.Sprintf("event %d", i), Generation: int64(i),
	})
	if err != nil {
		panic(err)
	}
	return e
}

// Envelopes returns Envelope(from) … Envelope(from+n-1).
func Envelopes(from, n int) []events.Envelope {
	out := make([]events.Envelope, n)
	for i := range out {
		out[i] = Envelope(from + i)
	}
	return out
}

// MustAppend appends envs and fails t on error.
func MustAppend(t testing.TB, l store.EventLog, envs ...events.Envelope) []events.Envelope {
	t.Helper()
	out, err := l.Append(envs...)
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	return out
}

// Collect returns what Range(since, limit) yields.
func Collect(l store.EventLog, since uint64, limit int) ([]events.Envelope, error) {
	var out []events.Envelope
	err := l.Range(since, limit, func(e events.Envelope) error {
		out = append(out, e)
		return nil
	})
	return out, err
}

func seqs(envs []events.Envelope) []uint64 {
	out := make([]uint64, len(envs))
	for i, e := range envs {
		out[i] = e.Seq
	}
	return out
}

func testEmpty(t *testing.T, newLog Factory) {
	l := newLog(t)
	if got := l.LastSeq(); got != 0 {
		t.Fatalf("LastSeq = %d, want 0", got)
	}
	got, err := Collect(l, 0, 0)
	if err != nil || len(got) != 0 {
		t.Fatalf("Range on empty log = %v, %v", got, err)
	}
	for _, seq := range []uint64{0, 1} {
		if _, err := l.Get(seq); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Get(%d) error = %v, want ErrNotFound", seq, err)
		}
	}
	if _, _, ok, err := l.LatestCheckpoint(); ok || err != nil {
		t.Errorf("LatestCheckpoint = ok %v, %v", ok, err)
	}
	if out, err := l.Append(); out != nil || err != nil {
		t.Errorf("Append() = %v, %v, want nil, nil", out, err)
	}
}

func testAppendAssignsSequence(t *testing.T, newLog Factory) {
	l := newLog(t)
	in := Envelopes(0, 5)
	in[0].Seq = 99 // ignored: the store assigns
	var all []events.Envelope
	all = append(all, MustAppend(t, l, in[:3]...)...)
	all = append(all, MustAppend(t, l, in[3])...)
	all = append(all, MustAppend(t, l, in[4:]...)...)
	if want := []uint64{1, 2, 3, 4, 5}; !reflect.DeepEqual(seqs(all), want) {
		t.Fatalf("seqs = %v, want %v", seqs(all), want)
	}
	for i, e := range all {
		if e.Type != in[i].Type || e.V != in[i].V || !e.Time.Equal(in[i].Time) || string(e.Data) != string(in[i].Data) {
			t.Errorf("stored %d = %+v, appended %+v", i, e, in[i])
		}
	}
	if got := l.LastSeq(); got != 5 {
		t.Fatalf("LastSeq = %d, want 5", got)
	}
	got, err := Collect(l, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, all) {
		t.Fatalf("Range = %+v\nwant %+v", got, all)
	}
}

func testAppendNormalizes(t *testing.T, newLog Factory) {
	l := newLog(t)
	e := Envelope(0)
	e.Time = time.Now().In(time.FixedZone("CET", 3600)) // monotonic reading, not UTC
	e.Data = json.RawMessage(`{ "machine" : "vm",  "message": "<b>" }`)
	out := MustAppend(t, l, e)
	if loc := out[0].Time.Location(); loc != time.UTC {
		t.Errorf("stored time location = %v, want UTC", loc)
	}
	if !out[0].Time.Equal(e.Time) {
		t.Errorf("stored time %v, appended %v", out[0].Time, e.Time)
	}
	if want := `{"machine":"vm","message":"\u003cb\u003e"}`; string(out[0].Data) != want {
		t.Errorf("stored data %s, want %s", out[0].Data, want)
	}
	got, err := l.Get(1)
	if err != nil || !reflect.DeepEqual(got, out[0]) {
		t.Fatalf("Get(1) = %+v, %v; Append returned %+v", got, err, out[0])
	}
}

func testAppendAllOrNothing(t *testing.T, newLog Factory) {
	l := newLog(t)
	MustAppend(t, l, Envelope(0))
	bad := map[string]func(*events.Envelope){
		"zero time":        func(e *events.Envelope) { e.Time = time.Time{} },
		"unknown type":     func(e *events.Envelope) { e.Type = "NoSuchEvent" },
		"version 0":        func(e *events.Envelope) { e.V = 0 },
		"newer version":    func(e *events.Envelope) { e.V = events.CurrentVersion + 1 },
		"array payload":    func(e *events.Envelope) { e.Data = json.RawMessage(`[1]`) },
		"empty payload":    func(e *events.Envelope) { e.Data = nil },
		"truncated object": func(e *events.Envelope) { e.Data = json.RawMessage(`{"a":`) },
		"year 10000":       func(e *events.Envelope) { e.Time = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) },
	}
	for name, spoil := range bad {
		t.Run(name, func(t *testing.T) {
			batch := Envelopes(1, 3)
			spoil(&batch[1])
			out, err := l.Append(batch...)
			if !errors.Is(err, events.ErrInvalidEnvelope) {
				t.Fatalf("Append error = %v, want events.ErrInvalidEnvelope", err)
			}
			if out != nil {
				t.Errorf("Append returned %v with its error", out)
			}
			if !strings.Contains(err.Error(), "event 2 of 3") {
				t.Errorf("error %q does not say which event", err)
			}
			if got := l.LastSeq(); got != 1 {
				t.Errorf("LastSeq = %d after a failed append, want 1", got)
			}
			if got, err := Collect(l, 0, 0); err != nil || len(got) != 1 {
				t.Errorf("Range after failed append = %d events, %v", len(got), err)
			}
		})
	}
	// The next good append continues without a gap.
	if out := MustAppend(t, l, Envelope(9)); out[0].Seq != 2 {
		t.Fatalf("seq after failed appends = %d, want 2", out[0].Seq)
	}
}

func testRangeSinceLimit(t *testing.T, newLog Factory) {
	l := newLog(t)
	all := MustAppend(t, l, Envelopes(0, 10)...)
	cases := []struct {
		since uint64
		limit int
		want  []uint64
	}{
		{0, 0, []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}},
		{0, -1, []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}},
		{0, 3, []uint64{1, 2, 3}},
		{4, 0, []uint64{5, 6, 7, 8, 9, 10}},
		{4, 2, []uint64{5, 6}},
		{8, 5, []uint64{9, 10}},
		{9, 1, []uint64{10}},
		{10, 0, nil},
		{11, 0, nil},
		{1 << 62, 3, nil},
	}
	for _, tc := range cases {
		got, err := Collect(l, tc.since, tc.limit)
		if err != nil {
			t.Fatalf("Range(%d, %d): %v", tc.since, tc.limit, err)
		}
		if !reflect.DeepEqual(seqs(got), append([]uint64{}, tc.want...)) {
			t.Errorf("Range(%d, %d) = %v, want %v", tc.since, tc.limit, seqs(got), tc.want)
		}
		for _, e := range got {
			if !reflect.DeepEqual(e, all[e.Seq-1]) {
				t.Errorf("Range yielded %+v, appended %+v", e, all[e.Seq-1])
			}
		}
	}
}

func testRangeStopsOnError(t *testing.T, newLog Factory) {
	l := newLog(t)
	MustAppend(t, l, Envelopes(0, 10)...)
	stop := errors.New("stop here")
	calls := 0
	err := l.Range(0, 0, func(e events.Envelope) error {
		calls++
		if e.Seq == 3 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || calls != 3 {
		t.Fatalf("Range = %v after %d calls, want the callback's error after 3", err, calls)
	}
}

// testRangeLong crosses several read transactions (the store's chunk) and
// appends while ranging: the range ends at LastSeq as of the call.
func testRangeLong(t *testing.T, newLog Factory) {
	l := newLog(t)
	const n = 9000 // more than one default chunk (8192)
	for i := 0; i < n; i += 1000 {
		MustAppend(t, l, Envelopes(i, 1000)...)
	}
	want := uint64(1)
	err := l.Range(0, 0, func(e events.Envelope) error {
		if e.Seq != want {
			return fmt.Errorf("got seq %d, want %d", e.Seq, want)
		}
		if e.Seq%3000 == 0 {
			if _, err := l.Append(Envelope(int(e.Seq))); err != nil {
				return err
			}
		}
		want++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want-1 != n {
		t.Fatalf("Range yielded up to %d, want %d", want-1, n)
	}
	got, err := Collect(l, n-10, 0)
	if err != nil || len(got) != 13 {
		t.Fatalf("Range(%d) = %d events, %v; want 13", n-10, len(got), err)
	}
}

func testGet(t *testing.T, newLog Factory) {
	l := newLog(t)
	all := MustAppend(t, l, Envelopes(0, 5)...)
	for _, want := range all {
		got, err := l.Get(want.Seq)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("Get(%d) = %+v, %v; want %+v", want.Seq, got, err, want)
		}
	}
	for _, seq := range []uint64{0, 6, 1 << 63} {
		if _, err := l.Get(seq); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Get(%d) error = %v, want ErrNotFound", seq, err)
		}
	}
}

func testCheckpoints(t *testing.T, newLog Factory) {
	l := newLog(t)
	MustAppend(t, l, Envelopes(0, 20)...)
	data := map[uint64][]byte{}
	for _, s := range []uint64{5, 10, 15} {
		data[s] = []byte(fmt.Sprintf(`{"seq":%d}`, s))
		in := append([]byte{}, data[s]...)
		if err := l.SaveCheckpoint(s, in); err != nil {
			t.Fatal(err)
		}
		in[0] = 'X' // the store must not keep the caller's slice
	}
	seq, got, ok, err := l.LatestCheckpoint()
	if err != nil || !ok || seq != 15 || string(got) != string(data[15]) {
		t.Fatalf("LatestCheckpoint = %d %q %v %v", seq, got, ok, err)
	}
	got[0] = 'Y' // nor hand out its own
	cases := []struct {
		at, want uint64
		ok       bool
	}{{0, 0, false}, {4, 0, false}, {5, 5, true}, {9, 5, true}, {10, 10, true}, {14, 10, true}, {15, 15, true}, {99, 15, true}}
	for _, tc := range cases {
		seq, got, ok, err := l.CheckpointAtOrBefore(tc.at)
		if err != nil || ok != tc.ok || seq != tc.want || (ok && string(got) != string(data[tc.want])) {
			t.Errorf("CheckpointAtOrBefore(%d) = %d %q %v %v, want %d %v", tc.at, seq, got, ok, err, tc.want, tc.ok)
		}
	}
	// Saving again at the same seq replaces.
	if err := l.SaveCheckpoint(10, []byte("again")); err != nil {
		t.Fatal(err)
	}
	if _, got, _, _ := l.CheckpointAtOrBefore(12); string(got) != "again" {
		t.Errorf("checkpoint 10 = %q after replacing it", got)
	}
}

func testCheckpointArguments(t *testing.T, newLog Factory) {
	l := newLog(t)
	MustAppend(t, l, Envelopes(0, 3)...)
	for _, tc := range []struct {
		seq  uint64
		data []byte
	}{{0, []byte("x")}, {4, []byte("x")}, {2, nil}, {2, []byte{}}} {
		if err := l.SaveCheckpoint(tc.seq, tc.data); err == nil {
			t.Errorf("SaveCheckpoint(%d, %q) succeeded", tc.seq, tc.data)
		}
	}
	if _, _, ok, _ := l.LatestCheckpoint(); ok {
		t.Error("a refused checkpoint was stored")
	}
}

// testCheckpointRetention compares the checkpoints kept with a direct model
// of the documented policy.
func testCheckpointRetention(t *testing.T, newLog Factory) {
	l := newLog(t)
	const n = 1500
	MustAppend(t, l, Envelopes(0, n)...)
	var model []uint64
	for s := uint64(1); s <= n; s += 1 + s%7 {
		if err := l.SaveCheckpoint(s, []byte{byte(s)}); err != nil {
			t.Fatal(err)
		}
		model = retain(append(model, s))
	}
	var kept []uint64
	for at := uint64(n); ; {
		seq, data, ok, err := l.CheckpointAtOrBefore(at)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		if data[0] != byte(seq) {
			t.Errorf("checkpoint %d holds %d", seq, data[0])
		}
		kept = append([]uint64{seq}, kept...)
		at = seq - 1
	}
	if !reflect.DeepEqual(kept, model) {
		t.Fatalf("kept checkpoints %v\nwant %v", kept, model)
	}
	if len(kept) > store.RecentCheckpoints+64 || kept[0] != 1 {
		t.Fatalf("kept %d checkpoints starting at %d", len(kept), kept[0])
	}
}

// retain is the retention policy written out: the newest RecentCheckpoints
// stay; an older checkpoint goes if an older one sits in the same power-of-two
// distance band from the newest and an older one in its CheckpointStride
// block.
func retain(cps []uint64) []uint64 {
	newest := cps[len(cps)-1]
	band := func(s uint64) int {
		b := -1
		for d := newest - s; d > 0; d >>= 1 {
			b++
		}
		return b
	}
	var out []uint64
	for i, s := range cps {
		keep := i >= len(cps)-store.RecentCheckpoints
		if !keep {
			sameBand, sameBlock := false, false
			for _, o := range cps[:i] {
				sameBand = sameBand || band(o) == band(s)
				sameBlock = sameBlock || o/store.CheckpointStride == s/store.CheckpointStride
			}
			keep = !sameBand || !sameBlock
		}
		if keep {
			out = append(out, s)
		}
	}
	return out
}

func testCompact(t *testing.T, newLog Factory) {
	l := newLog(t)
	c, ok := l.(store.Compactor)
	if !ok {
		t.Skip("not a store.Compactor")
	}
	all := MustAppend(t, l, Envelopes(0, 10)...)
	if _, err := c.Compact(5); err == nil {
		t.Fatal("Compact without a checkpoint succeeded")
	}
	for _, s := range []uint64{2, 4, 6} {
		if err := l.SaveCheckpoint(s, []byte("cp")); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Compact(7); err == nil {
		t.Fatal("Compact beyond the newest checkpoint succeeded")
	}
	if _, err := c.Compact(11); err == nil {
		t.Fatal("Compact beyond the last event succeeded")
	}
	if removed, err := c.Compact(4); err != nil || removed != 4 {
		t.Fatalf("Compact(4) = %d, %v; want 4", removed, err)
	}
	if removed, err := c.Compact(3); err != nil || removed != 0 {
		t.Fatalf("Compact(3) after Compact(4) = %d, %v; want 0", removed, err)
	}
	if got := c.CompactedThrough(); got != 4 {
		t.Fatalf("CompactedThrough = %d, want 4", got)
	}
	if _, err := Collect(l, 3, 0); !errors.Is(err, store.ErrCompacted) {
		t.Errorf("Range(3) error = %v, want ErrCompacted", err)
	}
	if _, err := l.Get(4); !errors.Is(err, store.ErrCompacted) {
		t.Errorf("Get(4) error = %v, want ErrCompacted", err)
	}
	got, err := Collect(l, 4, 0)
	if err != nil || !reflect.DeepEqual(got, all[4:]) {
		t.Fatalf("Range(4) = %v, %v; want seqs 5..10", seqs(got), err)
	}
	if seq, _, ok, _ := l.CheckpointAtOrBefore(3); ok {
		t.Errorf("checkpoint %d below the compaction survived", seq)
	}
	if seq, _, ok, _ := l.CheckpointAtOrBefore(5); !ok || seq != 4 {
		t.Errorf("CheckpointAtOrBefore(5) = %d %v, want 4", seq, ok)
	}
	if out := MustAppend(t, l, Envelope(10)); out[0].Seq != 11 {
		t.Fatalf("seq after compaction = %d, want 11", out[0].Seq)
	}
	// Compacting everything a checkpoint covers, up to the last event.
	if err := l.SaveCheckpoint(11, []byte("cp")); err != nil {
		t.Fatal(err)
	}
	if removed, err := c.Compact(11); err != nil || removed != 7 {
		t.Fatalf("Compact(11) = %d, %v; want 7", removed, err)
	}
	if got, err := Collect(l, 11, 0); err != nil || len(got) != 0 {
		t.Fatalf("Range(11) on a fully compacted log = %v, %v", got, err)
	}
	if out := MustAppend(t, l, Envelope(11)); out[0].Seq != 12 {
		t.Fatalf("seq after full compaction = %d, want 12", out[0].Seq)
	}
}

func testClosed(t *testing.T, newLog Factory) {
	l := newLog(t)
	MustAppend(t, l, Envelopes(0, 3)...)
	if err := l.SaveCheckpoint(2, []byte("cp")); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second Close = %v, want nil", err)
	}
	if got := l.LastSeq(); got != 3 {
		t.Errorf("LastSeq after Close = %d, want 3", got)
	}
	_, errAppend := l.Append(Envelope(3))
	_, errGet := l.Get(1)
	_, _, _, errLatest := l.LatestCheckpoint()
	_, _, _, errAt := l.CheckpointAtOrBefore(2)
	for name, err := range map[string]error{
		"Append":               errAppend,
		"Range":                l.Range(0, 0, func(events.Envelope) error { return nil }),
		"Get":                  errGet,
		"SaveCheckpoint":       l.SaveCheckpoint(3, []byte("cp")),
		"LatestCheckpoint":     errLatest,
		"CheckpointAtOrBefore": errAt,
	} {
		if !errors.Is(err, store.ErrClosed) {
			t.Errorf("%s after Close: error = %v, want ErrClosed", name, err)
		}
	}
}

// testConcurrentReaders appends from one goroutine while others read; every
// read must see a contiguous prefix of the log (run with -race).
func testConcurrentReaders(t *testing.T, newLog Factory) {
	l := newLog(t)
	const batches, size = 50, 20
	done := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for r := 0; r < 3; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				last := l.LastSeq()
				got, err := Collect(l, 0, 0)
				if err == nil && uint64(len(got)) < last {
					err = fmt.Errorf("Range saw %d events, LastSeq was already %d", len(got), last)
				}
				for i, e := range got {
					if err == nil && e.Seq != uint64(i+1) {
						err = fmt.Errorf("Range yielded seq %d at position %d", e.Seq, i)
					}
				}
				if err == nil && last > 0 {
					_, err = l.Get(last)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for i := 0; i < batches; i++ {
		if _, err := l.Append(Envelopes(i*size, size)...); err != nil {
			t.Error(err)
			break
		}
	}
	close(done)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := l.LastSeq(); got != batches*size {
		t.Fatalf("LastSeq = %d, want %d", got, batches*size)
	}
}

// testCloseWhileReading closes the log under running readers and a writer:
// each must stop with ErrClosed, never with another error or a crash.
func testCloseWhileReading(t *testing.T, newLog Factory) {
	l := newLog(t)
	MustAppend(t, l, Envelopes(0, 2000)...)
	var started, wg sync.WaitGroup
	errs := make(chan error, 4)
	loop := func(op func() error) {
		started.Add(1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			first := true
			for {
				err := op()
				if first {
					started.Done()
					first = false
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	loop(func() error { return l.Range(0, 0, func(events.Envelope) error { return nil }) })
	loop(func() error { _, err := l.Get(1000); return err })
	loop(func() error { _, _, _, err := l.LatestCheckpoint(); return err })
	loop(func() error { _, err := l.Append(Envelope(0)); return err })
	started.Wait()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if !errors.Is(err, store.ErrClosed) {
			t.Errorf("operation racing Close failed with %v, want ErrClosed", err)
		}
	}
}

// testSeqAtTime checks the time index against a linear scan, with runs of
// equal times (commits in one batch share one), before and after compaction.
func testSeqAtTime(t *testing.T, newLog Factory) {
	l := newLog(t)
	ti, ok := l.(store.TimeIndex)
	if !ok {
		t.Skip("not a store.TimeIndex")
	}
	if seq, err := ti.SeqAtTime(Base); err != nil || seq != 0 {
		t.Fatalf("SeqAtTime on an empty log = %d, %v; want 0", seq, err)
	}
	const n = 41
	envs := Envelopes(0, n)
	for i := range envs {
		envs[i].Time = Base.Add(time.Duration(i/3) * time.Second)
	}
	all := MustAppend(t, l, envs...)
	scan := func(at time.Time) uint64 {
		var seq uint64
		for _, e := range all {
			if !e.Time.After(at) {
				seq = e.Seq
			}
		}
		return seq
	}
	for d := -2 * time.Second; d <= (n/3+2)*time.Second; d += 250 * time.Millisecond {
		at := Base.Add(d)
		got, err := ti.SeqAtTime(at)
		if want := scan(at); err != nil || got != want {
			t.Fatalf("SeqAtTime(Base%+v) = %d, %v; want %d", d, got, err, want)
		}
	}
	c, ok := l.(store.Compactor)
	if !ok {
		return
	}
	if err := l.SaveCheckpoint(12, []byte("cp")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Compact(12); err != nil {
		t.Fatal(err)
	}
	// Event 13 is at Base+4s: anything before it is no longer answerable.
	if _, err := ti.SeqAtTime(Base.Add(3 * time.Second)); !errors.Is(err, store.ErrCompacted) {
		t.Errorf("SeqAtTime before the retained events: error = %v, want ErrCompacted", err)
	}
	if got, err := ti.SeqAtTime(Base.Add(4 * time.Second)); err != nil || got != 15 {
		t.Errorf("SeqAtTime(Base+4s) after compaction = %d, %v; want 15", got, err)
	}
	if got, err := ti.SeqAtTime(Base.Add(time.Hour)); err != nil || got != n {
		t.Errorf("SeqAtTime(Base+1h) = %d, %v; want %d", got, err, n)
	}
}

// testAppendSizeLimit: an envelope above events.MaxEncodedBytes is refused,
// storing nothing, so every stored event fits one line of an export that
// rdd replay reads; a payload as large as an API request still fits.
func testAppendSizeLimit(t *testing.T, newLog Factory) {
	l := newLog(t)
	withNote := func(n int) events.Envelope {
		e := Envelope(0)
		e.Data = json.RawMessage(`{"note":"` + strings.Repeat("n", n) + `"}`)
		return e
	}
	if _, err := l.Append(Envelope(1), withNote(events.MaxEncodedBytes)); !errors.Is(err, events.ErrInvalidEnvelope) {
		t.Fatalf("Append of a %d-byte payload: %v, want ErrInvalidEnvelope", events.MaxEncodedBytes, err)
	}
	if got := l.LastSeq(); got != 0 {
		t.Fatalf("LastSeq after a refused append = %d, want 0", got)
	}
	out := MustAppend(t, l, withNote(1<<20))
	if got, err := l.Get(out[0].Seq); err != nil || len(got.Data) != len(out[0].Data) {
		t.Fatalf("Get of a 1 MiB payload: %d bytes, %v", len(got.Data), err)
	}
}
