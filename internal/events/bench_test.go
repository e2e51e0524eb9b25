package events

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rdd-project/rdd/internal/spec"
)

const benchEvents = 1_000_000

// benchLog is a realistic 1M-event log: start/stop cycles in which the
// engine and k3s re-assert their conditions on every pass, occasional
// Kubernetes enable/disable with template restarts, start failures with
// long quoted errors, and daemon restarts. About 45% Transitions, 45%
// Observed, the rest spec changes and daemon events.
var benchLog = sync.OnceValue(func() []Envelope {
	r := rand.New(rand.NewPCG(1, 2))
	envs := make([]Envelope, 0, benchEvents+64)
	at := t0
	var gen int64
	state := map[Machine]string{}
	for _, m := range Machines {
		state[m] = InitialState(m)
	}
	sp := spec.Default()
	add := func(p Payload) {
		at = at.Add(time.Duration(r.IntN(2000)) * time.Millisecond)
		data, err := json.Marshal(p)
		if err != nil {
			panic(err)
		}
		envs = append(envs, Envelope{Seq: uint64(len(envs)) + 1, Time: at, Type: p.EventType(), V: 1, Data: data})
	}
	setSpec := func(s spec.Spec) {
		gen++
		sp = s
		add(&SpecChanged{Generation: gen, Spec: s, Changed: []string{"running"}, Source: Source{UID: 1000, PID: 4000 + r.IntN(1000), Command: "rdd set running=true"}})
	}
	port := func() int {
		if sp.Kubernetes.Enabled {
			return 7443
		}
		return 0
	}
	tr := func(m Machine, to, msg string, f Facts) {
		add(&Transition{Machine: m, Event: "ev-" + to, From: state[m], To: to, Message: msg, Generation: gen, Facts: ReplaceFacts(f)})
		state[m] = to
	}
	obs := func(m Machine, f *Facts) { add(&Observed{Machine: m, Generation: gen, Facts: replaceOrKeep(f)}) }
	vmFacts := func(restarts int) Facts {
		return Facts{PID: 10000 + r.IntN(50000), RestartCount: restarts, TemplateHash: sp.TemplateHash(port())}
	}
	longErr := "hostagent did not create PID file within timeout (see \"/home/user/.rd2/lima/rd/ha.stderr.log\"): " +
		strings.Repeat("exec: \"qemu-system-x86_64\": executable file not found in $PATH; ", 3)

	add(&DaemonStarted{Version: "v0.1.0", PID: 1})
	setSpec(spec.Default())
	tr(MachineVM, "creating", "", Facts{})
	tr(MachineVM, "stopped", "", vmFacts(0))
	obs(MachineEngine, nil)
	obs(MachineK3s, nil)
	restarts := 0
	for cycle := 0; len(envs) < benchEvents; cycle++ {
		s := sp
		s.Running = true
		s.Kubernetes = spec.Kubernetes{}
		if cycle%4 == 0 {
			s.Kubernetes = spec.Kubernetes{Enabled: true, Version: "1.34.6"}
		}
		setSpec(s)
		obs(MachineKubeconfig, nil)
		if s.Kubernetes.Enabled {
			tr(MachineK3s, "notRunning", "", Facts{Port: 7443})
		} else {
			obs(MachineK3s, nil)
		}
		obs(MachineEngine, nil)
		tr(MachineVM, "starting", "", vmFacts(restarts))
		if cycle%10 == 3 {
			tr(MachineVM, "startFailed", longErr, vmFacts(restarts))
			tr(MachineVM, "starting", "", vmFacts(restarts))
		}
		restarts++
		tr(MachineVM, "running", "", vmFacts(restarts))
		tr(MachineEngine, "connecting", "", Facts{})
		tr(MachineEngine, "connected", "", Facts{Containers: r.IntN(20), Images: r.IntN(50), Volumes: r.IntN(5)})
		if s.Kubernetes.Enabled {
			tr(MachineK3s, "probing", "", Facts{Port: 7443})
			tr(MachineKubeconfig, "merged", "", Facts{})
			tr(MachineK3s, "waitingForNode", "No node has registered yet", Facts{Port: 7443})
			tr(MachineK3s, "ready", "", Facts{Port: 7443})
		}
		// Passes while running: the engine and k3s re-assert at the current
		// generation, the engine with fresh inventory counts.
		for range 12 {
			obs(MachineEngine, &Facts{Containers: r.IntN(20), Images: r.IntN(50), Volumes: r.IntN(5)})
			obs(MachineK3s, nil)
		}
		if cycle%25 == 7 {
			add(&DaemonStopping{Reason: "SIGTERM"})
			add(&DaemonStarted{Version: "v0.1.0", PID: 100 + cycle})
			add(&Recovered{Machine: MachineVM, Believed: "running", Found: "running", PID: 10000})
			tr(MachineVM, "reconciling", "", vmFacts(restarts))
			tr(MachineVM, "running", "", vmFacts(restarts))
		}
		s.Running = false
		setSpec(s)
		obs(MachineEngine, nil)
		obs(MachineKubeconfig, nil)
		if s.Kubernetes.Enabled {
			tr(MachineK3s, "notRunning", "", Facts{Port: 7443})
			tr(MachineKubeconfig, "removing", "", Facts{})
			tr(MachineKubeconfig, "absent", "", Facts{})
		} else {
			obs(MachineK3s, nil)
		}
		tr(MachineVM, "stopping", "", vmFacts(restarts))
		tr(MachineVM, "stopped", "Lima instance stopped successfully", vmFacts(restarts))
		tr(MachineEngine, "stopped", "", Facts{})
	}
	return envs[:benchEvents]
})

