package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/rdd-project/rdd/internal/api"
	"github.com/rdd-project/rdd/internal/events"
)

func TestSetWaitsAndPrintsProgress(t *testing.T) {
	h := newHarness(t)
	b := &fakeBackend{
		set: func(api.SetRequest) (api.SetResponse, error) {
			return api.SetResponse{Generation: 2, Seq: 8, Changed: []string{"running"}}, nil
		},
		watch: []events.Snapshot{
			appAt(2, cond("Running", "False", "Stopped", 1), cond("Settled", "True", "Settled", 1)),
			appAt(2, cond("Running", "False", "Starting", 2), cond("Settled", "True", "Settled", 1)),
			appAt(2, cond("Running", "False", "Starting", 2), cond("Settled", "False", "Starting", 2)),
			appAt(2, cond("Running", "True", "Started", 2), cond("Settled", "False", "Starting", 2)),
			appAt(2, cond("Running", "True", "Started", 2), cond("Settled", "True", "Settled", 2)),
		},
	}
	h.serve(b)
	if code := h.run("set", "running=true", "running=false", "running=true"); code != 0 {
		t.Fatalf("set = %d; stderr:\n%s", code, h.stderr)
	}
	want := "Running=False: starting message (Starting)\n" +
		"Settled=False: starting message (Starting)\n" +
		"Running=True: started message (Started)\n" +
		"Settled=True: settled message (Settled)\n"
	if h.stderr.String() != want {
		t.Errorf("progress lines:\n%s\nwant:\n%s", h.stderr, want)
	}
	sets := b.recordedSets()
	if len(sets) != 1 || len(sets[0].Set) != 1 || sets[0].Set["running"] != "true" || sets[0].DryRun {
		t.Errorf("requests = %+v, want one running=true", sets)
	}
	if !strings.HasPrefix(sets[0].Command, "rdd set ") || h.daemonStarts != 1 {
		t.Errorf("command %q, implicit starts %d", sets[0].Command, h.daemonStarts)
	}
}

func TestSetResumesACutOffWatch(t *testing.T) {
	h := newHarness(t)
	starting := appAt(2, cond("Settled", "False", "Starting", 2))
	starting.Seq = 9
	settled := appAt(2, cond("Settled", "True", "Settled", 2))
	settled.Seq = 12
	b := &fakeBackend{
		set: func(api.SetRequest) (api.SetResponse, error) {
			return api.SetResponse{Generation: 2, Seq: 8}, nil
		},
		watch:  []events.Snapshot{starting},
		resume: []events.Snapshot{settled},
	}
	h.serve(b)
	if code := h.run("set", "running=true"); code != 0 {
		t.Fatalf("set = %d: %s", code, h.stderr)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.watchSince) != 2 || b.watchSince[0] != 0 || b.watchSince[1] != 9 {
		t.Errorf("watches since %v, want [0 9]", b.watchSince)
	}
	if want := "Settled=False: starting message (Starting)\nSettled=True: settled message (Settled)\n"; h.stderr.String() != want {
		t.Errorf("progress %q, want %q", h.stderr, want)
	}
}

func TestSetNothingChangedReturnsWhenSettled(t *testing.T) {
	h := newHarness(t)
	b := &fakeBackend{
		set: func(api.SetRequest) (api.SetResponse, error) {
			return api.SetResponse{Generation: 3, Seq: 0}, nil
		},
		watch: []events.Snapshot{appAt(3, cond("Settled", "True", "Settled", 3))},
	}
	h.serve(b)
	if code := h.run("set", "--timeout=10s", "running=false"); code != 0 {
		t.Fatalf("set = %d: %s", code, h.stderr)
	}
}

func TestSetRejectedExits3(t *testing.T) {
	h := newHarness(t)
	msg := `spec.kubernetes.version "1.31.99" is not supported; see the bundled k3s-versions.json for valid versions`
	b := &fakeBackend{set: func(api.SetRequest) (api.SetResponse, error) {
		return api.SetResponse{}, &api.RejectedError{Message: msg}
	}}
	h.serve(b)
	if code := h.run("set", "running=false", "kubernetes.enabled=true", "kubernetes.version=1.31.99"); code != 3 {
		t.Fatalf("set = %d, want 3; stderr %q", code, h.stderr)
	}
	// The daemon's wording is fixed (behavior.md §2.1); the CLI names the
	// valid versions after it.
	got := h.stderr.String()
	if !strings.HasPrefix(got, "Error: "+msg+"\nvalid versions: 1.32.0, 1.32.1, ") ||
		!strings.Contains(got, "\nchannels: ") || !strings.Contains(got, "stable") ||
		!strings.Contains(got, "rdd set --list kubernetes.version") {
		t.Errorf("stderr = %q", got)
	}
}

