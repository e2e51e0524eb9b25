package main

import (
	"encoding/json"
	"strings"
	"testing"
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
	if err := json.Unmarshal([]byte(h.stdout.String()), &m); err != nil || len(m) != len(keys) || m["socket"] != p.Socket {
		t.Errorf("svc paths -o json = %s (%v)", h.stdout, err)
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
		{"completion", "powershell"},
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
	line := h.stdout.String()
	if !strings.HasPrefix(line, "rdd version v1.2.3 (commit abc123, go") {
		t.Errorf("version = %q", line)
	}
	for _, flag := range []string{"--version", "--version=true"} {
		h.reset()
		if code := h.run(flag); code != 0 || h.stdout.String() != line {
			t.Errorf("rdd %s = %d, %q; want the same as rdd version", flag, code, h.stdout)
		}
	}
	h.reset()
	if code := h.run("--version=raw"); code != 0 || !strings.Contains(h.stdout.String(), "GitCommit: abc123\n") {
		t.Errorf("rdd --version=raw = %d, %q", code, h.stdout)
	}
	h.reset()
	if code := h.run("version", "-o", "json"); code != 0 || !strings.Contains(h.stdout.String(), `"version":"v1.2.3"`) {
		t.Errorf("rdd version -o json = %d, %q", code, h.stdout)
	}
}

func TestCompletion(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish"} {
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
