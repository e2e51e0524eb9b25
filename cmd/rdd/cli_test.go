package main

import (
	"encoding/json"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/rdd-project/rdd/internal/api"
)

func TestSvcPaths(t *testing.T) {
	h := newHarness(t)
	p := h.e.paths
	keys := pathKeys()
	if len(keys) != len(p.Map()) {
		t.Fatalf("pathKeys = %q", keys)
	}

	if code := h.run("svc", "paths"); code != 0 {
		t.Fatalf("svc paths = %d: %s", code, h.stderr)
	}
	for _, k := range keys {
		if !strings.Contains(h.stdout.String(), k+" ") || !strings.Contains(h.stdout.String(), p.Map()[k]) {
			t.Errorf("svc paths table lacks %s:\n%s", k, h.stdout)
		}
	}

	h.reset()
	if code := h.run("svc", "paths", "-o", "json"); code != 0 {
		t.Fatalf("svc paths -o json = %d", code)
	}
	var m map[string]string
	if err := json.Unmarshal([]byte(h.stdout.String()), &m); err != nil || len(m) != len(keys) || m["socket"] != p.Socket ||
		strings.Count(h.stdout.String(), "\n") != 1 {
		t.Errorf("svc paths -o json = %s (%v), want one line like every -o json", h.stdout, err)
	}

	h.reset()
	if code := h.run("svc", "paths", "-o", "shell"); code != 0 {
		t.Fatalf("svc paths -o shell = %d", code)
	}
	if !strings.Contains(h.stdout.String(), "socket='"+p.Socket+"'\n") || strings.Count(h.stdout.String(), "\n") != len(keys) {
		t.Errorf("svc paths -o shell:\n%s", h.stdout)
	}

	h.reset()
	if code := h.run("svc", "paths", "socket"); code != 0 || h.stdout.String() != p.Socket+"\n" {
		t.Errorf("svc paths socket = %d, %q", code, h.stdout)
	}

	h.reset()
	if code := h.run("svc", "paths", "nope"); code != 2 || !strings.Contains(h.stderr.String(), `unknown key "nope"; valid keys: daemon_log, dir,`) {
		t.Errorf("svc paths nope = %d, %q", code, h.stderr)
	}
	h.reset()
	if code := h.run("svc", "paths", "-o", "xml"); code != 2 {
		t.Errorf("svc paths -o xml = %d, want 2", code)
	}
}

func TestShellQuote(t *testing.T) {
	if got, want := shellQuote("/a b/it's"), `'/a b/it'\''s'`; got != want {
		t.Errorf("shellQuote = %s, want %s", got, want)
	}
}

func TestUsageErrorsExit2(t *testing.T) {
	for _, args := range [][]string{
		{"nosuchcommand"},
		{"set"},
		{"status", "extra"},
		{"status", "-o", "xml"},
		{"svc", "bogus"},
		{"completion", "tcsh"},
		{"daemon", "--vm-driver", "kvm"},
		{"status", "--at", "yesterday"},
		{"why", "Nonsense"},
		{"set", "running"},
		{"svc", "paths", "nokey"},
		{"set", "--wait=maybe", "running=true"},
		{"start", "-o", "xml"},
		{"events", "--since", "yesterday"},
		{"status", "--at", "-5m"},
	} {
		h := newHarness(t)
		if code := h.run(args...); code != 2 {
			t.Errorf("rdd %q = %d, want 2; stderr %q", args, code, h.stderr)
		}
		if !strings.HasPrefix(h.stderr.String(), "Error: ") || !strings.Contains(h.stderr.String(), "--help' for usage") {
			t.Errorf("rdd %q stderr = %q", args, h.stderr)
		}
		if h.daemonStarts != 0 {
			t.Errorf("rdd %q started the daemon", args)
		}
	}
}