// kubeProbing is a wait blocked on Kubernetes at generation 2.
func kubeProbing() events.Snapshot {
	return appAt(2, cond("Running", "True", "Started", 2), cond("KubernetesReady", "False", "Probing", 2), cond("Settled", "False", "Probing", 2))
}

func TestSetTimeoutNamesTheBlockingCondition(t *testing.T) {
	h := newHarness(t)
	b := &fakeBackend{
		set: func(api.SetRequest) (api.SetResponse, error) {
			return api.SetResponse{Generation: 2, Seq: 5, Changed: []string{"kubernetes.enabled"}}, nil
		},
		watch: []events.Snapshot{kubeProbing()},
	}
	h.serve(b)
	code := make(chan int)
	go func() { code <- h.run("set", "--timeout=5m", "kubernetes.enabled=true") }()
	h.stderr.waitFor(t, "Settled=False: probing message (Probing)\n")
	h.deadline <- testNow.Add(5 * time.Minute)
	if c := <-code; c != 4 {
		t.Fatalf("set = %d, want 4; stderr %q", c, h.stderr)
	}
	lines := strings.Split(strings.TrimSuffix(h.stderr.String(), "\n"), "\n")
	want := "Error: timed out after 5m0s waiting for the App to settle: KubernetesReady=False, reason Probing: probing message; " +
		"the change was applied (generation 2) and the daemon is still working on it; run 'rdd why KubernetesReady' for the history"
	if last := lines[len(lines)-1]; last != want {
		t.Errorf("last line:\n%s\nwant:\n%s", last, want)
	}
	if strings.Contains(h.stderr.String(), "deadline exceeded") {
		t.Errorf("stderr speaks Go: %q", h.stderr)
	}
}

func TestSetTimeoutBeforeAnyStatus(t *testing.T) {
	h := newHarness(t)
	b := &fakeBackend{
		set: func(api.SetRequest) (api.SetResponse, error) {
			return api.SetResponse{Generation: 2, Seq: 5, Changed: []string{"running"}}, nil
		},
		watch: []events.Snapshot{},
	}
	h.serve(b)
	code := make(chan int)
	go func() { code <- h.run("set", "--timeout=1ms", "running=true") }()
	h.deadline <- testNow
	if c := <-code; c != 4 {
		t.Fatalf("set = %d, want 4; stderr %q", c, h.stderr)
	}
	want := "Error: timed out after 1ms waiting for the App to settle, before the daemon's first status; the change was applied (generation 2) and the daemon is still working on it; see rdd status\n"
	if h.stderr.String() != want {
		t.Errorf("stderr %q, want %q", h.stderr, want)
	}
}

