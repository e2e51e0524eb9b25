package kube

import (
	"context"
	"encoding/pem"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/rdd-project/rdd/internal/kube/kubetest"
)

// tlsServer answers every request with status, over TLS.
func tlsServer(t *testing.T, status int) *httptest.Server {
	t.Helper()
	return quietTLSServer(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(status)
	}))
}

// quietTLSServer is an httptest TLS server that does not log the handshake
// failures some tests provoke on purpose.
func quietTLSServer(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

func serverCAData(srv *httptest.Server) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
}

// closedURL is an https URL on 127.0.0.1 where nothing listens.
func closedURL(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return "https://" + addr
}

// userWithCurrent is a kubeconfig whose current-context "mine" points at server.
func userWithCurrent(server string, ca []byte, user *clientcmdapi.AuthInfo) *clientcmdapi.Config {
	cfg := clientcmdapi.NewConfig()
	c := clientcmdapi.NewCluster()
	c.Server, c.CertificateAuthorityData = server, ca
	if user == nil {
		user = clientcmdapi.NewAuthInfo()
		user.Token = "user-token"
	}
	k := clientcmdapi.NewContext()
	k.Cluster, k.AuthInfo = "mine", "mine"
	cfg.Clusters["mine"], cfg.AuthInfos["mine"], cfg.Contexts["mine"] = c, user, k
	cfg.CurrentContext = "mine"
	return cfg
}

func writeTemp(t *testing.T, data []byte) string {
	p := filepath.Join(t.TempDir(), "kubeconfig")
	writeFile(t, p, data)
	return p
}

func TestDecideCurrentContext(t *testing.T) {
	unauthorized := tlsServer(t, http.StatusUnauthorized)
	forbidden := tlsServer(t, http.StatusForbidden)
	broken := tlsServer(t, http.StatusInternalServerError)
	closed := closedURL(t)
	otherCA, err := kubetest.NewAuthority("other")
	if err != nil {
		t.Fatal(err)
	}
	exec := clientcmdapi.NewAuthInfo()
	exec.Exec = &clientcmdapi.ExecConfig{Command: "/nonexistent/cloud-login", APIVersion: "client.authentication.k8s.io/v1"}
	badFile := clientcmdapi.NewAuthInfo()
	badFile.ClientCertificate, badFile.ClientKey = "/nonexistent/cert.pem", "/nonexistent/key.pem"

	tests := []struct {
		name       string
		cfg        func() *clientcmdapi.Config
		wantSwitch bool
		reason     SwitchReason
	}{
		{"401 is alive", func() *clientcmdapi.Config {
			return userWithCurrent(unauthorized.URL, serverCAData(unauthorized), nil)
		}, false, ReasonAlive},
		{"403 is alive", func() *clientcmdapi.Config {
			return userWithCurrent(forbidden.URL, serverCAData(forbidden), nil)
		}, false, ReasonAlive},
		{"500 is alive", func() *clientcmdapi.Config {
			return userWithCurrent(broken.URL, serverCAData(broken), nil)
		}, false, ReasonAlive},
		{"closed port", func() *clientcmdapi.Config {
			return userWithCurrent(closed, nil, nil)
		}, true, ReasonUnreachable},
		{"TLS failure", func() *clientcmdapi.Config {
			// The server's certificate is not signed by the CA given.
			return userWithCurrent(unauthorized.URL, otherCA.CertPEM, nil)
		}, true, ReasonUnreachable},
		{"empty", func() *clientcmdapi.Config {
			cfg := userWithCurrent(unauthorized.URL, serverCAData(unauthorized), nil)
			cfg.CurrentContext = ""
			return cfg
		}, true, ReasonEmpty},
		{"default", func() *clientcmdapi.Config {
			cfg := userWithCurrent(unauthorized.URL, serverCAData(unauthorized), nil)
			cfg.Contexts["default"] = cfg.Contexts["mine"]
			cfg.CurrentContext = "default"
			return cfg
		}, true, ReasonDefault},
		{"missing context", func() *clientcmdapi.Config {
			cfg := userWithCurrent(unauthorized.URL, serverCAData(unauthorized), nil)
			cfg.CurrentContext = "gone"
			return cfg
		}, true, ReasonMissingContext},
		{"missing cluster", func() *clientcmdapi.Config {
			cfg := userWithCurrent(unauthorized.URL, serverCAData(unauthorized), nil)
			delete(cfg.Clusters, "mine")
			return cfg
		}, true, ReasonMissingCluster},
		{"exec plugin is alive", func() *clientcmdapi.Config {
			return userWithCurrent(closed, nil, exec)
		}, false, ReasonAuthPlugin},
		{"unreadable client certificate is unknown", func() *clientcmdapi.Config {
			return userWithCurrent(closed, nil, badFile)
		}, false, ReasonUnknown},
		{"already ours", func() *clientcmdapi.Config {
			cfg := userWithCurrent(closed, nil, nil)
			cfg.CurrentContext = testName
			return cfg
		}, false, ReasonAlreadySelected},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := DecideCurrentContext(context.Background(), tt.cfg(), testName, 0)
			if err != nil {
				t.Fatal(err)
			}
			if d.Switch != tt.wantSwitch || d.Reason != tt.reason {
				t.Fatalf("decision %+v, want switch=%v reason=%s", d, tt.wantSwitch, tt.reason)
			}
		})
	}
	t.Run("cancelled by the caller", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		d, err := DecideCurrentContext(ctx, userWithCurrent(closed, nil, nil), testName, 0)
		if err == nil || d.Switch {
			t.Fatalf("want ctx error and no switch, got %+v %v", d, err)
		}
	})
}

