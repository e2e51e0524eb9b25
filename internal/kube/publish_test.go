package kube

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestPublishIntoNewKubeconfig(t *testing.T) {
	e := newEnv(t)
	res, err := Publish(context.Background(), e.pub)
	if err != nil {
		t.Fatal(err)
	}
	if res.File != e.userConfig() || !res.Changed || !res.StandaloneChanged {
		t.Fatalf("result %+v", res)
	}
	for path, want := range map[string]os.FileMode{
		e.userConfig():                 0o600,
		filepath.Dir(e.userConfig()):   0o700 | os.ModeDir,
		e.pub.Standalone:               0o600,
		filepath.Dir(e.pub.Standalone): 0o700 | os.ModeDir,
	} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != want {
			t.Errorf("%s mode %v, want %v", path, fi.Mode(), want)
		}
	}
	cfg := load(t, e.userConfig())
	if cfg.CurrentContext != "" {
		t.Errorf("current-context %q: Publish must not switch it", cfg.CurrentContext)
	}
	k := cfg.Contexts[testName]
	if k == nil || k.Cluster != testName || k.AuthInfo != testName {
		t.Fatalf("context %+v", k)
	}
	if cfg.Clusters[testName].Server != "https://127.0.0.1:7443" || cfg.AuthInfos[testName].Token != "token-1" {
		t.Fatalf("entries %+v %+v", cfg.Clusters[testName], cfg.AuthInfos[testName])
	}
	sa := load(t, e.pub.Standalone)
	if sa.CurrentContext != testName || len(sa.Contexts) != 1 || len(sa.Clusters) != 1 || len(sa.AuthInfos) != 1 {
		t.Fatalf("standalone: %+v", sa)
	}
}

func TestPublishUnchangedDoesNotRewrite(t *testing.T) {
	e := newEnv(t)
	writeFile(t, e.userConfig(), userKubeconfig(t, 3))
	if _, err := Publish(context.Background(), e.pub); err != nil {
		t.Fatal(err)
	}
	user, standalone := statID(t, e.userConfig()), statID(t, e.pub.Standalone)
	res, err := Publish(context.Background(), e.pub)
	if err != nil {
		t.Fatal(err)
	}
	if res.Changed || res.StandaloneChanged {
		t.Fatalf("second publish rewrote: %+v", res)
	}
	if got := statID(t, e.userConfig()); got != user {
		t.Errorf("user kubeconfig rewritten: %+v -> %+v", user, got)
	}
	if got := statID(t, e.pub.Standalone); got != standalone {
		t.Errorf("standalone rewritten: %+v -> %+v", standalone, got)
	}

	// A changed source is published again.
	writeFile(t, e.pub.Source, k3sConfig(t, "https://127.0.0.1:7444", "token-2"))
	res, err = Publish(context.Background(), e.pub)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Changed || !res.StandaloneChanged {
		t.Fatalf("changed source not published: %+v", res)
	}
	if s := load(t, e.userConfig()).Clusters[testName].Server; s != "https://127.0.0.1:7444" {
		t.Fatalf("server %s", s)
	}
}

func TestPublishKeeps200Contexts(t *testing.T) {
	e := newEnv(t)
	writeFile(t, e.userConfig(), userKubeconfig(t, 200))
	if err := os.Chmod(e.userConfig(), 0o640); err != nil {
		t.Fatal(err)
	}
	before := load(t, e.userConfig())
	if _, err := Publish(context.Background(), e.pub); err != nil {
		t.Fatal(err)
	}
	after := load(t, e.userConfig())
	if after.CurrentContext != before.CurrentContext {
		t.Errorf("current-context %q -> %q", before.CurrentContext, after.CurrentContext)
	}
	for name, want := range before.Contexts {
		if !reflect.DeepEqual(after.Contexts[name], want) ||
			!reflect.DeepEqual(after.Clusters[name], before.Clusters[name]) ||
			!reflect.DeepEqual(after.AuthInfos[name], before.AuthInfos[name]) {
			t.Fatalf("entry %s changed", name)
		}
	}
	if len(after.Contexts) != 201 || len(after.Clusters) != 201 || len(after.AuthInfos) != 201 {
		t.Fatalf("counts %d %d %d", len(after.Contexts), len(after.Clusters), len(after.AuthInfos))
	}
	if fi, _ := os.Stat(e.userConfig()); fi.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, want 0640 kept", fi.Mode().Perm())
	}
}