func TestWaitHeartbeat(t *testing.T) {
	for _, tty := range []bool{false, true} {
		h := newHarness(t)
		h.e.stderrTTY = tty
		b := &fakeBackend{
			set: func(api.SetRequest) (api.SetResponse, error) {
				return api.SetResponse{Generation: 2, Seq: 5, Changed: []string{"kubernetes.enabled"}}, nil
			},
			watch: []events.Snapshot{kubeProbing()},
			more:  make(chan events.Snapshot),
		}
		h.serve(b)
		code := make(chan int)
		go func() { code <- h.run("set", "kubernetes.enabled=true") }()
		h.stderr.waitFor(t, "Settled=False: probing message (Probing)\n")
		// A tick within 5 s of a printed line stays quiet: the line was news enough.
		h.setClock(testNow.Add(4 * time.Second))
		h.ticks <- testNow
		h.setClock(testNow.Add(35 * time.Second))
		h.ticks <- testNow
		h.stderr.waitFor(t, "waiting 35s: KubernetesReady=False Probing — probing message")
		h.setClock(testNow.Add(40*time.Second + 700*time.Millisecond))
		h.ticks <- testNow
		h.stderr.waitFor(t, "waiting 40s: KubernetesReady=False Probing — probing message")
		b.more <- appAt(2, cond("Running", "True", "Started", 2), cond("KubernetesReady", "True", "Ready", 2), cond("Settled", "True", "Settled", 2))
		if c := <-code; c != 0 {
			t.Fatalf("set = %d; stderr %q", c, h.stderr)
		}
		changes := "Running=True: started message (Started)\n" +
			"KubernetesReady=False: probing message (Probing)\n" +
			"Settled=False: probing message (Probing)\n"
		want := changes +
			"waiting 35s: KubernetesReady=False Probing — probing message\n" +
			"waiting 40s: KubernetesReady=False Probing — probing message\n" +
			"KubernetesReady=True: ready message (Ready)\n" +
			"Settled=True: settled message (Settled)\n"
		if tty {
			want = changes +
				"\r\x1b[Kwaiting 35s: KubernetesReady=False Probing — probing message" +
				"\r\x1b[Kwaiting 40s: KubernetesReady=False Probing — probing message" +
				"\r\x1b[KKubernetesReady=True: ready message (Ready)\n" +
				"Settled=True: settled message (Settled)\n"
		}
		if got := h.stderr.String(); got != want {
			t.Errorf("tty=%v: stderr\n%q\nwant\n%q", tty, got, want)
		}
	}
}

func TestNoopStartSaysAlreadyRunning(t *testing.T) {
	h := newHarness(t)
	b := &fakeBackend{
		set: func(api.SetRequest) (api.SetResponse, error) {
			return api.SetResponse{Generation: 3}, nil
		},
		watch: []events.Snapshot{appAt(3, cond("Created", "True", "Created", 3), cond("Running", "True", "Started", 3),
			cond("ContainerEngineReady", "True", "Connected", 3), cond("Settled", "True", "Settled", 3))},
	}
	h.serve(b)
	if code := h.run("start"); code != 0 {
		t.Fatalf("start = %d: %s", code, h.stderr)
	}
	if h.stdout.String() != "The App is already running\n" || h.stderr.String() != "" {
		t.Errorf("no-op start: stdout %q, stderr %q; want only \"already running\"", h.stdout, h.stderr)
	}
}

func TestSetWithoutWait(t *testing.T) {
	h := newHarness(t)
	b := &fakeBackend{set: func(req api.SetRequest) (api.SetResponse, error) {
		if req.DryRun {
			return api.SetResponse{Generation: 1, Changed: []string{"containerEngine.name"}}, nil
		}
		return api.SetResponse{Generation: 2, Seq: 3}, nil
	}}
	h.serve(b) // Watch would block forever: the command must not watch.
	if code := h.run("set", "--wait=false", "containerEngine.name=containerd"); code != 0 {
		t.Fatalf("set --wait=false = %d: %s", code, h.stderr)
	}
	if code := h.run("set", "--dry-run", "containerEngine.name=containerd"); code != 0 {
		t.Fatalf("set --dry-run = %d: %s", code, h.stderr)
	}
	if got := h.stdout.String(); got != "dry run: would change containerEngine.name (generation 1)\n" {
		t.Errorf("dry run output %q", got)
	}
	if sets := b.recordedSets(); len(sets) != 2 || sets[0].DryRun || !sets[1].DryRun {
		t.Errorf("requests = %+v", sets)
	}
}

func TestSetMalformedArgumentsExit2(t *testing.T) {
	for args, want := range map[string]string{
		"running":           `invalid argument "running": expected PROPERTY=VALUE format`,
		"=x":                `invalid argument "=x": property name must not be empty`,
		"running=true oops": `invalid argument "oops": expected PROPERTY=VALUE format`,
	} {
		h := newHarness(t)
		if code := h.run(append([]string{"set"}, strings.Fields(args)...)...); code != 2 {
			t.Errorf("set %s = %d, want 2", args, code)
		}
		if h.stderr.String() != "Error: "+want+"\nRun 'rdd set --help' for usage.\n" || h.daemonStarts != 0 {
			t.Errorf("set %s: stderr %q, daemon starts %d", args, h.stderr, h.daemonStarts)
		}
	}
}