func TestVersion(t *testing.T) {
	h := newHarness(t)
	if code := h.run("version"); code != 0 {
		t.Fatal(code)
	}
	out := h.stdout.String()
	line, _, _ := strings.Cut(out, "\n")
	if !strings.HasPrefix(line, "rdd version v1.2.3 (commit abc123, go") {
		t.Errorf("version = %q", out)
	}
	if want := line + "\ndaemon of instance t: not running\n"; out != want {
		t.Errorf("version with the daemon down = %q, want %q", out, want)
	}
	for _, flag := range []string{"--version", "--version=true"} {
		h.reset()
		if code := h.run(flag); code != 0 || h.stdout.String() != line+"\n" {
			t.Errorf("rdd %s = %d, %q; want the first line of rdd version", flag, code, h.stdout)
		}
	}
	h.reset()
	if code := h.run("--version=raw"); code != 0 || !strings.Contains(h.stdout.String(), "GitCommit: abc123\n") {
		t.Errorf("rdd --version=raw = %d, %q", code, h.stdout)
	}
	h.reset()
	if code := h.run("version", "-o", "json"); code != 0 {
		t.Fatalf("rdd version -o json = %d: %s", code, h.stderr)
	}
	var down map[string]any
	if err := json.Unmarshal([]byte(h.stdout.String()), &down); err != nil {
		t.Fatalf("rdd version -o json: %v: %s", err, h.stdout)
	}
	if down["version"] != "v1.2.3" || down["commit"] != "abc123" || down["goVersion"] != runtime.Version() ||
		down["daemonRunning"] != false || down["daemon"] != nil || down["instance"] != "t" {
		t.Errorf("rdd version -o json with the daemon down = %s", h.stdout)
	}
}

func TestVersionWithDaemon(t *testing.T) {
	h := newHarness(t)
	h.serveWith(&fakeBackend{}, api.ServerOptions{Version: "v1.2.0", Commit: "def456", BuildDate: "2026-11-01T00:00:00Z",
		Components: func() (*api.Component, *api.Component) {
			return &api.Component{Name: "moby", Version: "27.3.1"}, &api.Component{Name: "k3s", Version: "v1.33.1+k3s1"}
		}})
	if code := h.run("version"); code != 0 {
		t.Fatalf("version = %d: %s", code, h.stderr)
	}
	for _, want := range []string{
		"daemon of instance t: rdd version v1.2.0 (commit def456, built 2026-11-01T00:00:00Z, " + runtime.Version() + "), pid ",
		"  engine:     moby 27.3.1\n",
		"  kubernetes: k3s v1.33.1+k3s1\n",
	} {
		if !strings.Contains(h.stdout.String(), want) {
			t.Errorf("version lacks %q:\n%s", want, h.stdout)
		}
	}
	h.reset()
	if code := h.run("version", "-o", "json"); code != 0 {
		t.Fatalf("version -o json = %d: %s", code, h.stderr)
	}
	var r versionReport
	if err := json.Unmarshal([]byte(h.stdout.String()), &r); err != nil {
		t.Fatal(err)
	}
	if !r.DaemonRunning || r.Daemon == nil || r.Daemon.Version != "v1.2.0" || r.Daemon.Commit != "def456" ||
		r.Daemon.Engine == nil || r.Daemon.Engine.Version != "27.3.1" || r.Daemon.Kubernetes == nil || r.Daemon.Kubernetes.Version != "v1.33.1+k3s1" ||
		r.Version != "v1.2.3" {
		t.Errorf("version -o json = %s", h.stdout)
	}
	h.reset()
	if code := h.run("version", "-o", "yaml"); code != 0 || !strings.Contains(h.stdout.String(), "daemonRunning: true") {
		t.Errorf("version -o yaml = %d: %s", code, h.stdout)
	}
}

// complete runs cobra's completion request and returns the candidates
// and the directive line.
func complete(t *testing.T, args ...string) (cands []string, directive string) {
	t.Helper()
	h := newHarness(t)
	if code := h.run(append([]string{"__complete"}, args...)...); code != 0 {
		t.Fatalf("__complete %q = %d: %s", args, code, h.stderr)
	}
	lines := strings.Split(strings.TrimSuffix(h.stdout.String(), "\n"), "\n")
	for _, l := range lines[:len(lines)-1] {
		name, _, _ := strings.Cut(l, "\t")
		cands = append(cands, name)
	}
	return cands, lines[len(lines)-1]
}