func TestSwitchCurrentContext(t *testing.T) {
	t.Run("dead context is switched in the file holding current-context", func(t *testing.T) {
		e := newEnv(t)
		writeFile(t, e.userConfig(), mustWrite(t, userWithCurrent(closedURL(t), nil, nil)))
		if _, err := Publish(context.Background(), e.pub); err != nil {
			t.Fatal(err)
		}
		d, changed, err := SwitchCurrentContext(context.Background(), e.pub, 0)
		if err != nil {
			t.Fatal(err)
		}
		if !d.Switch || d.Reason != ReasonUnreachable || !changed {
			t.Fatalf("%+v changed=%v", d, changed)
		}
		if cur := load(t, e.userConfig()).CurrentContext; cur != testName {
			t.Fatalf("current-context %q", cur)
		}
	})
	t.Run("a context answering 401 is kept and the file untouched", func(t *testing.T) {
		e := newEnv(t)
		srv := tlsServer(t, http.StatusUnauthorized)
		writeFile(t, e.userConfig(), mustWrite(t, userWithCurrent(srv.URL, serverCAData(srv), nil)))
		if _, err := Publish(context.Background(), e.pub); err != nil {
			t.Fatal(err)
		}
		id := statID(t, e.userConfig())
		d, changed, err := SwitchCurrentContext(context.Background(), e.pub, 0)
		if err != nil || d.Switch || changed {
			t.Fatalf("%+v changed=%v err=%v", d, changed, err)
		}
		if statID(t, e.userConfig()) != id {
			t.Fatal("file rewritten")
		}
	})
	t.Run("list: current-context from a later file, written to the first existing", func(t *testing.T) {
		e := newEnv(t)
		dir := t.TempDir()
		a, b, c := filepath.Join(dir, "a"), filepath.Join(dir, "b"), filepath.Join(dir, "c")
		noCurrent := load(t, writeTemp(t, userKubeconfig(t, 1)))
		noCurrent.CurrentContext = "" // b selects nothing; c's context is the effective one
		writeFile(t, b, mustWrite(t, noCurrent))
		writeFile(t, c, mustWrite(t, userWithCurrent(closedURL(t), nil, nil)))
		e.pub.Target = Target{KubeconfigEnv: a + ":" + b + ":" + c}
		d, changed, err := SwitchCurrentContext(context.Background(), e.pub, 0)
		if err != nil || !d.Switch || !changed || d.Current != "mine" {
			t.Fatalf("%+v changed=%v err=%v", d, changed, err)
		}
		if cur := load(t, b).CurrentContext; cur != testName {
			t.Fatalf("b current-context %q, want %s (kubectl writes the first existing file)", cur, testName)
		}
		if _, err := os.Stat(a); !os.IsNotExist(err) {
			t.Fatalf("a created: %v", err)
		}
	})
}
