package kubetest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

func TestSharedServer(t *testing.T) {
	srv := Shared(t)
	if again := Shared(t); again != srv {
		t.Fatal("Shared started a second server")
	}
	cfg, err := clientcmd.LoadFromFile(srv.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.CurrentContext != EntryName || cfg.Clusters[EntryName] == nil || cfg.AuthInfos[EntryName] == nil || cfg.Contexts[EntryName] == nil {
		t.Fatalf("kubeconfig not shaped like k3s's: %+v", cfg)
	}
	if s := cfg.Clusters[EntryName].Server; s != srv.URL {
		t.Fatalf("server %s, want %s", s, srv.URL)
	}

	c, err := srv.Client()
	if err != nil {
		t.Fatal(err)
	}
	v, err := c.Discovery().ServerVersion()
	if err != nil {
		t.Fatal(err)
	}
	if v.GitVersion != Version {
		t.Errorf("server version %s, want %s: a stale binary? run hack/kube-apiserver.sh, which rebuilds an unstamped one", v.GitVersion, Version)
	}

	t.Run("anonymous requests are refused", func(t *testing.T) {
		pool := x509.NewCertPool()
		pool.AddCert(srv.CA.Cert)
		hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
		resp, err := hc.Get(srv.URL + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("anonymous /readyz: %s, want 401", resp.Status)
		}
	})

	t.Run("node status through the subresource", func(t *testing.T) {
		ctx := context.Background()
		if err := srv.CreateNode(ctx, "kubetest-node", corev1.ConditionFalse); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = srv.DeleteAllNodes(context.Background()) })
		if err := srv.SetNodeReady(ctx, "kubetest-node", corev1.ConditionTrue); err != nil {
			t.Fatal(err)
		}
		n, err := c.CoreV1().Nodes().Get(ctx, "kubetest-node", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(n.Status.Conditions) != 1 || n.Status.Conditions[0].Status != corev1.ConditionTrue {
			t.Fatalf("conditions %+v", n.Status.Conditions)
		}
	})
}

func TestStopCleansUp(t *testing.T) {
	srv, err := Start(context.Background(), Options{Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	procs := []*process{srv.etcd, srv.apiserver}
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	for _, p := range procs {
		if !p.exited() {
			t.Errorf("%s still running", p.name)
		}
	}
	for _, d := range []string{srv.Dir, srv.etcdDir} {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("%s left behind: %v", d, err)
		}
	}
	if err := srv.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
}

func TestFindBinaries(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	root, err := RepoRoot(wd)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, buildScript)); err != nil {
		t.Fatalf("root %s has no %s", root, buildScript)
	}
	if _, err := RepoRoot(t.TempDir()); err == nil {
		t.Error("a directory outside the repository has a root")
	}
	t.Setenv(EnvAPIServer, filepath.Join(t.TempDir(), "nope"))
	if _, err := FindAPIServer(context.Background(), nil); err == nil {
		t.Error("a missing RDD_KUBE_APISERVER was accepted")
	}
	t.Setenv(EnvEtcd, filepath.Join(t.TempDir(), "nope"))
	if _, err := FindEtcd(); err == nil {
		t.Error("a missing RDD_ETCD was accepted")
	}
}