func TestDaemonNotRunningExits1WithHint(t *testing.T) {
	h := newHarness(t)
	if code := h.run("status"); code != 1 {
		t.Fatalf("status with no daemon = %d, want 1", code)
	}
	if !strings.Contains(h.stderr.String(), "rdd svc start") || h.daemonStarts != 0 {
		t.Errorf("stderr %q, daemon starts %d", h.stderr, h.daemonStarts)
	}
}

func TestStopWithoutDaemonStartsNothing(t *testing.T) {
	h := newHarness(t)
	h.e.startDaemon = func(context.Context) error {
		t.Error("stop started the daemon")
		return errors.New("no")
	}
	if code := h.run("stop"); code != 0 {
		t.Fatalf("stop = %d: %s", code, h.stderr)
	}
	if h.stdout.String() != msgNothingToStop+"\n" {
		t.Errorf("stdout = %q", h.stdout)
	}
	for _, d := range []string{h.e.paths.ServiceDir, h.e.paths.ShortDir} {
		if _, err := os.Stat(d); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("stop created %s", d)
		}
	}
}

func TestStopWithoutApp(t *testing.T) {
	h := newHarness(t)
	b := &fakeBackend{snap: events.Snapshot{Seq: 4}}
	h.serve(b)
	if code := h.run("stop"); code != 0 || h.stdout.String() != msgNothingToStop+"\n" {
		t.Fatalf("stop = %d, %q", code, h.stdout)
	}
	if sets := b.recordedSets(); len(sets) != 0 {
		t.Errorf("stop without an App sent %+v", sets)
	}
}

func TestStartAndStopSetRunning(t *testing.T) {
	h := newHarness(t)
	b := &fakeBackend{snap: appAt(1, cond("Settled", "True", "Settled", 1))}
	h.serve(b)
	if code := h.run("start", "--wait=false"); code != 0 {
		t.Fatalf("start = %d: %s", code, h.stderr)
	}
	if code := h.run("stop", "--wait=false"); code != 0 {
		t.Fatalf("stop = %d: %s", code, h.stderr)
	}
	sets := b.recordedSets()
	if len(sets) != 2 || sets[0].Set["running"] != "true" || sets[1].Set["running"] != "false" {
		t.Errorf("requests = %+v", sets)
	}
	if h.daemonStarts != 1 {
		t.Errorf("implicit starts = %d, want 1 (start only)", h.daemonStarts)
	}
}

func TestRunExitCodeAndEnvironment(t *testing.T) {
	h := newHarness(t)
	// Already running: the write changes nothing (seq 0).
	b := &fakeBackend{
		snap: appAt(1, cond("Running", "True", "Started", 1), cond("Settled", "True", "Settled", 1)),
		set:  func(api.SetRequest) (api.SetResponse, error) { return api.SetResponse{Generation: 1}, nil },
	}
	h.serve(b)
	p := h.e.paths
	if err := os.MkdirAll(p.BinDir, 0o700); err != nil {
		t.Fatal(err)
	}
	code := h.run("run", "--", "sh", "-c", `echo "$DOCKER_CONTEXT ${DOCKER_HOST-unset} $KUBECONFIG ${PATH%%:*}"; exit 7`)
	if code != 7 {
		t.Fatalf("run = %d, want 7; stderr %q", code, h.stderr)
	}
	if want := p.Name + " unset " + p.KubeConfig + " " + p.BinDir + "\n"; h.stdout.String() != want {
		t.Errorf("child saw %q, want %q", h.stdout, want)
	}
	if h.stderr.String() != "" {
		t.Errorf("run of a running App printed %q; want nothing (no unchanged condition lines)", h.stderr)
	}
	sets := b.recordedSets()
	if len(sets) != 1 || len(sets[0].Set) != 1 || sets[0].Set["running"] != "true" {
		t.Errorf("requests = %+v, want only running=true", sets)
	}
}

