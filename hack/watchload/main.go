// Command watchload measures the fan-out of a running rdd daemon (issue 10):
// it opens many watch streams on the daemon's socket, makes spec changes one
// at a time, and reports, per change, how long the last watcher took to see
// the change's snapshot, plus the daemon's RSS before, with the watchers idle,
// after the changes and after the watchers closed.
//
// It is bounded by -watchers, -changes and -timeout and uses the Unix socket
// only. Run it against a throwaway instance:
//
//	HOME=/tmp/h RDD_VM_DRIVER=host rdd svc start
//	HOME=/tmp/h go run ./hack/watchload -watchers 1000 -changes 50
//
// The readers run in this process, on the same cores as the daemon, so they
// are kept cheap: a small buffer per connection and no JSON decoding, only
// the top-level "seq" of each line.
package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rdd-project/rdd/internal/api"
	"github.com/rdd-project/rdd/internal/api/client"
)

func main() {
	home, _ := os.UserHomeDir()
	socket := flag.String("socket", filepath.Join(home, ".rd2", "rdd.sock"), "the daemon's socket")
	watchers := flag.Int("watchers", 1000, "watch streams to open")
	changes := flag.Int("changes", 50, "spec changes to make, one at a time")
	timeout := flag.Duration("timeout", 3*time.Minute, "bound of the whole run")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	if err := run(ctx, *socket, *watchers, *changes); err != nil {
		fmt.Fprintln(os.Stderr, "watchload:", err)
		os.Exit(1)
	}
}

// change is one spec change: its seq and when its request was sent.
type change struct {
	seq uint64
	t0  time.Time
}

// arrival is when one watcher read the line of one seq.
type arrival struct {
	seq uint64
	at  time.Time
}

type watcher struct {
	conn net.Conn
	last atomic.Uint64 // newest seq read
	// seen is appended to by the watcher's goroutine only, and read after
	// it ended.
	seen []arrival
	err  atomic.Pointer[error] // why the stream ended early
}

func run(ctx context.Context, socket string, n, changes int) error {
	cli := client.New(socket)
	defer cli.CloseIdleConnections()
	snap, err := cli.Status(ctx)
	if err != nil {
		return err
	}
	pid := snap.Daemon.PID
	fmt.Printf("daemon pid %d, seq %d; %d watchers, %d changes\n", pid, snap.Seq, n, changes)
	rss("before", pid)

	ws := make([]*watcher, n)
	var wg sync.WaitGroup
	for i := range ws {
		c, err := (&net.Dialer{}).DialContext(ctx, "unix", socket)
		if err != nil {
			return fmt.Errorf("open watcher %d: %w", i, err)
		}
		w := &watcher{conn: c, seen: make([]arrival, 0, 16*changes+16)}
		ws[i] = w
		wg.Add(1)
		go func() { defer wg.Done(); w.read() }()
	}
	closeAll := func() {
		for _, w := range ws {
			if w != nil {
				_ = w.conn.Close()
			}
		}
		wg.Wait()
	}
	defer closeAll()
	if err := waitAll(ctx, ws, snap.Seq); err != nil {
		return fmt.Errorf("first snapshot: %w", err)
	}
	settle(ctx, time.Second) // let the daemon's heap settle with the watchers idle
	rss(fmt.Sprintf("%d idle watchers", n), pid)

	done := make([]change, 0, changes)
	version := "1.34.6"
	if snap.Spec != nil && snap.Spec.Kubernetes.Version == version {
		version = "1.33.10"
	}
	for k := range changes {
		t0 := time.Now()
		r, err := cli.Set(ctx, api.SetRequest{Set: api.Properties{"kubernetes.version": version}, Command: "watchload"})
		version = map[string]string{"1.34.6": "1.33.10", "1.33.10": "1.34.6"}[version]
		if err != nil {
			return fmt.Errorf("change %d: %w", k, err)
		}
		if r.Seq == 0 {
			return fmt.Errorf("change %d changed nothing", k)
		}
		if err := waitAll(ctx, ws, r.Seq); err != nil {
			return fmt.Errorf("change %d (seq %d): %w", k, r.Seq, err)
		}
		done = append(done, change{r.Seq, t0})
		// The controllers answer a change with a few events of their own;
		// the next change starts once every watcher has those too.
		cur, err := cli.Status(ctx)
		if err != nil {
			return err
		}
		if err := waitAll(ctx, ws, cur.Seq); err != nil {
			return fmt.Errorf("after change %d (seq %d): %w", k, cur.Seq, err)
		}
		settle(ctx, 20*time.Millisecond)
	}
	rss("after the changes", pid)
	closeAll()
	report(ws, done)
	ws = nil
	settle(ctx, 2*time.Second)
	rss("watchers closed", pid)
	return nil
}

