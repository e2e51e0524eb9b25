package main

import (
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"

	"github.com/rdd-project/rdd/internal/events"
)

// genReader produces its content on demand, so a test can feed rdd replay
// hundreds of megabytes without a file or the memory to hold them.
type genReader struct {
	next func() []byte // nil at the end
	buf  []byte
}

func (g *genReader) Read(p []byte) (int, error) {
	for len(g.buf) == 0 {
		if g.next == nil {
			return 0, io.EOF
		}
		if g.buf = g.next(); g.buf == nil {
			g.next = nil
		}
	}
	n := copy(p, g.buf)
	g.buf = g.buf[n:]
	return n, nil
}

// repeat yields chunk n times.
func repeat(chunk []byte, n int) *genReader {
	return &genReader{next: func() []byte {
		if n == 0 {
			return nil
		}
		n--
		return chunk
	}}
}

// eventStream is an export of n events: the daemon starting, a spec change,
// then observations, each a valid next event for the projector.
func eventStream(n int) *genReader {
	seq := 0
	return &genReader{next: func() []byte {
		if seq == n {
			return nil
		}
		seq++
		switch seq {
		case 1:
			return fmt.Appendf(nil, `{"seq":1,"time":"2026-11-26T12:00:00Z","type":"DaemonStarted","v":1,"data":{"version":"dev","pid":100,"vmDriver":"host","vmDriverReason":"test"}}`+"\n")
		case 2:
			return fmt.Appendf(nil, `{"seq":2,"time":"2026-11-26T12:00:01Z","type":"SpecChanged","v":1,"data":{"generation":1,"spec":{"running":false,"containerEngine":{"name":"moby"},"kubernetes":{"enabled":false},"namespace":"default"},"changed":["running"],"source":{"uid":0,"pid":200,"command":"rdd set running=false"}}}`+"\n")
		}
		return fmt.Appendf(nil, `{"seq":%d,"time":"2026-11-26T12:00:02Z","type":"Observed","v":1,"data":{"machine":"engine","generation":1,"facts":{"note":"%02000d"}}}`+"\n", seq, seq)
	}}
}

// heapWatch samples the live heap: each sample collects garbage first, so
// that what it measures is what the fold holds, not how far the collector
// lagged (it lags further on a loaded machine). peak is the largest growth
// over the first sample.
type heapWatch struct{ base, peak uint64 }

func (w *heapWatch) live() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

func (w *heapWatch) start() { w.base = w.live() }

func (w *heapWatch) sample() {
	if live := w.live(); live > w.base {
		w.peak = max(w.peak, live-w.base)
	}
}

// TestReplayStreamsLargeInput: a replay folds as it reads, so an export far
// larger than the memory it may use still replays, with the live heap
// staying bounded instead of growing with the input (~12 MB here; holding it
// decoded would take more than that).
func TestReplayStreamsLargeInput(t *testing.T) {
	const n = 6000
	var w heapWatch
	w.start()
	count := 0
	err := readEvents(eventStream(n), 0, func(events.Envelope) error {
		if count++; count%1000 == 0 {
			w.sample()
		}
		return nil
	})
	if err != nil || count != n {
		t.Fatalf("readEvents = %d events, %v; want %d", count, err, n)
	}
	if w.peak > 4<<20 {
		t.Errorf("the live heap grew by %d KiB reading %d events (%d MiB), want a bounded heap (< 4 MiB)", w.peak>>10, n, n*2100>>20)
	}

	// Through the command: the snapshot of the whole stream.
	h := newHarness(t)
	h.e.stdin = eventStream(2000)
	if code := h.run("replay", "-", "-o", "json"); code != 0 {
		t.Fatalf("replay of 2000 events = %d: %s", code, h.stderr)
	}
	var snap events.Snapshot
	if err := json.Unmarshal([]byte(h.stdout.String()), &snap); err != nil || snap.Seq != 2000 {
		t.Fatalf("replay printed seq %d (%v), want the snapshot at seq 2000", snap.Seq, err)
	}
}

// TestReplayNewlinesUseNoMemory is the reproduction of issue 10: a flood of
// newlines (8 MiB here, 1 GB in the report) took twice its size in RSS.
// Blank lines are skipped one at a time: almost nothing is allocated.
func TestReplayNewlinesUseNoMemory(t *testing.T) {
	input := repeat([]byte(strings.Repeat("\n", 1<<20)), 8)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	err := readEvents(input, 0, func(events.Envelope) error {
		t.Fatal("an event in a stream of newlines")
		return nil
	})
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 1<<20 {
		t.Errorf("reading 8 MiB of newlines allocated %d KiB, want < 1 MiB", got>>10)
	}
}

// TestReplayOverlongLine: a line above the largest event the store writes
// ends the replay with an error naming the line, after reading at most that
// much of it (the report's 500 MB event took 3.4 GB).
func TestReplayOverlongLine(t *testing.T) {
	head := eventStream(3)
	long := repeat([]byte(strings.Repeat("x", 1<<20)), 500) // a 500 MiB line
	var readLong int
	input := io.MultiReader(head, readCounter{long, &readLong})
	h := newHarness(t)
	h.e.stdin = input
	if code := h.run("replay", "-"); code != 1 {
		t.Fatalf("replay of an over-long line = %d, want 1", code)
	}
	want := fmt.Sprintf("line 4 is longer than %d bytes", events.MaxEncodedBytes)
	if !strings.Contains(h.stderr.String(), want) || !strings.Contains(h.stderr.String(), "standard input") {
		t.Errorf("stderr %q, want it to name standard input and say %q", h.stderr, want)
	}
	if readLong > 2*events.MaxEncodedBytes {
		t.Errorf("read %d MiB of the long line before refusing it, want about %d", readLong>>20, events.MaxEncodedBytes>>20)
	}
}

type readCounter struct {
	r io.Reader
	n *int
}

func (c readCounter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	*c.n += n
	return n, err
}

// TestReplayLimitMatchesStore: a line as long as the largest event the
// store writes (store_test.go checks it refuses larger) still replays, so an
// export never holds a line replay refuses.
func TestReplayLimitMatchesStore(t *testing.T) {
	head := `{"seq":1,"time":"2026-11-26T12:00:00Z","type":"DaemonStarted","v":1,"data":{"version":"`
	tail := `","pid":1,"vmDriver":"host","vmDriverReason":"t"}}`
	line := head + strings.Repeat("v", events.MaxEncodedBytes-len(head)-len(tail)) + tail
	n := 0
	if err := readEvents(strings.NewReader(line+"\r\n"), 0, func(events.Envelope) error { n++; return nil }); err != nil || n != 1 {
		t.Fatalf("a line of %d bytes (at the limit): %d events, %v", len(line), n, err)
	}
}

// TestReplayLineNumbersCountBlankLines: errors name the line as an editor
// shows it, blank lines included.
func TestReplayLineNumbersCountBlankLines(t *testing.T) {
	h := newHarness(t)
	h.e.stdin = strings.NewReader("\n\n\r\n  \n" + `{"seq":1,"time":"2026-11-26T12:00:00Z","type":"Bogus","v":1,"data":{}}` + "\n")
	if code := h.run("replay", "-"); code != 1 || !strings.Contains(h.stderr.String(), "line 5:") {
		t.Fatalf("replay = %d, stderr %q; want an error at line 5", code, h.stderr)
	}
}
