package store_test

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/rdd-project/rdd/internal/events"
	"github.com/rdd-project/rdd/internal/store"
	"github.com/rdd-project/rdd/internal/store/storetest"
)

// benchLog opens a log under b.TempDir() holding n events (appended with
// NoSync in batches of 1000) and reopens it with opts.
func benchLog(b *testing.B, n int, opts store.Options) (*store.Log, string) {
	b.Helper()
	path := filepath.Join(b.TempDir(), "events.db")
	fill(b, path, n)
	l, err := store.Open(path, opts)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = l.Close() })
	return l, path
}

// fill appends n events to the log at path, without fsync.
func fill(b *testing.B, path string, n int) {
	b.Helper()
	l, err := store.Open(path, store.Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	batch := storetest.Envelopes(0, 1000)
	for i := 0; i < n; i += len(batch) {
		if _, err := l.Append(batch[:min(len(batch), n-i)]...); err != nil {
			b.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		b.Fatal(err)
	}
}

// meter measures wall-clock and CPU time (all threads of the process) from
// its creation, so that a figure taken on a busy shared machine can be read
// both ways.
type meter struct {
	wall time.Time
	cpu  time.Duration
}

func newMeter() meter { return meter{wall: time.Now(), cpu: cpuTime()} }

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// report adds events/s (wall clock) and events/cpu-s for n events.
func (m meter) report(b *testing.B, n int) {
	b.ReportMetric(float64(n)/time.Since(m.wall).Seconds(), "events/s")
	if cpu := cpuTime() - m.cpu; cpu > 0 {
		b.ReportMetric(float64(n)/cpu.Seconds(), "events/cpu-s")
	}
}

// BenchmarkAppendBatch appends batches of 1000 envelopes, one transaction
// each: durable (fsync, as the daemon runs) and, to separate the disk from
// the CPU, without fsync.
func BenchmarkAppendBatch(b *testing.B) {
	for _, noSync := range []bool{false, true} {
		name := map[bool]string{false: "fsync", true: "nosync"}[noSync]
		b.Run(name, func(b *testing.B) {
			l, _ := benchLog(b, 0, store.Options{NoSync: noSync})
			batch := storetest.Envelopes(0, 1000)
			m := newMeter()
			n := 0
			for b.Loop() {
				if _, err := l.Append(batch...); err != nil {
					b.Fatal(err)
				}
				n += len(batch)
			}
			m.report(b, n)
		})
	}
}

// BenchmarkAppendSingle appends one envelope per durable transaction: the
// cost of one state-machine transition.
func BenchmarkAppendSingle(b *testing.B) {
	l, _ := benchLog(b, 0, store.Options{})
	e := storetest.Envelope(0)
	m := newMeter()
	n := 0
	for b.Loop() {
		if _, err := l.Append(e); err != nil {
			b.Fatal(err)
		}
		n++
	}
	m.report(b, n)
}

// BenchmarkRange decodes a 200k-event log from the start, as a replay does.
func BenchmarkRange(b *testing.B) {
	const n = 200_000
	l, _ := benchLog(b, n, store.Options{})
	m := newMeter()
	total := 0
	for b.Loop() {
		err := l.Range(0, 0, func(events.Envelope) error { total++; return nil })
		if err != nil {
			b.Fatal(err)
		}
	}
	if total != n*b.N {
		b.Fatalf("ranged %d events, want %d", total, n*b.N)
	}
	m.report(b, total)
}

// BenchmarkOpen1M opens (start → ready: lock, header check, page walk, meta,
// newest event) a log of one million events. The file is built once per run.
func BenchmarkOpen1M(b *testing.B) {
	const n = 1_000_000
	path := filepath.Join(b.TempDir(), "events.db")
	fill(b, path, n)
	st, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		l, err := store.Open(path, store.Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if l.LastSeq() != n {
			b.Fatalf("LastSeq = %d, want %d", l.LastSeq(), n)
		}
		if err := l.Close(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(st.Size())/(1<<20), "file-MiB")
}

// BenchmarkOpenReader100k opens a log of 100k events as `rdd status` does
// with the daemon down, next to Open of the same file: OpenReader leaves
// the events bucket's leaves to the reads that reach them.
func BenchmarkOpenReader100k(b *testing.B) {
	const n = 100_000
	path := filepath.Join(b.TempDir(), "events.db")
	fill(b, path, n)
	for _, tt := range []struct {
		name string
		open func(string, store.Options) (*store.Log, error)
	}{{"OpenReader", store.OpenReader}, {"Open", store.Open}} {
		b.Run(tt.name, func(b *testing.B) {
			for b.Loop() {
				l, err := tt.open(path, store.Options{})
				if err != nil {
					b.Fatal(err)
				}
				if l.LastSeq() != n {
					b.Fatalf("LastSeq = %d", l.LastSeq())
				}
				if err := l.Close(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSeqAtTime1M answers `status --at TIME` on a log of one million
// events, one per millisecond: through the time index (a binary search,
// what the daemon does) and, for comparison, by the linear scan it replaced.
// Each iteration asks for a different time, spread over the whole log.
func BenchmarkSeqAtTime1M(b *testing.B) {
	const n = 1_000_000
	path := filepath.Join(b.TempDir(), "events.db")
	l, err := store.Open(path, store.Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < n; i += 1000 {
		if _, err := l.Append(storetest.Envelopes(i, 1000)...); err != nil {
			b.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		b.Fatal(err)
	}
	l, err = store.Open(path, store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = l.Close() })
	at := func(i int) (time.Time, uint64) {
		k := (i * 381_967) % n // a stride coprime with n, ~0.38 n: spread over the log at once
		return storetest.Base.Add(time.Duration(k)*time.Millisecond + time.Microsecond), uint64(k + 1)
	}
	b.Run("index", func(b *testing.B) {
		i := 0
		for b.Loop() {
			t, want := at(i)
			if got, err := l.SeqAtTime(t); err != nil || got != want {
				b.Fatalf("SeqAtTime = %d, %v; want %d", got, err, want)
			}
			i++
		}
	})
	b.Run("scan", func(b *testing.B) {
		i := 0
		stop := errors.New("stop")
		for b.Loop() {
			t, want := at(i)
			var got uint64
			err := l.Range(0, 0, func(e events.Envelope) error {
				if e.Time.After(t) {
					return stop
				}
				got = e.Seq
				return nil
			})
			if !errors.Is(err, stop) && err != nil || got != want {
				b.Fatalf("scan = %d, %v; want %d", got, err, want)
			}
			i++
		}
	})
}
