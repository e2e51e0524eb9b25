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
// are kept cheap: one thread reads every connection through epoll(7) (a
// goroutine per connection cost this process about as much CPU as the
// daemon spent writing), and no JSON is decoded, only the top-level "seq"
// of each line is found. The tool reports its own CPU per change.
//
//go:build linux

package main

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
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
	seq      uint64
	t0       time.Time
	answered time.Duration // the set's round trip, commit (fsync) included
}

// arrival is when one watcher read the line of one seq.
type arrival struct {
	seq uint64
	at  time.Time
}

type watcher struct {
	fd    int
	carry []byte        // the start of a line whose end has not arrived
	began bool          // the status line was read
	last  atomic.Uint64 // newest seq read
	// seen is appended to by the reader's goroutine only, and read after
	// it ended.
	seen []arrival
	err  atomic.Pointer[error] // why the stream ended early
}

func run(ctx context.Context, socket string, n, changes int) error {
	cli := client.New(socket)
	snap, err := cli.Status(ctx)
	if err != nil {
		return err
	}
	pid := snap.Daemon.PID
	fmt.Printf("daemon pid %d, seq %d; %d watchers, %d changes\n", pid, snap.Seq, n, changes)
	rss("before", pid)

	rd, err := newReader()
	if err != nil {
		return err
	}
	ws := make([]*watcher, n)
	for i := range ws {
		w := &watcher{seen: make([]arrival, 0, 16*changes+16)}
		if err := rd.open(w, socket); err != nil {
			rd.closeAll()
			return fmt.Errorf("open watcher %d: %w", i, err)
		}
		ws[i] = w
	}
	go rd.run()
	closeAll := sync.OnceFunc(rd.closeAll)
	defer closeAll()
	if err := waitAll(ctx, ws, snap.Seq); err != nil {
		return fmt.Errorf("first snapshot: %w", err)
	}
	settle(ctx, time.Second) // let the daemon's heap settle with the watchers idle
	rss(fmt.Sprintf("%d idle watchers", n), pid)

	done := make([]change, 0, changes)
	cpu0 := cpuTime()
	reads0 := rd.reads.Load()
	version := "1.34.6"
	if snap.Spec != nil && snap.Spec.Kubernetes.Version == version {
		version = "1.33.10"
	}
	for k := range changes {
		t0 := time.Now()
		r, err := cli.Set(ctx, api.SetRequest{Set: api.Properties{"kubernetes.version": version}, Command: "watchload"})
		answered := time.Since(t0)
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
		done = append(done, change{r.Seq, t0, answered})
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
	fmt.Printf("this process's CPU per change (its readers compete with the daemon): %v\n", ((cpuTime() - cpu0) / time.Duration(changes)).Round(10*time.Microsecond))
	fmt.Printf("reads per watcher per change: %.2f\n", float64(rd.reads.Load()-reads0)/float64(n*changes))
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
	var last, spread, toFirst, answered []time.Duration
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
		toFirst = append(toFirst, first.Sub(c.t0))
		answered = append(answered, c.answered)
	}
	fmt.Printf("change -> last watcher:  %s\n", quantiles(last))
	fmt.Printf("first -> last watcher:   %s\n", quantiles(spread))
	fmt.Printf("change -> first watcher: %s\n", quantiles(toFirst))
	fmt.Printf("change -> set answered:  %s\n", quantiles(answered))
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

// reader reads every watch stream on one thread with epoll(7).
type reader struct {
	ep   int
	byFD map[int]*watcher
	stop atomic.Bool
	done chan struct{}
	buf  []byte
	// reads counts the reads that returned data: the writes of the daemon
	// that reached a reader apart, about.
	reads atomic.Int64
}

func newReader() (*reader, error) {
	ep, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll: %w", err)
	}
	return &reader{ep: ep, byFD: map[int]*watcher{}, done: make(chan struct{}), buf: make([]byte, 256<<10)}, nil
}

// open connects w to the socket and sends the watch request.
func (rd *reader) open(w *watcher, socket string) error {
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	w.fd = fd
	rd.byFD[fd] = w
	if err := syscall.Connect(fd, &syscall.SockaddrUnix{Name: socket}); err != nil {
		return err
	}
	if _, err := syscall.Write(fd, reqLine); err != nil {
		return err
	}
	if err := syscall.SetNonblock(fd, true); err != nil {
		return err
	}
	return syscall.EpollCtl(rd.ep, syscall.EPOLL_CTL_ADD, fd, &syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(fd)})
}

// run reads until closeAll.
func (rd *reader) run() {
	defer close(rd.done)
	runtime.LockOSThread()
	evs := make([]syscall.EpollEvent, 256)
	for !rd.stop.Load() {
		n, err := syscall.EpollWait(rd.ep, evs, 100)
		if err != nil && !errors.Is(err, syscall.EINTR) {
			return
		}
		for _, ev := range evs[:max(n, 0)] {
			w := rd.byFD[int(ev.Fd)]
			k, err := syscall.Read(w.fd, rd.buf)
			at := time.Now()
			if k <= 0 {
				if err == nil {
					err = errors.New("the daemon closed the stream")
				}
				if !errors.Is(err, syscall.EAGAIN) {
					w.fail(err)
					_ = syscall.EpollCtl(rd.ep, syscall.EPOLL_CTL_DEL, w.fd, nil)
				}
				continue
			}
			rd.reads.Add(1)
			w.consume(rd.buf[:k], at)
		}
	}
}

func (rd *reader) closeAll() {
	if rd.stop.Swap(true) {
		return
	}
	select {
	case <-rd.done:
	case <-time.After(time.Second): // run was never started
	}
	for fd := range rd.byFD {
		_ = syscall.Close(fd)
	}
	_ = syscall.Close(rd.ep)
}

func (w *watcher) fail(err error) { w.err.CompareAndSwap(nil, &err) }

// consume splits what was read into lines. The response is chunked; chunk
// sizes and the blank lines between chunks do not start with '{' and are
// skipped, and a chunk always ends with a whole line.
func (w *watcher) consume(b []byte, at time.Time) {
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			w.carry = append(w.carry, b...)
			return
		}
		line := b[:i+1]
		if len(w.carry) > 0 {
			line = append(w.carry, line...)
			w.carry = w.carry[:0]
		}
		b = b[i+1:]
		if !w.began {
			w.began = true
			if !bytes.HasPrefix(line, []byte("HTTP/1.1 200")) {
				w.fail(fmt.Errorf("watch answered %q", strings.TrimSpace(string(line))))
			}
			continue
		}
		if bytes.HasPrefix(line, errorKey) {
			w.fail(fmt.Errorf("stream ended: %s", bytes.TrimSpace(line)))
			continue
		}
		w.note(line, at)
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

// cpuTime is the user and system CPU time this process used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
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
