package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rdd-project/rdd/internal/events"
	"github.com/rdd-project/rdd/internal/paths"
	"github.com/rdd-project/rdd/internal/spec"
)

func TestIsKubeCommand(t *testing.T) {
	for name, want := range map[string]bool{
		"kubectl": true, "helm": true, "/usr/local/bin/kubectl": true, `kubectl.exe`: true, "helm.exe": true,
		"docker": false, "kubectl-foo": false, "xkubectl": false, "kubectl.sh": false, "": false,
	} {
		if got := isKubeCommand(name); got != want {
			t.Errorf("isKubeCommand(%q) = %t, want %t", name, got, want)
		}
	}
}

func TestRunArgs(t *testing.T) {
	for _, tt := range []struct{ in, want []string }{
		{[]string{"--", "--help"}, []string{"--help"}},
		{[]string{"--", "--", "x"}, []string{"--", "x"}},
		{[]string{"kubectl", "--", "x"}, []string{"kubectl", "--", "x"}},
		{[]string{"--"}, []string{}},
		{nil, nil},
	} {
		if got := runArgs(tt.in); !slices.Equal(got, tt.want) {
			t.Errorf("runArgs(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestRunEnv(t *testing.T) {
	home := t.TempDir()
	p, err := paths.Resolve("bats", home, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	environ := []string{"HOME=" + home, "PATH=/usr/bin:/bin", "DOCKER_HOST=tcp://x:2375",
		"DOCKER_CONTEXT=other", "KUBECONFIG=/k", "LANG=C"}
	// No H/bin yet: PATH is left alone rather than pointing at nothing.
	got := runEnv(environ, p)
	want := []string{"HOME=" + home, "LANG=C", "PATH=/usr/bin:/bin",
		"DOCKER_CONTEXT=rancher-desktop-bats", "KUBECONFIG=" + home + "/.rdbats/kube.config"}
	if !slices.Equal(got, want) {
		t.Errorf("runEnv without H/bin = %q\nwant %q", got, want)
	}
	if err := os.MkdirAll(p.BinDir, 0o700); err != nil {
		t.Fatal(err)
	}
	got = runEnv(environ, p)
	want[2] = "PATH=" + p.BinDir + ":/usr/bin:/bin"
	if !slices.Equal(got, want) {
		t.Errorf("runEnv = %q\nwant %q", got, want)
	}
	got = runEnv([]string{"HOME=" + home}, p)
	if !slices.Contains(got, "PATH="+p.BinDir) {
		t.Errorf("runEnv with no PATH = %q, want PATH=H/bin without a separator", got)
	}
}

func TestRunDockerWithContainerd(t *testing.T) {
	h := newHarness(t)
	s := appAt(3, cond(events.CondSettled, events.StatusTrue, "Settled", 3))
	sp := spec.Default()
	sp.ContainerEngine.Name = spec.EngineContainerd
	s.Spec = &sp
	b := &fakeBackend{snap: s}
	h.serve(b)
	if code := h.run("run", "docker", "ps"); code != 1 {
		t.Fatalf("rdd run docker ps with containerd = %d, want 1: %s", code, h.stderr)
	}
	for _, want := range []string{"containerd engine", "docker CLI needs the moby engine", "rdd --instance t set containerEngine.name=moby"} {
		if !strings.Contains(h.stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, h.stderr)
		}
	}
	if sets := b.recordedSets(); len(sets) != 0 {
		t.Errorf("rdd run docker with containerd wrote %v; it must fail before starting anything", sets)
	}
}

func TestLookPath(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	tool := filepath.Join(bin, "docker")
	if err := os.WriteFile(tool, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bin, "notexec"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	env := []string{"PATH=" + bin + ":/usr/bin:/bin"}
	if got, err := lookPath("docker", env); err != nil || got != tool {
		t.Errorf("lookPath(docker) = %q, %v; want %q (H/bin first)", got, err, tool)
	}
	if got, err := lookPath("sh", env); err != nil || !strings.HasSuffix(got, "/sh") {
		t.Errorf("lookPath(sh) = %q, %v", got, err)
	}
	if _, err := lookPath("notexec", []string{"PATH=" + bin}); err == nil {
		t.Error("lookPath found a file that is not executable")
	}
	if got, err := lookPath("./x/y", env); err != nil || got != "./x/y" {
		t.Errorf("lookPath with a slash = %q, %v", got, err)
	}
}

func TestRunHelpStartsNothing(t *testing.T) {
	for _, arg := range []string{"--help", "-h"} {
		h := newHarness(t)
		if code := h.run("run", arg); code != 0 {
			t.Fatalf("rdd run %s = %d, stderr %q", arg, code, h.stderr)
		}
		if !strings.Contains(h.stdout.String(), "rdd run [--] COMMAND") {
			t.Errorf("rdd run %s did not print help: %q", arg, h.stdout)
		}
		if h.daemonStarts != 0 {
			t.Errorf("rdd run %s started the daemon", arg)
		}
	}
}

func TestRunWithoutCommand(t *testing.T) {
	for _, args := range [][]string{{"run"}, {"run", "--"}} {
		h := newHarness(t)
		if code := h.run(args...); code != 2 {
			t.Errorf("rdd %q = %d, want 2 (usage)", args, code)
		}
		if !strings.Contains(h.stderr.String(), "needs a command") || h.daemonStarts != 0 {
			t.Errorf("rdd %q: stderr %q, daemon starts %d", args, h.stderr, h.daemonStarts)
		}
	}
}
