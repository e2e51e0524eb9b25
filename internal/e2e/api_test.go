package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rdd-project/rdd/internal/api"
	"github.com/rdd-project/rdd/internal/api/client"
	"github.com/rdd-project/rdd/internal/events"
)

// The exported log replays to exactly the live snapshot.
func TestReplayMatchesLiveStatus(t *testing.T) {
	in := newInstance(t)
	in.must("set", "--wait=false", "running=false")
	in.must("set", "--timeout=1m", "kubernetes.enabled=true", "containerEngine.name=containerd")
	in.must("set", "--timeout=1m", "kubernetes.enabled=false")

	exported := in.must("events", "-o", "json")
	replay := exec.Command(rddBin, "replay", "-", "-o", "json")
	replay.Env = in.env
	replay.Stdin = strings.NewReader(exported)
	replayed, err := replay.Output()
	if err != nil {
		t.Fatalf("rdd replay -: %v", err)
	}
	live := in.must("status", "-o", "json")
	// The daemon appends nothing while idle, so the two must be the same bytes.
	if string(replayed) != live {
		t.Fatalf("replay differs from live status\nreplay: %s\nlive:   %s", replayed, live)
	}
}

// status --watch delivers every change in order, the current snapshot first,
// and a watcher resuming with since misses nothing.
func TestWatchDeliversEveryChange(t *testing.T) {
	in := newInstance(t)
	in.must("set", "--wait=false", "running=false")
	first := in.status()

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	watch := exec.CommandContext(ctx, rddBin, "status", "--watch", "-o", "json")
	watch.Env = in.env
	stdout, err := watch.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := watch.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); _ = watch.Wait() }()
	lines := make(chan events.Snapshot, 1024)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<22)
		for sc.Scan() {
			var s events.Snapshot
			if json.Unmarshal(sc.Bytes(), &s) == nil {
				lines <- s
			}
		}
	}()
	next := func() events.Snapshot {
		select {
		case s, ok := <-lines:
			if !ok {
				t.Fatal("watch ended early")
			}
			return s
		case <-ctx.Done():
			t.Fatal("timed out waiting for a watch line")
		}
		return events.Snapshot{}
	}
	got := next()
	if got.Seq != first.Seq {
		t.Fatalf("first watch line has seq %d, want the current %d", got.Seq, first.Seq)
	}
	in.must("set", "--timeout=1m", "containerEngine.name=containerd")
	in.must("set", "--timeout=1m", "containerEngine.name=moby")
	final := in.status()
	last := got.Seq
	for last < final.Seq {
		s := next()
		if s.Seq != last+1 {
			t.Fatalf("watch jumped from seq %d to %d", last, s.Seq)
		}
		last = s.Seq
	}

	// Resume from the middle: every snapshot after since, in order.
	since := first.Seq + 1
	resumed := exec.CommandContext(ctx, "curl", "-sN", "--max-time", "2", "--unix-socket", in.path(".rd2", "rdd.sock"),
		fmt.Sprintf("http://rdd/v1/status?watch=true&since=%d", since))
	out, _ := resumed.Output()
	var seqs []uint64
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var s events.Snapshot
		if err := json.Unmarshal([]byte(line), &s); err == nil && s.Seq > 0 {
			seqs = append(seqs, s.Seq)
		}
	}
	if len(seqs) == 0 || seqs[0] != since+1 || seqs[len(seqs)-1] != final.Seq {
		t.Fatalf("resume since %d delivered seqs %v, want %d..%d", since, seqs, since+1, final.Seq)
	}
	for i := 1; i < len(seqs); i++ {
		if seqs[i] != seqs[i-1]+1 {
			t.Fatalf("resumed watch skipped from %d to %d", seqs[i-1], seqs[i])
		}
	}
}

// Twenty clients setting at once: generations strictly increase and every
// acknowledged change is in the log.
func TestConcurrentSets(t *testing.T) {
	in := newInstance(t)
	in.must("set", "--wait=false", "running=false")
	ctx := context.Background()

	type ack struct {
		gen int64
		seq uint64
		out string
	}
	var mu sync.Mutex
	var acks []ack
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			engine := "moby"
			if i%2 == 0 {
				engine = "containerd"
			}
			version := []string{"1.32.0", "1.33.1", "1.34.2", "1.35.1"}[i%4]
			// Each client has its own connection to the socket, like separate CLI processes.
			cli := client.New(in.path(".rd2", "rdd.sock"))
			r, err := cli.Set(ctx, api.SetRequest{Set: map[string]string{
				"containerEngine.name": engine, "kubernetes.version": version,
			}, Command: fmt.Sprintf("client %d", i)})
			if err != nil {
				t.Errorf("client %d: %v", i, err)
				return
			}
			out := fmt.Sprintf("client %d: %+v", i, r)
			mu.Lock()
			acks = append(acks, ack{r.Generation, r.Seq, out})
			mu.Unlock()
		}(i)
	}
	wg.Wait()

	var gens []int64
	genAtSeq := map[uint64]int64{}
	for _, e := range in.eventsJSON() {
		if e.Type != events.TypeSpecChanged {
			continue
		}
		p, _ := events.Decode(e)
		g := p.(*events.SpecChanged).Generation
		gens = append(gens, g)
		genAtSeq[e.Seq] = g
	}
	for i := 1; i < len(gens); i++ {
		if gens[i] != gens[i-1]+1 {
			t.Fatalf("generations in the log are not strictly increasing by one: %v", gens)
		}
	}
	logged := map[int64]bool{}
	for _, g := range gens {
		logged[g] = true
	}
	sort.Slice(acks, func(i, j int) bool { return acks[i].gen < acks[j].gen })
	for _, a := range acks {
		if !logged[a.gen] {
			t.Errorf("acknowledged generation %d is not in the log (%s)", a.gen, a.out)
		}
		if a.seq != 0 && genAtSeq[a.seq] != a.gen {
			t.Errorf("acknowledged change at seq %d is not the SpecChanged of generation %d in the log (%s)", a.seq, a.gen, a.out)
		}
	}
}
