package main

import (
	"fmt"
	"github.com/rdd-project/rdd/internal/spec"
	"maps"
	"strings"
	"testing"

	"github.com/rdd-project/rdd/internal/api"
	"github.com/rdd-project/rdd/internal/events"
)

func TestParseSetArgs(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		want    map[string]string
		wantErr string
	}{
		{name: "one", args: []string{"running=true"}, want: map[string]string{"running": "true"}},
		{name: "split at first =", args: []string{"kubernetes.version=a=b"}, want: map[string]string{"kubernetes.version": "a=b"}},
		{name: "empty value clears", args: []string{"kubernetes.version="}, want: map[string]string{"kubernetes.version": ""}},
		{name: "last duplicate wins", args: []string{"running=true", "kubernetes.enabled=true", "running=false"},
			want: map[string]string{"running": "false", "kubernetes.enabled": "true"}},
		{name: "names are not validated here", args: []string{"nonexistent=1"}, want: map[string]string{"nonexistent": "1"}},
		{name: "no =", args: []string{"running"}, wantErr: `invalid argument "running": expected PROPERTY=VALUE format`},
		{name: "empty name", args: []string{"=x"}, wantErr: `invalid argument "=x": property name must not be empty`},
		{name: "error after a good one", args: []string{"running=true", "x"}, wantErr: `invalid argument "x": expected PROPERTY=VALUE format`},
		{name: "empty argument", args: []string{""}, wantErr: `invalid argument "": expected PROPERTY=VALUE format`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := spec.ParseAssignments(tt.args)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("spec.ParseAssignments(%q) error = %v, want %q", tt.args, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("spec.ParseAssignments(%q): %v", tt.args, err)
			}
			if !maps.Equal(got, tt.want) {
				t.Errorf("spec.ParseAssignments(%q) = %v, want %v", tt.args, got, tt.want)
			}
		})
	}
}

// FuzzParseSetArgs checks the parser's contract on arbitrary input: it either
// fails naming the first malformed argument, or maps every name to the value
// of its last occurrence.
func FuzzParseSetArgs(f *testing.F) {
	for _, seed := range [][2]string{
		{"running=true", "kubernetes.version=1.33"},
		{"a=b=c", "a="},
		{"=x", "running"},
		{"", "x=y"},
		{"running=true", "running=false"},
		{"ü=ö", "\x00=\xff"},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		args := []string{a, b}
		got, err := spec.ParseAssignments(args)
		bad := -1
		for i, s := range args {
			if strings.IndexByte(s, '=') <= 0 {
				bad = i
				break
			}
		}
		if bad >= 0 {
			if err == nil {
				t.Fatalf("spec.ParseAssignments(%q) = %v, want an error for %q", args, got, args[bad])
			}
			if !strings.HasPrefix(err.Error(), fmt.Sprintf("invalid argument %q: ", args[bad])) {
				t.Fatalf("spec.ParseAssignments(%q) error %q does not name %q", args, err, args[bad])
			}
			return
		}
		if err != nil {
			t.Fatalf("spec.ParseAssignments(%q): %v", args, err)
		}
		want := map[string]string{}
		for _, s := range args {
			name, value, _ := strings.Cut(s, "=")
			want[name] = value
		}
		if !maps.Equal(got, want) {
			t.Fatalf("spec.ParseAssignments(%q) = %v, want %v", args, got, want)
		}
	})
}