func TestCompletionOfSetAndFlags(t *testing.T) {
	cands, dir := complete(t, "set", "")
	if want := []string{"containerEngine.name=", "kubernetes.enabled=", "kubernetes.version=", "running="}; !slices.Equal(cands, want) || dir != ":6" {
		t.Errorf("set <TAB> = %q %s, want %q :6 (no space, no files)", cands, dir, want)
	}
	if cands, _ := complete(t, "set", "running=false", "containerEngine.name="); !slices.Equal(cands, []string{"containerEngine.name=moby", "containerEngine.name=containerd"}) {
		t.Errorf("set containerEngine.name=<TAB> = %q", cands)
	}
	if cands, _ := complete(t, "set", "kubernetes.enabled="); !slices.Equal(cands, []string{"kubernetes.enabled=true", "kubernetes.enabled=false"}) {
		t.Errorf("set kubernetes.enabled=<TAB> = %q", cands)
	}
	cands, _ = complete(t, "set", "kubernetes.version=")
	if len(cands) < 10 || !slices.Contains(cands, "kubernetes.version=1.32.0") || !slices.Contains(cands, "kubernetes.version=stable") ||
		cands[0] == "kubernetes.version=1.32.0" {
		t.Errorf("set kubernetes.version=<TAB> = %q, want the bundled versions newest first, then the channels", cands)
	}
	if cands, _ := complete(t, "status", "-o", ""); !slices.Equal(cands, []string{"text", "json", "yaml"}) {
		t.Errorf("status -o <TAB> = %q", cands)
	}
	if cands, _ := complete(t, "svc", "paths", "-o", ""); !slices.Equal(cands, []string{"table", "json", "shell"}) {
		t.Errorf("svc paths -o <TAB> = %q", cands)
	}
	if cands, _ := complete(t, "why", ""); !slices.Contains(cands, "KubernetesReady") || !slices.Contains(cands, "Settled") {
		t.Errorf("why <TAB> = %q", cands)
	}
	if cands, _ := complete(t, "completion", ""); !slices.Contains(cands, "powershell") {
		t.Errorf("completion <TAB> = %q", cands)
	}
}

func TestSetList(t *testing.T) {
	h := newHarness(t)
	if code := h.run("set", "--list"); code != 0 {
		t.Fatalf("set --list = %d: %s", code, h.stderr)
	}
	for _, want := range []string{"containerEngine.name  moby containerd\n", "running               true false\n", "1.32.0"} {
		if !strings.Contains(h.stdout.String(), want) {
			t.Errorf("set --list lacks %q:\n%s", want, h.stdout)
		}
	}
	if h.daemonStarts != 0 {
		t.Error("set --list started the daemon")
	}
	h.reset()
	if code := h.run("set", "--list", "kubernetes.version"); code != 0 {
		t.Fatalf("set --list kubernetes.version = %d: %s", code, h.stderr)
	}
	lines := strings.Split(strings.TrimSuffix(h.stdout.String(), "\n"), "\n")
	if !slices.Contains(lines, "1.32.0") || !slices.Contains(lines, "stable") {
		t.Errorf("set --list kubernetes.version = %q", lines)
	}
	h.reset()
	if code := h.run("set", "--list", "nope"); code != 2 || !strings.Contains(h.stderr.String(), "unknown property") {
		t.Errorf("set --list nope = %d: %s", code, h.stderr)
	}
}

func TestCompletion(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish", "powershell"} {
		h := newHarness(t)
		if code := h.run("completion", shell); code != 0 || !strings.Contains(h.stdout.String(), "rdd") {
			t.Errorf("completion %s = %d, %d bytes", shell, code, len(h.stdout.String()))
		}
	}
}

func TestSetHelpNeedsNoDaemon(t *testing.T) {
	h := newHarness(t)
	if code := h.run("set", "--help"); code != 0 {
		t.Fatal(code)
	}
	out := h.stdout.String()
	for _, want := range []string{"Available properties:", "running", "containerEngine.name", "kubernetes.enabled", "kubernetes.version", "--wait", "--timeout"} {
		if !strings.Contains(out, want) {
			t.Errorf("set --help lacks %q", want)
		}
	}
	if strings.Contains(out, "namespace") {
		t.Error("set --help mentions namespace")
	}
	if h.daemonStarts != 0 {
		t.Error("set --help started the daemon")
	}
}

func TestEveryCommandHasHelpAndExamples(t *testing.T) {
	root := newRootCommand(newHarness(t).e)
	for _, c := range root.Commands() {
		cmds := append(c.Commands(), c)
		for _, c := range cmds {
			if c.Name() == "help" {
				continue
			}
			if c.Short == "" || c.Long == "" || c.Example == "" {
				t.Errorf("%s lacks Short, Long or Example", c.CommandPath())
			}
		}
	}
}