func TestPublishKeepsContextNamespace(t *testing.T) {
	e := newEnv(t)
	if _, err := Publish(context.Background(), e.pub); err != nil {
		t.Fatal(err)
	}
	cfg := load(t, e.userConfig())
	cfg.Contexts[testName].Namespace = "team"
	writeFile(t, e.userConfig(), mustWrite(t, cfg))
	res, err := Publish(context.Background(), e.pub)
	if err != nil {
		t.Fatal(err)
	}
	if res.Changed {
		t.Error("a namespace on rdd's context counted as a change")
	}
	if ns := load(t, e.userConfig()).Contexts[testName].Namespace; ns != "team" {
		t.Errorf("namespace %q", ns)
	}
}

func TestPublishKubeconfigList(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	bBytes := userKubeconfig(t, 2)
	writeFile(t, b, bBytes)
	e.pub.Target = Target{KubeconfigEnv: a + string(os.PathListSeparator) + b, Home: e.home}

	res, err := Publish(context.Background(), e.pub)
	if err != nil {
		t.Fatal(err)
	}
	if res.File != a {
		t.Fatalf("published into %s, want the first listed file %s", res.File, a)
	}
	if load(t, a).Contexts[testName] == nil {
		t.Fatal("no context in a")
	}
	assertBytes(t, b, bBytes)
	if _, err := os.Stat(e.userConfig()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("~/.kube/config touched although KUBECONFIG is set: %v", err)
	}

	// kubectl's rule: a file that already holds the entry keeps it.
	if err := os.Remove(a); err != nil {
		t.Fatal(err)
	}
	holder := load(t, b)
	holder.Contexts[testName] = holder.Contexts["ctx-1"]
	bBytes = mustWrite(t, holder)
	writeFile(t, b, bBytes)
	res, err = Publish(context.Background(), e.pub)
	if err != nil {
		t.Fatal(err)
	}
	if res.File != b {
		t.Fatalf("published into %s, want %s which holds the context", res.File, b)
	}
	if _, err := os.Stat(a); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a created: %v", err)
	}
}

func TestPublishSymlinkedConfig(t *testing.T) {
	e := newEnv(t)
	real := filepath.Join(t.TempDir(), "dotfiles", "kubeconfig")
	writeFile(t, real, userKubeconfig(t, 1))
	if err := os.MkdirAll(filepath.Dir(e.userConfig()), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(real, e.userConfig()); err != nil {
		t.Fatal(err)
	}
	if _, err := Publish(context.Background(), e.pub); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(e.userConfig())
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("config is no longer a symlink: %v", fi.Mode())
	}
	if l, _ := os.Readlink(e.userConfig()); l != real {
		t.Fatalf("link now points at %s", l)
	}
	cfg := load(t, real)
	if cfg.Contexts[testName] == nil || cfg.Contexts["ctx-0"] == nil {
		t.Fatalf("target not updated: %v", keys(cfg.Contexts))
	}
	entries, _ := os.ReadDir(filepath.Dir(real))
	if len(entries) != 1 {
		t.Errorf("debris next to the target: %v", entries)
	}
}