// report prints, over the changes, the quantiles of the time from the
// change's request to the last watcher's read of its seq, and of the spread
// from the first watcher's read to the last one's (which leaves out the
// commit's fsync and the request itself).
func report(ws []*watcher, done []change) {
	var last, spread []time.Duration
	for _, c := range done {
		var first, latest time.Time
		for _, w := range ws {
			i, _ := slices.BinarySearchFunc(w.seen, c.seq, func(a arrival, seq uint64) int { return cmp.Compare(a.seq, seq) })
			if i == len(w.seen) {
				continue // its record was full: counted by waitAll, not here
			}
			at := w.seen[i].at
			if first.IsZero() || at.Before(first) {
				first = at
			}
			if at.After(latest) {
				latest = at
			}
		}
		last = append(last, latest.Sub(c.t0))
		spread = append(spread, latest.Sub(first))
	}
	fmt.Printf("change -> last watcher: %s\n", quantiles(last))
	fmt.Printf("first -> last watcher:  %s\n", quantiles(spread))
}

func quantiles(d []time.Duration) string {
	if len(d) == 0 {
		return "no data"
	}
	slices.Sort(d)
	q := func(f float64) time.Duration { return d[int(float64(len(d)-1)*f)].Round(10 * time.Microsecond) }
	return fmt.Sprintf("p50 %v  p90 %v  p99 %v  max %v  (n=%d)", q(0.5), q(0.9), q(0.99), q(1), len(d))
}

// settle pauses the run; the tool makes the daemon idle on purpose between
// phases, so that a change is not measured behind the previous one.
func settle(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// waitAll waits until every watcher has read seq or a newer one.
func waitAll(ctx context.Context, ws []*watcher, seq uint64) error {
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for i := 0; i < len(ws); {
		if ws[i].last.Load() >= seq {
			i++
			continue
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			behind := 0
			var why error
			for _, w := range ws {
				if w.last.Load() < seq {
					behind++
					if p := w.err.Load(); why == nil && p != nil {
						why = *p
					}
				}
			}
			return fmt.Errorf("%d of %d watchers have not seen seq %d: %w (first reader error: %v)", behind, len(ws), seq, ctx.Err(), why)
		}
	}
	return nil
}

var (
	reqLine  = []byte("GET /v1/status?watch=true HTTP/1.1\r\nHost: rdd\r\n\r\n")
	seqKey   = []byte(`"seq":`)
	errorKey = []byte(`{"error"`)
)

// read sends the watch request and records every snapshot line's seq. The
// response is chunked; chunk sizes and the blank lines between chunks do not
// start with '{' and are skipped, and every flushed line is its own chunk or
// ends one, so a line is never split by chunk framing before its seq.
func (w *watcher) read() {
	fail := func(err error) { w.err.Store(&err) }
	if _, err := w.conn.Write(reqLine); err != nil {
		fail(err)
		return
	}
	br := bufio.NewReaderSize(w.conn, 4096)
	status, err := br.ReadSlice('\n')
	if err != nil {
		fail(err)
		return
	}
	if !bytes.HasPrefix(status, []byte("HTTP/1.1 200")) {
		fail(fmt.Errorf("watch answered %q", strings.TrimSpace(string(status))))
		return
	}
	midLine := false // the previous read ended inside an over-long line
	for {
		line, err := br.ReadSlice('\n')
		at := time.Now()
		if errors.Is(err, bufio.ErrBufferFull) {
			if !midLine {
				w.note(line, at)
			}
			midLine = true
			continue
		}
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				fail(err)
			}
			return
		}
		if !midLine {
			if bytes.HasPrefix(line, errorKey) {
				fail(fmt.Errorf("stream ended: %s", bytes.TrimSpace(line)))
				return
			}
			w.note(line, at)
		}
		midLine = false
	}
}

func (w *watcher) note(line []byte, at time.Time) {
	if len(line) == 0 || line[0] != '{' {
		return
	}
	i := bytes.Index(line, seqKey)
	if i < 0 {
		return
	}
	rest := line[i+len(seqKey):]
	j := bytes.IndexAny(rest, ",}")
	if j < 0 {
		return
	}
	seq, err := strconv.ParseUint(string(rest[:j]), 10, 64)
	if err != nil {
		return
	}
	if len(w.seen) < cap(w.seen) {
		w.seen = append(w.seen, arrival{seq, at})
	}
	w.last.Store(seq)
}

// rss prints the daemon's resident set now and its peak.
func rss(when string, pid int) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		fmt.Printf("rss %-20s: %v\n", when, err)
		return
	}
	var cur, peak string
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			cur = strings.TrimSpace(v)
		}
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			peak = strings.TrimSpace(v)
		}
	}
	fmt.Printf("rss %-20s: VmRSS %s, VmHWM %s\n", when, cur, peak)
}