func TestRunKubectlEnablesKubernetesOnCreate(t *testing.T) {
	h := newHarness(t)
	b := &fakeBackend{
		snap:  events.Snapshot{}, // no App
		watch: []events.Snapshot{appAt(1, cond("Settled", "True", "Settled", 1))},
	}
	h.serve(b)
	// kubectl is (probably) not installed: the command fails with 127 after the set.
	h.e.environ = func() []string { return []string{"PATH=/nonexistent"} }
	if code := h.run("run", "kubectl", "get", "nodes"); code != 127 {
		t.Errorf("run kubectl without kubectl = %d, want 127", code)
	}
	sets := b.recordedSets()
	if len(sets) != 1 || sets[0].Set["running"] != "true" || sets[0].Set["kubernetes.enabled"] != "true" {
		t.Errorf("requests = %+v, want running and kubernetes.enabled", sets)
	}
}

func TestStatusEventsReplayRoundTrip(t *testing.T) {
	h := newHarness(t)
	b := logBackend(t, "start.ndjson")
	h.serve(b)
	if code := h.run("status", "-o", "json"); code != 0 {
		t.Fatalf("status -o json = %d: %s", code, h.stderr)
	}
	status := h.stdout.String()
	h.reset()
	if code := h.run("events", "-o", "json"); code != 0 {
		t.Fatalf("events -o json = %d: %s", code, h.stderr)
	}
	exported := h.stdout.String()
	if strings.Count(exported, "\n") != len(b.envs) {
		t.Errorf("events -o json printed %d lines, want %d", strings.Count(exported, "\n"), len(b.envs))
	}
	h.reset()
	h.e.stdin = strings.NewReader(exported)
	if code := h.run("replay", "-", "-o", "json"); code != 0 {
		t.Fatalf("replay - = %d: %s", code, h.stderr)
	}
	if h.stdout.String() != status {
		t.Errorf("rdd events -o json | rdd replay - -o json:\n%s\nrdd status -o json:\n%s", h.stdout, status)
	}
	h.reset()
	if code := h.run("replay", "--json"); code != 0 || h.stdout.String() != status {
		t.Errorf("replay of the daemon's log = %d:\n%s\nwant:\n%s", code, h.stdout, status)
	}
}

func TestStatusAtAndText(t *testing.T) {
	h := newHarness(t)
	b := logBackend(t, "start.ndjson")
	h.serve(b)
	if code := h.run("status", "--at", "8", "-o", "json"); code != 0 {
		t.Fatalf("status --at 8 = %d: %s", code, h.stderr)
	}
	at8 := h.stdout.String()
	h.reset()
	if code := h.run("replay", "testdata/replay/start.ndjson", "--to", "8", "-o", "json"); code != 0 || h.stdout.String() != at8 {
		t.Errorf("replay --to 8 = %d:\n%s\nwant status --at 8:\n%s", code, h.stdout, at8)
	}
	h.reset()
	if code := h.run("status"); code != 0 {
		t.Fatalf("status = %d: %s", code, h.stderr)
	}
	for _, want := range []string{"TYPE", "Settled", "generation:     2 (seq 14)", "running=true"} {
		if !strings.Contains(h.stdout.String(), want) {
			t.Errorf("status text lacks %q:\n%s", want, h.stdout)
		}
	}
}

func TestStatusWatchJSON(t *testing.T) {
	h := newHarness(t)
	b := &fakeBackend{watch: []events.Snapshot{
		appAt(1, cond("Settled", "False", "Starting", 1)),
		appAt(1, cond("Settled", "True", "Settled", 1)),
	}}
	h.serve(b)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	w := &lineWaiter{n: 2, done: make(chan struct{}), w: h.stdout}
	h.e.stdout = w
	go func() {
		<-w.done
		cancel() // what Ctrl-C does
	}()
	if code := execute(ctx, h.e, []string{"status", "--watch", "-o", "json"}, nil); code != 0 {
		t.Fatalf("status --watch = %d: %s", code, h.stderr)
	}
	lines := strings.Split(strings.TrimSuffix(h.stdout.String(), "\n"), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], `"reason":"Starting"`) || !strings.Contains(lines[1], `"reason":"Settled"`) {
		t.Errorf("watch printed:\n%s", h.stdout)
	}
}

// lineWaiter forwards writes to w and closes done once n lines were written.
type lineWaiter struct {
	n, seen int
	done    chan struct{}
	w       *syncBuffer
}

func (l *lineWaiter) Write(p []byte) (int, error) {
	n, err := l.w.Write(p)
	before := l.seen
	l.seen += strings.Count(string(p), "\n")
	if before < l.n && l.seen >= l.n {
		close(l.done)
	}
	return n, err
}