func benchReplay(b *testing.B, jsonOnly bool) {
	envs := benchLog()
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := processCPU()
	for b.Loop() {
		p := NewProjector()
		p.jsonOnly = jsonOnly
		for _, e := range envs {
			if err := p.Apply(e); err != nil {
				b.Fatal(err)
			}
		}
	}
	cpu := processCPU() - cpu0
	events := float64(len(envs)) * float64(b.N)
	b.ReportMetric(events/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/events, "ns/event")
	// CPU time (GC included) per event: the figure to trust on a shared,
	// overloaded machine, where wall time mostly measures waiting.
	if cpu > 0 {
		b.ReportMetric(float64(cpu.Nanoseconds())/events, "cpu-ns/event")
		b.ReportMetric(events/cpu.Seconds(), "events/cpu-s")
	}
}

// BenchmarkReplay1M folds the 1M-event log, payload decoding included
// (target: ≥ 1M events/s).
func BenchmarkReplay1M(b *testing.B) { benchReplay(b, false) }

// BenchmarkReplay1MEncodingJSON is the same with encoding/json only, for
// comparison with the fast decoder.
func BenchmarkReplay1MEncodingJSON(b *testing.B) { benchReplay(b, true) }

// steadyProjector is a projector with every condition present.
func steadyProjector(b *testing.B) *Projector {
	lb := newLog(b).set(k8sSpec(true, "1.34.6"))
	lb.tr(MachineVM, "creating").tr(MachineVM, "stopped").tr(MachineVM, "starting").tr(MachineVM, "running")
	lb.tr(MachineEngine, "connecting").tr(MachineEngine, "connected")
	lb.trf(MachineK3s, "probing", "", "", Facts{Port: 7443}).tr(MachineKubeconfig, "merged").tr(MachineK3s, "ready")
	if n := len(lb.snap().Status.Conditions); n != numSlots {
		b.Fatalf("%d conditions", n)
	}
	return lb.p
}

// BenchmarkSnapshot measures the deep copy handed to watchers per event.
func BenchmarkSnapshot(b *testing.B) {
	p := steadyProjector(b)
	b.ReportAllocs()
	for b.Loop() {
		_ = p.Snapshot()
	}
}

// BenchmarkSnapshotMarshal is what a watcher frame costs on the wire.
func BenchmarkSnapshotMarshal(b *testing.B) {
	s := steadyProjector(b).Snapshot()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := json.Marshal(s); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkApplyObserved is the cheapest, most frequent event in steady
// state, folded one at a time.
func BenchmarkApplyObserved(b *testing.B) {
	p := steadyProjector(b)
	data := []byte(fmt.Sprintf(`{"machine":"engine","generation":%d,"facts":{"containers":3,"images":7}}`, p.st.generation))
	b.ReportAllocs()
	for b.Loop() {
		if err := p.Apply(Envelope{Seq: p.st.seq + 1, Time: t0, Type: TypeObserved, V: 1, Data: data}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkUnmarshalEnvelope is the store's cost to decode one exported line
// (not part of the projector; for comparison).
func BenchmarkUnmarshalEnvelope(b *testing.B) {
	line, err := Marshal(benchLog()[1000])
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Unmarshal(line); err != nil {
			b.Fatal(err)
		}
	}
}