// TestPublishHostile checks that each hostile kubeconfig fails with an error
// naming the file, changes no byte anywhere in the home directory, and writes
// no standalone file.
func TestPublishHostile(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, e *env) (named string)
		check func(t *testing.T, err error)
	}{{
		name: "malformed YAML",
		setup: func(t *testing.T, e *env) string {
			writeFile(t, e.userConfig(), []byte("apiVersion: v1\nclusters: [\n  this is: not yaml\n"))
			return e.userConfig()
		},
		check: func(t *testing.T, err error) {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("want *ParseError, got %T %v", err, err)
			}
		},
	}, {
		name: "directory in place of the file",
		setup: func(t *testing.T, e *env) string {
			if err := os.MkdirAll(filepath.Join(e.userConfig(), "sub"), 0o700); err != nil {
				t.Fatal(err)
			}
			return e.userConfig()
		},
		check: wantFileError(OpRead),
	}, {
		name: "~/.kube is a regular file",
		setup: func(t *testing.T, e *env) string {
			writeFile(t, filepath.Join(e.home, ".kube"), []byte("not a directory\n"))
			return e.userConfig()
		},
		check: wantFileError(OpRead),
	}, {
		name: "immutable file",
		setup: func(t *testing.T, e *env) string {
			writeFile(t, e.userConfig(), userKubeconfig(t, 2))
			chattr(t, "+i", e.userConfig())
			t.Cleanup(func() { chattr(t, "-i", e.userConfig()) })
			return e.userConfig()
		},
		check: wantFileError(OpRename),
	}, {
		name: "held lock",
		setup: func(t *testing.T, e *env) string {
			writeFile(t, e.userConfig(), userKubeconfig(t, 2))
			writeFile(t, e.userConfig()+".lock", nil)
			return e.userConfig() + ".lock"
		},
		check: func(t *testing.T, err error) {
			var le *LockError
			if !errors.As(err, &le) || !errors.Is(err, ErrLockHeld) {
				t.Fatalf("want *LockError, got %T %v", err, err)
			}
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			named := tt.setup(t, e)
			before := treeSnapshot(t, e.home)
			_, err := Publish(context.Background(), e.pub)
			t.Logf("publish: %v", err)
			assertErrNames(t, err, named)
			tt.check(t, err)
			assertSameTree(t, before, treeSnapshot(t, e.home))
			if _, err := os.Stat(e.pub.Standalone); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("standalone written after a failed merge: %v", err)
			}
			// Removal over the same file must not change it either.
			_, err = Remove(context.Background(), e.pub)
			if tt.name == "immutable file" {
				// Nothing of ours is in it, so nothing to remove.
				if err != nil {
					t.Fatalf("remove: %v", err)
				}
			} else if tt.name != "held lock" {
				assertErrNames(t, err, named)
			}
			assertSameTree(t, before, treeSnapshot(t, e.home))
		})
	}
}

func wantFileError(op FileOp) func(*testing.T, error) {
	return func(t *testing.T, err error) {
		t.Helper()
		var fe *FileError
		if !errors.As(err, &fe) {
			t.Fatalf("want *FileError, got %T %v", err, err)
		}
		if fe.Op != op {
			t.Fatalf("op %q, want %q (%v)", fe.Op, op, err)
		}
	}
}

func chattr(t *testing.T, flag, path string) {
	t.Helper()
	out, err := exec.Command("chattr", flag, path).CombinedOutput()
	if err != nil {
		t.Fatalf("chattr %s %s: %v %s (needs root, e2fsprogs and a filesystem with the immutable flag, e.g. ext4)", flag, path, err, out)
	}
}

func TestPublishSourceErrors(t *testing.T) {
	tests := []struct {
		name string
		want error
	}{
		{"no cluster", ErrNoCluster},
		{"no user", ErrNoUser},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			src := load(t, e.pub.Source)
			if tt.want == ErrNoCluster {
				src.Clusters = nil
			} else {
				src.AuthInfos = nil
			}
			writeFile(t, e.pub.Source, mustWrite(t, src))
			_, err := Publish(context.Background(), e.pub)
			var se *SourceError
			if !errors.Is(err, tt.want) || !errors.As(err, &se) {
				t.Fatalf("want %v in a *SourceError, got %v", tt.want, err)
			}
			assertErrNames(t, err, e.pub.Source)
			if _, err := os.Stat(e.home + "/.kube"); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("~/.kube created for a bad source: %v", err)
			}
		})
	}
	t.Run("missing source", func(t *testing.T) {
		e := newEnv(t)
		e.pub.Source += ".missing"
		_, err := Publish(context.Background(), e.pub)
		if !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("want not-exist, got %v", err)
		}
		assertErrNames(t, err, e.pub.Source)
	})
}

