package kube

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

const testName = "rancher-desktop-2"

// env is one isolated user: a home directory, a k3s kubeconfig and the
// instance's standalone path, all under t.TempDir.
type env struct {
	t    *testing.T
	home string
	pub  Publication
}

func newEnv(t *testing.T) *env {
	t.Helper()
	root := t.TempDir()
	home := filepath.Join(root, "home")
	if err := os.MkdirAll(home, 0o755); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(root, "k3s.yaml")
	writeFile(t, src, k3sConfig(t, "https://127.0.0.1:7443", "token-1"))
	return &env{t: t, home: home, pub: Publication{
		Name:       testName,
		Source:     src,
		Standalone: filepath.Join(home, ".rd2", "kube.config"),
		Target:     Target{Home: home},
		LockWait:   200 * time.Millisecond,
	}}
}

func (e *env) userConfig() string { return filepath.Join(e.home, ".kube", "config") }

// k3sConfig is a kubeconfig shaped like k3s's, with a bearer token so it needs
// no key material.
func k3sConfig(t testing.TB, server, token string) []byte {
	cfg := clientcmdapi.NewConfig()
	c := clientcmdapi.NewCluster()
	c.Server = server
	c.CertificateAuthorityData = []byte("-----BEGIN CERTIFICATE-----\nfake\n-----END CERTIFICATE-----\n")
	u := clientcmdapi.NewAuthInfo()
	u.Token = token
	k := clientcmdapi.NewContext()
	k.Cluster, k.AuthInfo = "default", "default"
	cfg.Clusters["default"], cfg.AuthInfos["default"], cfg.Contexts["default"] = c, u, k
	cfg.CurrentContext = "default"
	return mustWrite(t, cfg)
}

// userKubeconfig has n contexts ctx-0..ctx-n-1, each with its own cluster and
// user, and current-context ctx-0.
func userKubeconfig(t testing.TB, n int) []byte {
	cfg := clientcmdapi.NewConfig()
	for i := range n {
		name := fmt.Sprintf("ctx-%d", i)
		c := clientcmdapi.NewCluster()
		c.Server = fmt.Sprintf("https://cluster-%d.example.invalid:%d", i, 6443+i)
		c.InsecureSkipTLSVerify = i%2 == 0
		u := clientcmdapi.NewAuthInfo()
		u.Token = fmt.Sprintf("secret-%d", i)
		k := clientcmdapi.NewContext()
		k.Cluster, k.AuthInfo, k.Namespace = name, name, fmt.Sprintf("ns-%d", i)
		cfg.Clusters[name], cfg.AuthInfos[name], cfg.Contexts[name] = c, u, k
	}
	if n > 0 {
		cfg.CurrentContext = "ctx-0"
	}
	return mustWrite(t, cfg)
}

func mustWrite(t testing.TB, cfg *clientcmdapi.Config) []byte {
	b, err := clientcmd.Write(*cfg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeFile(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func load(t testing.TB, path string) *clientcmdapi.Config {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(path)
	if err != nil {
		t.Fatalf("load %s: %v", path, err)
	}
	return cfg
}

// treeSnapshot records every entry under root: type, mode and content (or
// link target), so a test can assert that nothing at all changed.
func treeSnapshot(t testing.TB, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		desc := fi.Mode().String()
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			l, _ := os.Readlink(p)
			desc += " -> " + l
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			desc += " " + string(b)
		}
		out[p] = desc
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func assertSameTree(t testing.TB, before, after map[string]string) {
	t.Helper()
	if reflect.DeepEqual(before, after) {
		return
	}
	for p, d := range after {
		if b, ok := before[p]; !ok {
			t.Errorf("created %s", p)
		} else if b != d {
			t.Errorf("changed %s", p)
		}
	}
	for p := range before {
		if _, ok := after[p]; !ok {
			t.Errorf("removed %s", p)
		}
	}
}

// fileID is what tells a rewrite from an untouched file.
type fileID struct {
	ino   uint64
	mtime time.Time
	size  int64
}

func statID(t testing.TB, path string) fileID {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fileID{ino: fi.Sys().(*syscall.Stat_t).Ino, mtime: fi.ModTime(), size: fi.Size()}
}

func assertErrNames(t testing.TB, err error, path string) {
	t.Helper()
	if err == nil {
		t.Fatalf("want an error naming %s, got nil", path)
	}
	if !strings.Contains(err.Error(), path) {
		t.Fatalf("error does not name %s: %v", path, err)
	}
}

func assertBytes(t testing.TB, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s changed:\n%s", path, got)
	}
}