func TestEventsText(t *testing.T) {
	h := newHarness(t)
	h.serve(logBackend(t, "start.ndjson"))
	if code := h.run("events", "--since", "8", "--limit", "2"); code != 0 {
		t.Fatalf("events = %d: %s", code, h.stderr)
	}
	want := "9      2026-11-26T12:01:00.100Z Transition     vm stopped→starting (start) gen=2\n" +
		"10     2026-11-26T12:01:15.300Z Transition     vm starting→running (started) gen=2 pid=4242\n"
	if h.stdout.String() != want {
		t.Errorf("events:\n%s\nwant:\n%s", h.stdout, want)
	}
}

func TestSvcDeleteDeletesAppFirst(t *testing.T) {
	h := newHarness(t)
	b := &fakeBackend{snap: appAt(1)}
	h.serve(b)
	if code := h.run("svc", "delete", "--timeout=30s"); code != 0 {
		t.Fatalf("svc delete = %d: %s", code, h.stderr)
	}
	b.mu.Lock()
	deletes := b.deletes
	b.mu.Unlock()
	if deletes != 1 {
		t.Errorf("App deletes = %d, want 1", deletes)
	}
	if _, err := os.Stat(h.e.paths.ShortDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("short dir survived: %v", err)
	}
}

func TestImplicitStartDeadlineExits4(t *testing.T) {
	h := newHarness(t)
	h.e.startDaemon = func(ctx context.Context) error {
		if _, ok := ctx.Deadline(); !ok {
			t.Error("implicit start without a deadline")
		}
		return fmt.Errorf("start rdd daemon: %w", context.DeadlineExceeded)
	}
	if code := h.run("start"); code != 4 {
		t.Errorf("start with a daemon that never serves = %d, want 4", code)
	}
}

