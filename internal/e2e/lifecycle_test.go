package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rdd-project/rdd/internal/api/client"
	"github.com/rdd-project/rdd/internal/cli/svc"
	"github.com/rdd-project/rdd/internal/dockertest"
	"github.com/rdd-project/rdd/internal/events"
)

const contextName = "rancher-desktop-2"

// importBusybox imports a busybox-static root filesystem as an image through
// the rdd Docker context.
func (in *instance) importBusybox() string {
	in.t.Helper()
	var tarball bytes.Buffer
	if err := dockertest.WriteBusyboxRootfs(&tarball, "/usr/bin/busybox"); err != nil {
		in.t.Fatalf("build busybox rootfs (apt-get install busybox-static): %v", err)
	}
	ref := "rdd-busybox:e2e"
	cmd := exec.Command("docker", "--context", contextName, "import", "-", ref)
	cmd.Env = in.env
	cmd.Stdin = &tarball
	if out, err := cmd.CombinedOutput(); err != nil {
		in.t.Fatalf("docker import: %v\n%s", err, out)
	}
	return ref
}

func TestStartRunStop(t *testing.T) {
	in := newInstance(t)
	in.must("start", "--timeout=3m")

	s := in.status()
	settled := cond(s, events.CondSettled)
	if settled.Status != events.StatusTrue || settled.ObservedGeneration != s.Generation {
		t.Fatalf("start returned before Settled=True at generation %d: %+v", s.Generation, settled)
	}
	if !condIs(s, events.CondRunning, events.StatusTrue, "Started") {
		t.Fatalf("Running = %+v, want True/Started", cond(s, events.CondRunning))
	}
	if !condIs(s, events.CondContainerEngineReady, events.StatusTrue, "Connected") {
		t.Fatalf("ContainerEngineReady = %+v, want True/Connected", cond(s, events.CondContainerEngineReady))
	}

	ref := in.importBusybox()
	if out, err := in.docker("--context", contextName, "run", "--rm", "--network", "none", ref, "true"); err != nil {
		t.Fatalf("docker run through the rdd context: %v\n%s", err, out)
	}

	// The engine inventory served on the socket sees the imported image.
	cli := client.New(in.path(".rd2", "rdd.sock"))
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for ; ; <-tick.C {
		raw, err := cli.Engine(context.Background(), "images")
		if err == nil && strings.Contains(string(raw), ref) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET /v1/engine/images does not list %s: %s (err %v)", ref, raw, err)
		}
	}

	in.must("stop", "--timeout=2m")
	s = in.status()
	if c := cond(s, events.CondSettled); c.Status != events.StatusTrue || c.ObservedGeneration != s.Generation {
		t.Fatalf("stop returned before Settled=True: %+v", c)
	}
	if !condIs(s, events.CondRunning, events.StatusFalse, "Stopped") {
		t.Fatalf("Running = %+v, want False/Stopped", cond(s, events.CondRunning))
	}
	if !condIs(s, events.CondContainerEngineReady, events.StatusFalse, "Stopped") {
		t.Fatalf("ContainerEngineReady = %+v, want False/Stopped", cond(s, events.CondContainerEngineReady))
	}
	sum := sha256.Sum256([]byte(contextName))
	if _, err := os.Stat(in.path(".docker", "contexts", "meta", hex.EncodeToString(sum[:]))); !os.IsNotExist(err) {
		t.Fatalf("docker context still exists after stop (stat err %v)", err)
	}
}

func TestSetRejections(t *testing.T) {
	in := newInstance(t)
	in.must("set", "--wait=false", "running=false")
	before := len(in.eventsJSON())

	ctx := context.Background()
	for _, tc := range []struct {
		arg, want string
	}{
		{"containerEngine.name=docker", "valid values: moby, containerd"},
		{"running=yes", "expected boolean"},
	} {
		out, errOut, code := in.rdd(ctx, "set", tc.arg)
		if code != 3 {
			t.Errorf("rdd set %s: exit %d, want 3\n%s%s", tc.arg, code, out, errOut)
		}
		if !strings.Contains(out+errOut, tc.want) {
			t.Errorf("rdd set %s: output %q does not contain %q", tc.arg, out+errOut, tc.want)
		}
	}
	if after := len(in.eventsJSON()); after != before {
		t.Fatalf("rejected sets appended %d events", after-before)
	}

	_, errOut, code := in.rdd(ctx, "set", "running=true", "--timeout=1ms")
	if code != 4 {
		t.Fatalf("set --timeout=1ms: exit %d, want 4\n%s", code, errOut)
	}
}

func TestEngineCrashIsRepaired(t *testing.T) {
	in := newInstance(t)
	in.must("start", "--timeout=3m")
	s := in.status()
	pid := s.Machine(events.MachineVM).Facts.PID
	if pid <= 0 {
		t.Fatalf("no engine pid in the vm machine facts: %+v", s.Machine(events.MachineVM))
	}
	restarts := s.Machine(events.MachineVM).Facts.RestartCount
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	s = in.waitStatus(2*time.Minute, "the engine to come back", func(s events.Snapshot) bool {
		return s.Machine(events.MachineVM).Facts.PID != pid &&
			condIs(s, events.CondContainerEngineReady, events.StatusTrue, "Connected") &&
			condIs(s, events.CondSettled, events.StatusTrue, "Settled")
	})
	if got := s.Machine(events.MachineVM).Facts.RestartCount; got != restarts+1 {
		t.Errorf("restart count %d → %d, want +1", restarts, got)
	}
	// The log says why: a crash of the VM machine and the engine losing its connection.
	var sawCrash, sawEngineDown bool
	for _, tr := range transitions(in.eventsJSON(), events.MachineVM) {
		if tr.Event == "crashed" && strings.Contains(tr.Message, strconv.Itoa(pid)) {
			sawCrash = true
		}
	}
	for _, tr := range transitions(in.eventsJSON(), events.MachineEngine) {
		if tr.From == "connected" && tr.To != "connected" {
			sawEngineDown = true
		}
	}
	if !sawCrash || !sawEngineDown {
		t.Fatalf("events do not explain the crash: crashed=%v engineDown=%v\n%s", sawCrash, sawEngineDown, in.must("events"))
	}
	text := in.must("events")
	if !strings.Contains(text, "crashed") {
		t.Fatalf("rdd events text does not show the crash:\n%s", text)
	}
}

