package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rdd-project/rdd/internal/cli/exit"
)

func TestSplitInstance(t *testing.T) {
	tests := []struct {
		name      string
		args      []string
		env       string
		want      string
		wantRest  []string
		wantUsage bool
	}{
		{name: "default", args: []string{"status"}, want: "", wantRest: []string{"status"}},
		{name: "env", args: []string{"status"}, env: "bats", want: "bats", wantRest: []string{"status"}},
		{name: "flag wins over env", args: []string{"--instance", "x", "status"}, env: "bats", want: "x", wantRest: []string{"status"}},
		{name: "flag=value", args: []string{"--instance=x", "status", "-o", "json"}, want: "x", wantRest: []string{"status", "-o", "json"}},
		{name: "empty flag=value ignored", args: []string{"--instance=", "status"}, env: "bats", want: "bats", wantRest: []string{"status"}},
		{name: "empty value ignored", args: []string{"--instance", "", "status"}, want: "", wantRest: []string{"status"}},
		{name: "not first: left for cobra", args: []string{"status", "--instance", "x"}, want: "", wantRest: []string{"status", "--instance", "x"}},
		{name: "no args", args: nil, env: "3", want: "3", wantRest: nil},
		{name: "missing value", args: []string{"--instance"}, wantUsage: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			getenv := func(k string) string {
				if k == "RDD_INSTANCE" {
					return tt.env
				}
				return ""
			}
			got, rest, err := splitInstance(tt.args, getenv)
			if tt.wantUsage {
				if exit.Classify(err) != exit.CodeUsage {
					t.Fatalf("splitInstance(%q) error = %v, want a usage error", tt.args, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("splitInstance(%q): %v", tt.args, err)
			}
			if got != tt.want || !slices.Equal(rest, tt.wantRest) {
				t.Errorf("splitInstance(%q) = %q, %q; want %q, %q", tt.args, got, rest, tt.want, tt.wantRest)
			}
		})
	}
}

// --instance selects the instance wherever it stands before the command's
// own arguments; the harness's default instance has no daemon.
func TestInstanceFlagAnywhere(t *testing.T) {
	h := newHarness(t)
	other, err := h.e.resolve("u")
	if err != nil {
		t.Fatal(err)
	}
	def := h.e.paths
	h.e.paths = other
	h.serve(&fakeBackend{snap: appAt(1, cond("Settled", "True", "Settled", 1))})
	h.e.paths = def
	for _, args := range [][]string{
		{"status", "--instance", "u", "-o", "json"},
		{"status", "-o", "json", "--instance=u"},
		{"--instance", "u", "status", "-o", "json"},
	} {
		h.reset()
		h.e.paths = def
		if code := h.run(args...); code != 0 || !strings.Contains(h.stdout.String(), `"exists":true`) {
			t.Errorf("rdd %q = %d: %s %s", args, code, h.stdout, h.stderr)
		}
	}
	h.reset()
	h.e.paths = def
	if code := h.run("svc", "paths", "socket", "--instance", "u"); code != 0 || h.stdout.String() != other.Socket+"\n" {
		t.Errorf("svc paths socket --instance u = %d, %q", code, h.stdout)
	}
	h.reset()
	h.e.paths = def
	if code := h.run("run", "--instance", "u", "--", "sh", "-c", `echo "$DOCKER_CONTEXT"`); code != 0 || h.stdout.String() != "rancher-desktop-u\n" {
		t.Errorf("run --instance u = %d, %q; stderr %q", code, h.stdout, h.stderr)
	}
	h.reset()
	h.e.paths = def
	if code := h.run("status"); code != 1 {
		t.Errorf("status of the default instance (no daemon) = %d, want 1", code)
	}

	h.reset()
	if code := h.run("status", "--help"); code != 0 || !strings.Contains(h.stdout.String(), "--instance string") {
		t.Errorf("status --help lacks --instance:\n%s", h.stdout)
	}
	for _, name := range []string{"rancher-desktop-u", "rancher-desktop-dev", "unrelated"} {
		if err := os.MkdirAll(filepath.Join(filepath.Dir(other.ServiceDir), name), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	h.reset()
	if code := h.run("__complete", "status", "--instance", ""); code != 0 || !strings.HasPrefix(h.stdout.String(), "dev\nu\n:4\n") {
		t.Errorf("completion of --instance = %d, %q", code, h.stdout)
	}
}