func TestStopWithStoppedDaemon(t *testing.T) {
	h := newHarness(t)
	h.e.startDaemon = func(context.Context) error {
		t.Error("stop started the daemon")
		return nil
	}
	if err := h.e.paths.EnsureDirs(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(h.e.paths.EventLog, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if code := h.run("stop"); code != 0 || !strings.Contains(h.stdout.String(), "is not running; nothing to stop") {
		t.Errorf("stop = %d, %q", code, h.stdout)
	}
}

func TestSvcStatusAndStopWithoutDaemon(t *testing.T) {
	h := newHarness(t)
	if code := h.run("svc", "status", "--json"); code != 0 {
		t.Fatalf("svc status = %d: %s", code, h.stderr)
	}
	p := h.e.paths
	want := `{"instance":"t","name":"rancher-desktop-t","created":false,"running":false,"socket":"` + p.Socket + `","serving":false}` + "\n"
	if h.stdout.String() != want {
		t.Errorf("svc status --json = %s, want %s", h.stdout, want)
	}
	h.reset()
	if code := h.run("svc", "status"); code != 0 || !strings.Contains(h.stdout.String(), "running:   false") {
		t.Errorf("svc status = %d:\n%s", code, h.stdout)
	}
	h.reset()
	if code := h.run("svc", "stop", "--timeout=1ms"); code != 0 || h.stdout.String() != "rdd daemon for instance t is not running\n" {
		t.Errorf("svc stop = %d, %q", code, h.stdout)
	}
	h.reset()
	if code := h.run("svc", "logs"); code != 1 || !strings.Contains(h.stderr.String(), "has not run") {
		t.Errorf("svc logs with no log = %d, %q", code, h.stderr)
	}
}

func TestStatusYAML(t *testing.T) {
	h := newHarness(t)
	h.serve(logBackend(t, "start.ndjson"))
	if code := h.run("status", "-o", "yaml"); code != 0 {
		t.Fatalf("status -o yaml = %d: %s", code, h.stderr)
	}
	for _, want := range []string{"exists: true", "generation: 2", "reason: Settled"} {
		if !strings.Contains(h.stdout.String(), want) {
			t.Errorf("status -o yaml lacks %q", want)
		}
	}
}

func TestSetStartStopPrintTheResult(t *testing.T) {
	h := newHarness(t)
	b := &fakeBackend{
		set: func(req api.SetRequest) (api.SetResponse, error) {
			if req.DryRun {
				return api.SetResponse{Generation: 2, Changed: []string{"running"}}, nil
			}
			return api.SetResponse{Generation: 2, Seq: 7, Changed: []string{"running"}}, nil
		},
		snap:  appAt(2, cond("Settled", "True", "Settled", 2)),
		watch: []events.Snapshot{appAt(2, cond("Running", "True", "Started", 2), cond("Settled", "True", "Settled", 2))},
	}
	h.serve(b)
	if code := h.run("start", "-o", "json"); code != 0 {
		t.Fatalf("start -o json = %d: %s", code, h.stderr)
	}
	want := `{"generation":2,"seq":7,"changed":["running"],"settled":true,"conditions":[` +
		`{"type":"Running","status":"True","reason":"Started","message":"started message","observedGeneration":2,"lastTransitionTime":"0001-01-01T00:00:00Z","lastTransitionSeq":0,"reasonSeq":0},` +
		`{"type":"Settled","status":"True","reason":"Settled","message":"settled message","observedGeneration":2,"lastTransitionTime":"0001-01-01T00:00:00Z","lastTransitionSeq":0,"reasonSeq":0}]}` + "\n"
	if got := h.stdout.String(); got != want {
		t.Errorf("start -o json:\n%s\nwant:\n%s", got, want)
	}
	h.reset()
	if code := h.run("set", "--wait=false", "-o", "yaml", "running=true"); code != 0 {
		t.Fatalf("set -o yaml = %d: %s", code, h.stderr)
	}
	if want := "changed:\n- running\ngeneration: 2\nseq: 7\nsettled: false\n"; h.stdout.String() != want {
		t.Errorf("set --wait=false -o yaml:\n%s\nwant:\n%s", h.stdout, want)
	}
	h.reset()
	if code := h.run("set", "--dry-run", "--json", "running=true"); code != 0 || h.stdout.String() != `{"generation":2,"seq":0,"changed":["running"],"dryRun":true,"settled":false}`+"\n" {
		t.Errorf("set --dry-run --json = %d: %s", code, h.stdout)
	}
	h.reset()
	if code := h.run("stop", "-o", "json", "--wait=false"); code != 0 || !strings.HasPrefix(h.stdout.String(), `{"generation":2,"seq":7,"changed":["running"]`) {
		t.Errorf("stop -o json = %d: %s", code, h.stdout)
	}
}

func TestDurationsInSinceAndAt(t *testing.T) {
	h := newHarness(t)
	b := logBackend(t, "start.ndjson")
	h.serve(b)
	last := b.envs[len(b.envs)-1]
	// The clock stands 10 minutes after the event at seq 9.
	nine := b.envs[8]
	if nine.Seq != 9 {
		t.Fatalf("event 9 is %d", nine.Seq)
	}
	h.setClock(nine.Time.Add(10 * time.Minute))
	if code := h.run("events", "--since", "10m", "--limit", "1"); code != 0 || !strings.HasPrefix(h.stdout.String(), "9 ") {
		t.Errorf("events --since 10m = %d: %q, want event 9 first", code, h.stdout)
	}
	h.reset()
	if code := h.run("events", "--since", nine.Time.Format(time.RFC3339Nano), "--limit", "1"); code != 0 || !strings.HasPrefix(h.stdout.String(), "9 ") {
		t.Errorf("events --since TIME = %d: %q, want event 9 first", code, h.stdout)
	}
	h.reset()
	if code := h.run("status", "--at", "10m", "-o", "json"); code != 0 || !strings.Contains(h.stdout.String(), `"seq":9,`) {
		t.Errorf("status --at 10m = %d: %s", code, h.stdout)
	}
	h.reset()
	beyond := fmt.Sprint(last.Seq + 1)
	if code := h.run("status", "--at", beyond); code != 1 || h.stderr.String() != fmt.Sprintf("Error: --at %s is beyond the last event of the log (seq %d)\n", beyond, last.Seq) {
		t.Errorf("status --at %s = %d: %q", beyond, code, h.stderr)
	}
	h.reset()
	if code := h.run("status", "--at", "2099-01-01T00:00:00Z"); code != 1 || !strings.Contains(h.stderr.String(), "is in the future") {
		t.Errorf("status --at the future = %d: %q", code, h.stderr)
	}
}