func TestDaemonKillReadoptsEngine(t *testing.T) {
	in := newInstance(t)
	in.must("start", "--timeout=3m")
	before := in.status()
	enginePID := before.Machine(events.MachineVM).Facts.PID
	logBefore := in.eventsJSON()

	daemonPID := in.daemonPID()
	if daemonPID <= 0 {
		t.Fatal("no daemon pid file")
	}
	if err := syscall.Kill(daemonPID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitGone(t, daemonPID)

	in.must("svc", "start")
	after := in.waitStatus(time.Minute, "Settled after the restart", func(s events.Snapshot) bool {
		return condIs(s, events.CondSettled, events.StatusTrue, "Settled") &&
			condIs(s, events.CondContainerEngineReady, events.StatusTrue, "Connected")
	})
	if got := after.Machine(events.MachineVM).Facts.PID; got != enginePID {
		t.Fatalf("engine pid %d after restart, want the re-adopted %d", got, enginePID)
	}
	logAfter := in.eventsJSON()
	for i, e := range logBefore {
		a, _ := json.Marshal(e)
		b, _ := json.Marshal(logAfter[i])
		if !bytes.Equal(a, b) {
			t.Fatalf("event %d changed across the crash:\n%s\n%s", e.Seq, a, b)
		}
	}
	var recovered bool
	for _, e := range logAfter[len(logBefore):] {
		if e.Type == events.TypeRecovered {
			p, _ := events.Decode(e)
			if r := p.(*events.Recovered); r.Machine == events.MachineVM && r.Found == "running" && r.PID == enginePID {
				recovered = true
			}
		}
		if e.Type == events.TypeTransition {
			p, _ := events.Decode(e)
			if tr := p.(*events.Transition); tr.To == "stopped" || tr.To == "stopping" {
				t.Errorf("recovery went through %s/%s: %+v", tr.Machine, tr.To, tr)
			}
		}
	}
	if !recovered {
		t.Fatal("no Recovered event reports the running engine")
	}
}

func waitGone(t testing.TB, pid int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for ; time.Now().Before(deadline); <-tick.C {
		// Detached daemons are reparented; svc.Alive counts a zombie nobody reaps as gone.
		if !svc.Alive(pid) {
			return
		}
	}
	t.Fatalf("process %d still alive", pid)
}

// Scenario 21 on the host driver: switching the engine while running restarts
// the machine, Settled passes through ApplyingTemplate, and afterwards
// containerd answers while dockerd is gone.
func TestEngineSwitchRestartsTheMachine(t *testing.T) {
	in := newInstance(t)
	in.must("start", "--timeout=3m")
	before := in.status()
	running := cond(before, events.CondRunning)

	in.must("set", "--timeout=3m", "containerEngine.name=containerd")
	after := in.status()
	if !condIs(after, events.CondSettled, events.StatusTrue, "Settled") || cond(after, events.CondSettled).ObservedGeneration != after.Generation {
		t.Fatalf("set returned before Settled: %+v", cond(after, events.CondSettled))
	}
	if !condIs(after, events.CondContainerEngineReady, events.StatusTrue, "NotApplicable") {
		t.Fatalf("ContainerEngineReady = %+v, want True/NotApplicable", cond(after, events.CondContainerEngineReady))
	}
	if r := cond(after, events.CondRunning); r.Status != events.StatusTrue || !r.LastTransitionTime.After(running.LastTransitionTime) {
		t.Fatalf("Running did not restart: before %+v after %+v", running, r)
	}
	if got, was := after.Machine(events.MachineVM).Facts.RestartCount, before.Machine(events.MachineVM).Facts.RestartCount; got != was+1 {
		t.Fatalf("restart count %d → %d, want +1", was, got)
	}

	// Fold the log to see every Settled reason after the spec change.
	envs := in.eventsJSON()
	p := events.NewProjector()
	var specSeq uint64
	var reasons []string
	for _, e := range envs {
		if err := p.Apply(e); err != nil {
			t.Fatal(err)
		}
		if e.Type == events.TypeSpecChanged {
			specSeq = e.Seq
		}
		if specSeq > 0 && e.Seq >= specSeq && e.Seq > before.Seq {
			s := p.Snapshot()
			if r := cond(s, events.CondSettled).Reason; len(reasons) == 0 || reasons[len(reasons)-1] != r {
				reasons = append(reasons, r)
			}
		}
	}
	if !slices.Contains(reasons, "ApplyingTemplate") {
		t.Fatalf("Settled reasons after the switch %v never say ApplyingTemplate", reasons)
	}

	if _, err := net.DialTimeout("unix", in.path(".rd2", "docker.sock"), time.Second); err == nil {
		t.Fatal("dockerd still answers after the switch to containerd")
	}
	c, err := net.DialTimeout("unix", in.path(".rd2", "containerd.sock"), time.Second)
	if err != nil {
		t.Fatalf("containerd does not answer after the switch: %v", err)
	}
	c.Close()
	in.must("stop", "--timeout=2m")
}