func TestPropertiesHelp(t *testing.T) {
	got := propertiesHelp()
	for _, want := range []string{"Available properties:", "running (boolean)", "containerEngine.name (moby|containerd)",
		"kubernetes.enabled", "kubernetes.version"} {
		if !strings.Contains(got, want) {
			t.Errorf("set --help properties lack %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "namespace") {
		t.Errorf("set --help lists namespace:\n%s", got)
	}
}

func TestProgress(t *testing.T) {
	cond := func(typ events.ConditionType, status events.ConditionStatus, reason string, gen int64) events.Condition {
		return events.Condition{Type: typ, Status: status, Reason: reason, Message: reason + " message", ObservedGeneration: gen}
	}
	snap := func(cs ...events.Condition) events.Snapshot {
		return events.Snapshot{Exists: true, Generation: 2, Status: events.AppStatus{Conditions: cs}}
	}
	var p progress
	steps := []struct {
		snap events.Snapshot
		want []string
	}{
		{snap(cond("Running", "False", "Stopped", 1), cond("Settled", "True", "Settled", 1)), nil},
		{snap(cond("Running", "False", "Starting", 2), cond("Settled", "True", "Settled", 1)),
			[]string{"Running=False: Starting message (Starting)"}},
		{snap(cond("Running", "False", "Starting", 2), cond("Settled", "False", "Starting", 2)),
			[]string{"Settled=False: Starting message (Starting)"}},
		{snap(cond("Running", "True", "Started", 2), cond("Settled", "True", "Settled", 2)),
			[]string{"Running=True: Started message (Started)", "Settled=True: Settled message (Settled)"}},
		{snap(cond("Running", "True", "Started", 3), cond("Settled", "True", "Settled", 3)), nil},
	}
	for i, st := range steps {
		got := p.update(st.snap, 2)
		if strings.Join(got, "\n") != strings.Join(st.want, "\n") {
			t.Errorf("step %d: lines %q, want %q", i, got, st.want)
		}
	}
	if !settledAt(steps[3].snap, 2) || settledAt(steps[2].snap, 2) || settledAt(steps[0].snap, 2) {
		t.Error("settledAt disagrees with the snapshots")
	}
}

// A dry run never writes, not even the App's creation (decisions.md, F17
// dropped on purpose): no help text may promise otherwise.
func TestDryRunHelpSaysNothingIsWritten(t *testing.T) {
	for _, name := range []string{"set", "start", "stop"} {
		h := newHarness(t)
		if code := h.run(name, "--help"); code != 0 {
			t.Fatalf("%s --help = %d: %s", name, code, h.stderr)
		}
		help := h.stdout.String()
		i := strings.Index(help, "      --dry-run ") // the Flags section
		if i < 0 {
			t.Fatalf("%s --help lists no --dry-run flag:\n%s", name, help)
		}
		flag := help[i:]
		flag = flag[:strings.IndexByte(flag, '\n')]
		if strings.Contains(strings.ToLower(help), "creates an absent") || !strings.Contains(flag, "writes nothing, not even an absent App") {
			t.Errorf("%s --help describes --dry-run as %q", name, flag)
		}
	}
}

// restartingSet answers a set of containerEngine.name as a daemon whose
// running machine holds 3 containers would.
func restartingSet(req api.SetRequest) (api.SetResponse, error) {
	resp := api.SetResponse{Generation: 5, Changed: []string{"containerEngine.name"},
		Changes: []api.Change{{Property: "containerEngine.name", Old: "moby", New: "containerd"}}, Restart: true, Containers: 3}
	if !req.DryRun {
		resp.Generation, resp.Seq = 6, 9
	}
	return resp, nil
}

func TestSetDryRunShowsTheDiff(t *testing.T) {
	h := newHarness(t)
	b := &fakeBackend{set: restartingSet}
	h.serve(b)
	if code := h.run("set", "--dry-run", "containerEngine.name=containerd"); code != 0 {
		t.Fatalf("set --dry-run = %d: %s", code, h.stderr)
	}
	want := "dry run: would change containerEngine.name (generation 5)\n" +
		"  containerEngine.name  moby → containerd\n" +
		"applying it restarts the machine, stopping the containers in it (3)\n"
	if got := h.stdout.String(); got != want {
		t.Errorf("set --dry-run =\n%s\nwant\n%s", got, want)
	}
	h.reset()
	if code := h.run("set", "--dry-run", "-o", "json", "containerEngine.name=containerd"); code != 0 {
		t.Fatalf("set --dry-run -o json = %d: %s", code, h.stderr)
	}
	if got := h.stdout.String(); !strings.Contains(got, `"changes":[{"property":"containerEngine.name","old":"moby","new":"containerd"}],"restart":true,"containers":3`) {
		t.Errorf("set --dry-run -o json = %s", got)
	}
	b.set = func(api.SetRequest) (api.SetResponse, error) {
		return api.SetResponse{Generation: 5, Changed: []string{"kubernetes.version"},
			Changes: []api.Change{{Property: "kubernetes.version", Old: "", New: "1.34.6"}}}, nil
	}
	h.reset()
	if code := h.run("set", "--dry-run", "kubernetes.version=1.34.6"); code != 0 {
		t.Fatalf("set --dry-run = %d: %s", code, h.stderr)
	}
	if got := h.stdout.String(); !strings.Contains(got, `  kubernetes.version  "" → 1.34.6`+"\n") || !strings.HasSuffix(got, "applying it does not restart the machine\n") {
		t.Errorf("set --dry-run without a restart =\n%s", got)
	}
}

func TestSetAsksBeforeRestartingContainers(t *testing.T) {
	settled := []events.Snapshot{appAt(6, cond("Settled", "True", "Settled", 6))}
	t.Run("declined on a terminal", func(t *testing.T) {
		h := newHarness(t)
		h.e.stdinTTY, h.e.stderrTTY = true, true
		h.e.stdin = strings.NewReader("n\n")
		b := &fakeBackend{set: restartingSet, watch: settled}
		h.serve(b)
		if code := h.run("set", "containerEngine.name=containerd"); code != 1 {
			t.Fatalf("declined set = %d, want 1: %s", code, h.stderr)
		}
		if !strings.Contains(h.stderr.String(), "stopping the containers in it (3).\nApply it? [y/N] ") || !strings.Contains(h.stderr.String(), "not applied") {
			t.Errorf("stderr = %q", h.stderr)
		}
		if sets := b.recordedSets(); len(sets) != 1 || !sets[0].DryRun {
			t.Errorf("a declined set wrote: %+v", sets)
		}
	})
	t.Run("accepted on a terminal", func(t *testing.T) {
		h := newHarness(t)
		h.e.stdinTTY, h.e.stderrTTY = true, true
		h.e.stdin = strings.NewReader("y\n")
		b := &fakeBackend{set: restartingSet, watch: settled}
		h.serve(b)
		if code := h.run("set", "containerEngine.name=containerd"); code != 0 {
			t.Fatalf("accepted set = %d: %s", code, h.stderr)
		}
		if sets := b.recordedSets(); len(sets) != 2 || !sets[0].DryRun || sets[1].DryRun {
			t.Errorf("requests = %+v", sets)
		}
		if strings.Count(h.stderr.String(), "Warning:") != 1 {
			t.Errorf("warned more than once: %q", h.stderr)
		}
	})
	for _, tt := range []struct {
		name string
		args []string
		tty  bool
	}{
		{"--yes on a terminal", []string{"set", "--yes", "containerEngine.name=containerd"}, true},
		{"a script", []string{"set", "containerEngine.name=containerd"}, false},
		{"--wait=false on a terminal", []string{"set", "--wait=false", "containerEngine.name=containerd"}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.e.stdinTTY, h.e.stderrTTY = tt.tty, tt.tty
			b := &fakeBackend{set: restartingSet, watch: settled}
			h.serve(b)
			if code := h.run(tt.args...); code != 0 {
				t.Fatalf("%v = %d: %s", tt.args, code, h.stderr)
			}
			if sets := b.recordedSets(); len(sets) != 1 || sets[0].DryRun {
				t.Errorf("%v asked or wrote twice: %+v", tt.args, sets)
			}
			if !strings.Contains(h.stderr.String(), "Warning: applying it restarts the machine, stopping the containers in it (3).\n") ||
				strings.Contains(h.stderr.String(), "[y/N]") {
				t.Errorf("%v stderr = %q, want a warning and no question", tt.args, h.stderr)
			}
		})
	}
}