func TestRemove(t *testing.T) {
	t.Run("entries, standalone and our current-context go", func(t *testing.T) {
		e := newEnv(t)
		writeFile(t, e.userConfig(), userKubeconfig(t, 3))
		if _, err := Publish(context.Background(), e.pub); err != nil {
			t.Fatal(err)
		}
		cfg := load(t, e.userConfig())
		cfg.CurrentContext = testName
		writeFile(t, e.userConfig(), mustWrite(t, cfg))

		res, err := Remove(context.Background(), e.pub)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Changed) != 1 || !res.StandaloneRemoved {
			t.Fatalf("result %+v", res)
		}
		after := load(t, e.userConfig())
		if holds(after, testName) || after.CurrentContext != "" {
			t.Fatalf("left behind: current %q holds %v", after.CurrentContext, holds(after, testName))
		}
		if len(after.Contexts) != 3 {
			t.Fatalf("other contexts lost: %v", keys(after.Contexts))
		}
		if _, err := os.Stat(e.pub.Standalone); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("standalone still there: %v", err)
		}
		// Nothing left to remove: no rewrite.
		id := statID(t, e.userConfig())
		res, err = Remove(context.Background(), e.pub)
		if err != nil || len(res.Changed) != 0 || res.StandaloneRemoved {
			t.Fatalf("second remove: %+v %v", res, err)
		}
		if statID(t, e.userConfig()) != id {
			t.Fatal("second remove rewrote the file")
		}
	})
	t.Run("another current-context is kept", func(t *testing.T) {
		e := newEnv(t)
		writeFile(t, e.userConfig(), userKubeconfig(t, 2))
		if _, err := Publish(context.Background(), e.pub); err != nil {
			t.Fatal(err)
		}
		if _, err := Remove(context.Background(), e.pub); err != nil {
			t.Fatal(err)
		}
		if cur := load(t, e.userConfig()).CurrentContext; cur != "ctx-0" {
			t.Fatalf("current-context %q, want ctx-0 kept", cur)
		}
	})
	t.Run("no file is created", func(t *testing.T) {
		e := newEnv(t)
		before := treeSnapshot(t, e.home)
		res, err := Remove(context.Background(), e.pub)
		if err != nil || len(res.Changed) != 0 || res.StandaloneRemoved {
			t.Fatalf("%+v %v", res, err)
		}
		assertSameTree(t, before, treeSnapshot(t, e.home))
	})
	t.Run("every listed file holding an entry", func(t *testing.T) {
		e := newEnv(t)
		dir := t.TempDir()
		a, b, c := filepath.Join(dir, "a"), filepath.Join(dir, "b"), filepath.Join(dir, "c")
		aBytes := userKubeconfig(t, 1)
		writeFile(t, a, aBytes)
		stale := load(t, a)
		stale.Clusters[testName] = stale.Clusters["ctx-0"]
		writeFile(t, b, mustWrite(t, stale))
		e.pub.Target = Target{KubeconfigEnv: strings.Join([]string{a, b, c}, ":"), Home: e.home}
		res, err := Remove(context.Background(), e.pub)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(res.Changed, []string{b}) {
			t.Fatalf("changed %v, want [%s]", res.Changed, b)
		}
		assertBytes(t, a, aBytes)
		if holds(load(t, b), testName) {
			t.Fatal("b still holds the cluster")
		}
		if _, err := os.Stat(c); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("c created: %v", err)
		}
	})
}

func TestTargetFiles(t *testing.T) {
	tests := []struct {
		env  string
		want []string
	}{
		{"", []string{"/h/.kube/config"}},
		{":", []string{"/h/.kube/config"}},
		{"/a:/b:/a::", []string{"/a", "/b"}},
		{"/only", []string{"/only"}},
	}
	for _, tt := range tests {
		got, err := Target{KubeconfigEnv: tt.env, Home: "/h"}.Files()
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Files(%q) = %v, %v; want %v", tt.env, got, err, tt.want)
		}
	}
	if _, err := (Target{}).Files(); err == nil {
		t.Error("no KUBECONFIG and no home: want an error")
	}
	got := TargetFromEnv(func(k string) string {
		if k == "KUBECONFIG" {
			return "/x"
		}
		return ""
	}, "/h")
	if got != (Target{KubeconfigEnv: "/x", Home: "/h"}) {
		t.Errorf("TargetFromEnv = %+v", got)
	}
}

// TestPublishConcurrentWritersKeepEveryEntry has two writers add entries to
// one kubeconfig at the same time; without kubectl's lock around each
// read-modify-write, one would overwrite the other's additions.
func TestPublishConcurrentWritersKeepEveryEntry(t *testing.T) {
	e := newEnv(t)
	const writers, perWriter = 2, 15
	errs := make(chan error, writers)
	for w := range writers {
		go func() {
			for i := range perWriter {
				p := e.pub
				p.Name = fmt.Sprintf("rd-%d-%d", w, i)
				p.Standalone = filepath.Join(e.home, fmt.Sprintf(".rd-%d-%d", w, i), "kube.config")
				p.LockWait = 30 * time.Second
				if _, err := Publish(context.Background(), p); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range writers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if n := len(load(t, e.userConfig()).Contexts); n != writers*perWriter {
		t.Fatalf("%d contexts, want %d: updates were lost", n, writers*perWriter)
	}
	if _, err := os.Stat(e.userConfig() + ".lock"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("lock left behind: %v", err)
	}
}