// A command line that names a subcommand builds only that one; it must be
// the same command the whole tree has, and the root help still lists all.
func TestSubcommandAloneIsTheWholeTreesCommand(t *testing.T) {
	e := newHarness(t).e
	whole := newRootCommand(e)
	if got, want := len(whole.Commands()), len(subcommands); got != want {
		t.Fatalf("the whole tree has %d commands, want %d", got, want)
	}
	for _, sub := range subcommands {
		root := newRootCommandFor(e, onlySubcommand([]string{sub.name, "--help"}))
		c, _, err := root.Find([]string{sub.name})
		if err != nil || c.Name() != sub.name {
			t.Errorf("rdd %s alone: found %v, %v", sub.name, c.Name(), err)
			continue
		}
		w, _, _ := whole.Find([]string{sub.name})
		if c.UseLine() != w.UseLine() || c.Short != w.Short || c.GroupID != w.GroupID {
			t.Errorf("rdd %s alone is %q (%s), in the tree %q (%s)", sub.name, c.UseLine(), c.GroupID, w.UseLine(), w.GroupID)
		}
	}
	h := newHarness(t)
	if code := h.run("--help"); code != 0 {
		t.Fatalf("rdd --help = %d", code)
	}
	for _, sub := range subcommands {
		if !strings.Contains(h.stdout.String(), "\n  "+sub.name+" ") {
			t.Errorf("rdd --help does not list %s:\n%s", sub.name, h.stdout)
		}
	}
}

// Commands that wait, stream, hold locks or serve turn an interrupt into a
// cancelled context (exit 130, "Interrupted", the daemon's clean stop);
// only the ones that read and print leave it to the default action.
func TestWhichCommandsCatchInterrupts(t *testing.T) {
	for args, ends := range map[string]bool{
		"status":               true,
		"status -o json":       true,
		"status --watch":       false,
		"status -w":            false,
		"events --since 5m":    true,
		"events -f":            false,
		"why Settled":          true,
		"version":              true,
		"svc paths":            true,
		"svc status":           true,
		"svc logs -f":          false,
		"svc start":            false,
		"svc stop":             false,
		"svc delete":           false,
		"set running=true":     false,
		"start":                false,
		"stop":                 false,
		"run docker ps":        false,
		"daemon":               false,
		"replay":               false,
		"status --watch=false": true,
	} {
		root := newRootCommand(newHarness(t).e)
		fields := strings.Fields(args)
		cmd, rest, err := root.Find(fields)
		if err != nil {
			t.Fatalf("find %q: %v", args, err)
		}
		if err := cmd.ParseFlags(rest); err != nil {
			t.Fatalf("flags of %q: %v", args, err)
		}
		if got := endsByItself(cmd); got != ends {
			t.Errorf("endsByItself(rdd %s) = %v, want %v", args, got, ends)
		}
	}
}

func TestMistypedCommandSuggests(t *testing.T) {
	for args, want := range map[string]string{
		"statsu":      "Error: unknown command \"statsu\" for \"rdd\"\n\nDid you mean this?\n\tstatus\n\nRun 'rdd --help' for usage.\n",
		"svc sttus":   "Error: unknown command \"sttus\" for \"rdd svc\"\n\nDid you mean this?\n\tstatus\n\nRun 'rdd svc --help' for usage.\n",
		"zzzzzzzzzzz": "Error: unknown command \"zzzzzzzzzzz\" for \"rdd\"\nRun 'rdd --help' for usage.\n",
	} {
		h := newHarness(t)
		if code := h.run(strings.Fields(args)...); code != 2 || h.stderr.String() != want {
			t.Errorf("rdd %s = %d:\n%s\nwant:\n%s", args, code, h.stderr, want)
		}
	}
}

func TestFlagValueErrorsSayWhatIsWanted(t *testing.T) {
	for args, want := range map[string]string{
		"set --wait=maybe running=true": `Error: invalid value "maybe" for --wait: want true or false`,
		"start --timeout=soon":          `Error: invalid value "soon" for --timeout: want a duration such as 90s, 5m or 1h30m`,
		"events --limit=many":           `Error: invalid value "many" for --limit: want a whole number`,
	} {
		h := newHarness(t)
		if code := h.run(strings.Fields(args)...); code != 2 || !strings.HasPrefix(h.stderr.String(), want+"\n") || strings.Contains(h.stderr.String(), "strconv") {
			t.Errorf("rdd %s = %d: %q, want %q", args, code, h.stderr, want)
		}
	}
}
