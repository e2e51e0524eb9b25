package engine

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/rdd-project/rdd/internal/dockertest"
)

const ctxName = "rancher-desktop-2"

func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func writeFile(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func currentContextOf(t *testing.T, cfgDir string) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(readFile(t, filepath.Join(cfgDir, "config.json"))), &m); err != nil {
		t.Fatal(err)
	}
	s, _ := m["currentContext"].(string)
	return s
}

// closedTCPPort returns a 127.0.0.1 port nothing listens on.
func closedTCPPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestDockerConfigDir(t *testing.T) {
	if got := DockerConfigDir(envOf(nil), "/home/u"); got != "/home/u/.docker" {
		t.Errorf("got %q", got)
	}
	if got := DockerConfigDir(envOf(map[string]string{"DOCKER_CONFIG": "/etc/dc"}), "/home/u"); got != "/etc/dc" {
		t.Errorf("got %q", got)
	}
}

func TestEnsureContextMetaJSON(t *testing.T) {
	cfg := t.TempDir()
	host := "unix:///home/u/.rd2/docker.sock"
	if err := EnsureContext(cfg, ctxName, host); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(ctxName))
	path := filepath.Join(cfg, "contexts", "meta", hex.EncodeToString(sum[:]), "meta.json")
	want := `{"Name":"rancher-desktop-2","Metadata":{"Description":"Rancher Desktop rancher-desktop-2"},"Endpoints":{"docker":{"Host":"unix:///home/u/.rd2/docker.sock","SkipTLSVerify":false}}}`
	if got := readFile(t, path); got != want {
		t.Fatalf("meta.json\n got %s\nwant %s", got, want)
	}
	// Unchanged content is not rewritten.
	old := time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := os.Chtimes(path, old, old); err != nil {
		t.Fatal(err)
	}
	if err := EnsureContext(cfg, ctxName, host); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(path); !st.ModTime().Equal(old) {
		t.Fatal("identical meta.json was rewritten")
	}
	// A new endpoint replaces it.
	if err := EnsureContext(cfg, ctxName, "unix:///other.sock"); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, path); !bytes.Contains([]byte(got), []byte(`"Host":"unix:///other.sock"`)) {
		t.Fatalf("not replaced: %s", got)
	}
	if ents, _ := os.ReadDir(filepath.Dir(path)); len(ents) != 1 {
		t.Fatalf("temp files left: %v", ents)
	}
}

// TestSwitchCurrentContext runs the §7.4 decision table against a real
// dockerd (healthy endpoints) and sockets nothing listens on (unhealthy).
func TestSwitchCurrentContext(t *testing.T) {
	d := dockertest.Start(t)
	healthy := d.Host
	unreachable := "unix://" + filepath.Join(t.TempDir(), "nothing.sock")
	tcpClosed := "tcp://" + closedTCPPort(t)

	type setup func(t *testing.T, cfg string)
	withContext := func(name, host string) setup {
		return func(t *testing.T, cfg string) {
			if err := EnsureContext(cfg, name, host); err != nil {
				t.Fatal(err)
			}
		}
	}
	noSetup := func(*testing.T, string) {}
	cases := []struct {
		name        string
		config      string // "" means no config.json
		setup       setup
		env         map[string]string
		defaultHost string
		want        bool
	}{
		{"unreachable named context", `{"currentContext":"test-unreachable"}`, withContext("test-unreachable", unreachable), nil, healthy, true},
		{"healthy named context", `{"currentContext":"X"}`, withContext("X", healthy), nil, unreachable, false},
		{"missing named context", `{"currentContext":"ghost"}`, noSetup, nil, healthy, true},
		{"tcp closed port", `{"currentContext":"tcp"}`, withContext("tcp", tcpClosed), nil, healthy, true},
		{"ssh is undecidable", `{"currentContext":"remote"}`, withContext("remote", "ssh://u@example.invalid"), nil, unreachable, false},
		{"malformed meta is undecidable", `{"currentContext":"bad"}`, func(t *testing.T, cfg string) {
			writeFile(t, filepath.Join(ContextMetaDir(cfg, "bad"), "meta.json"), "{", 0o644)
		}, nil, unreachable, false},
		{"unreadable meta is undecidable", `{"currentContext":"dir"}`, func(t *testing.T, cfg string) {
			if err := os.MkdirAll(filepath.Join(ContextMetaDir(cfg, "dir"), "meta.json"), 0o755); err != nil {
				t.Fatal(err)
			}
		}, nil, unreachable, false},
		{"unreadable TLS is undecidable", `{"currentContext":"tls"}`, func(t *testing.T, cfg string) {
			withContext("tls", tcpClosed)(t, cfg)
			writeFile(t, filepath.Join(contextTLSDir(cfg, "tls"), "docker", "ca.pem"), "not a certificate", 0o600)
		}, nil, unreachable, false},
		{"empty current, default unhealthy", `{"auths":{}}`, noSetup, nil, unreachable, true},
		{"no config.json, default unhealthy", "", noSetup, nil, unreachable, true},
		{"default, default healthy", `{"currentContext":"default"}`, noSetup, nil, healthy, false},
		{"DOCKER_HOST set", `{"currentContext":"test-unreachable"}`, withContext("test-unreachable", unreachable), map[string]string{"DOCKER_HOST": unreachable}, unreachable, false},
		{"DOCKER_CONTEXT set", `{"currentContext":"ghost"}`, noSetup, map[string]string{"DOCKER_CONTEXT": "ghost"}, unreachable, false},
		{"already ours", `{"currentContext":"rancher-desktop-2"}`, noSetup, nil, unreachable, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := t.TempDir()
			cfgFile := filepath.Join(cfg, "config.json")
			if tc.config != "" {
				writeFile(t, cfgFile, tc.config, 0o600)
			}
			tc.setup(t, cfg)
			if err := EnsureContext(cfg, ctxName, healthy); err != nil {
				t.Fatal(err)
			}
			switched, err := switchCurrentContext(context.Background(), cfg, ctxName, envOf(tc.env), tc.defaultHost)
			if err != nil {
				t.Fatal(err)
			}
			if switched != tc.want {
				t.Fatalf("switched = %v, want %v", switched, tc.want)
			}
			if !tc.want {
				if tc.config == "" {
					if _, err := os.Stat(cfgFile); !errors.Is(err, os.ErrNotExist) {
						t.Fatal("config.json created without a switch")
					}
				} else if got := readFile(t, cfgFile); got != tc.config {
					t.Fatalf("config.json rewritten without a switch: %s", got)
				}
				return
			}
			if got := currentContextOf(t, cfg); got != ctxName {
				t.Fatalf("currentContext = %q", got)
			}
			if st, _ := os.Stat(cfgFile); st.Mode().Perm() != 0o600 {
				t.Fatalf("mode %v", st.Mode().Perm())
			}
		})
	}
	t.Run("exported uses the default socket", func(t *testing.T) {
		cfg := t.TempDir()
		writeFile(t, filepath.Join(cfg, "config.json"), `{"currentContext":"X"}`, 0o600)
		if err := EnsureContext(cfg, "X", healthy); err != nil {
			t.Fatal(err)
		}
		switched, err := SwitchCurrentContextIfUnhealthy(context.Background(), cfg, ctxName, envOf(nil))
		if err != nil || switched {
			t.Fatalf("switched %v, err %v", switched, err)
		}
	})
}

func TestSwitchPreservesUnknownKeysModeOwnerAndSymlink(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "cfg")
	real := filepath.Join(dir, "real-config.json")
	in := `{
	"auths": {"registry.example": {"auth": "dXNlcjpwYXNz"}, "empty.example": {}},
	"credsStore": "pass",
	"proxies": {"default": {"httpProxy": "http://127.0.0.1:3128"}},
	"x-unknown": [1, {"nested": true}],
	"currentContext": "ghost"
}`
	writeFile(t, real, in, 0o640)
	if err := os.MkdirAll(cfg, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(real, filepath.Join(cfg, "config.json")); err != nil {
		t.Fatal(err)
	}
	root := os.Getuid() == 0
	if root {
		if err := os.Chown(real, 1234, 5678); err != nil {
			t.Fatal(err)
		}
	}
	switched, err := switchCurrentContext(context.Background(), cfg, ctxName, envOf(nil), "unix:///nonexistent.sock")
	if err != nil || !switched {
		t.Fatalf("switched %v, err %v", switched, err)
	}
	if fi, err := os.Lstat(filepath.Join(cfg, "config.json")); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("symlink replaced: %v %v", fi.Mode(), err)
	}
	var before, after map[string]json.RawMessage
	_ = json.Unmarshal([]byte(in), &before)
	if err := json.Unmarshal([]byte(readFile(t, real)), &after); err != nil {
		t.Fatal(err)
	}
	for k, v := range before {
		if k == "currentContext" {
			continue
		}
		var a, b any
		_ = json.Unmarshal(v, &a)
		_ = json.Unmarshal(after[k], &b)
		if ja, jb := mustJSON(a), mustJSON(b); ja != jb {
			t.Errorf("key %s: %s became %s", k, ja, jb)
		}
	}
	if string(after["currentContext"]) != `"`+ctxName+`"` {
		t.Errorf("currentContext %s", after["currentContext"])
	}
	st, _ := os.Stat(real)
	if st.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, want 0640", st.Mode().Perm())
	}
	if sys := st.Sys().(*syscall.Stat_t); root && (sys.Uid != 1234 || sys.Gid != 5678) {
		t.Errorf("owner %d:%d, want 1234:5678", sys.Uid, sys.Gid)
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestMalformedConfigNeverWritten: switching and removal both refuse to
// write a config.json the Docker CLI would reject (F6).
func TestMalformedConfigNeverWritten(t *testing.T) {
	for _, tc := range []struct{ name, config string }{
		{"not json", `{"currentContext": "ghost"`},
		{"not an object", `["currentContext"]`},
		{"currentContext not a string", `{"currentContext": 7}`},
		{"auths not an object", `{"currentContext": "rancher-desktop-2", "auths": []}`},
		{"auth entry not an object", `{"currentContext": "rancher-desktop-2", "auths": {"r": "x"}}`},
		{"auth not base64", `{"currentContext": "rancher-desktop-2", "auths": {"r": {"auth": "!!!"}}}`},
		{"auth without colon", `{"currentContext": "rancher-desktop-2", "auths": {"r": {"auth": "dXNlcnBhc3M="}}}`},
		{"auth with empty user", `{"currentContext": "rancher-desktop-2", "auths": {"r": {"auth": "OnBhc3M="}}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := t.TempDir()
			path := filepath.Join(cfg, "config.json")
			writeFile(t, path, tc.config, 0o600)
			if err := EnsureContext(cfg, ctxName, "unix:///x.sock"); err != nil {
				t.Fatal(err)
			}
			switched, err := switchCurrentContext(context.Background(), cfg, ctxName, envOf(nil), "unix:///nonexistent.sock")
			if err == nil || switched {
				t.Fatalf("switch: switched %v, err %v", switched, err)
			}
			if !errors.Is(err, ErrMalformedConfig) {
				t.Fatalf("err %v does not wrap ErrMalformedConfig", err)
			}
			err = RemoveContext(context.Background(), cfg, ctxName)
			if !errors.Is(err, ErrMalformedConfig) {
				t.Fatalf("remove: err %v", err)
			}
			if got := readFile(t, path); got != tc.config {
				t.Fatalf("malformed config.json was written: %s", got)
			}
			if _, err := os.Stat(ContextMetaDir(cfg, ctxName)); !errors.Is(err, os.ErrNotExist) {
				t.Fatal("context dir not removed")
			}
		})
	}
}

func TestRemoveContext(t *testing.T) {
	t.Run("clears only when equal", func(t *testing.T) {
		for _, cur := range []string{ctxName, "other"} {
			cfg := t.TempDir()
			path := filepath.Join(cfg, "config.json")
			in := `{"currentContext": "` + cur + `", "x-keep": 1}`
			writeFile(t, path, in, 0o600)
			if err := EnsureContext(cfg, ctxName, "unix:///x.sock"); err != nil {
				t.Fatal(err)
			}
			if err := RemoveContext(context.Background(), cfg, ctxName); err != nil {
				t.Fatal(err)
			}
			got := readFile(t, path)
			if cur != ctxName {
				if got != in {
					t.Fatalf("config.json of another context rewritten: %s", got)
				}
			} else {
				var m map[string]json.RawMessage
				if err := json.Unmarshal([]byte(got), &m); err != nil {
					t.Fatal(err)
				}
				if _, ok := m["currentContext"]; ok || string(m["x-keep"]) != "1" {
					t.Fatalf("after clear: %s", got)
				}
			}
			if _, err := os.Stat(ContextMetaDir(cfg, ctxName)); !errors.Is(err, os.ErrNotExist) {
				t.Fatal("context dir not removed")
			}
		}
	})
	t.Run("nothing there creates nothing", func(t *testing.T) {
		cfg := t.TempDir()
		if err := RemoveContext(context.Background(), cfg, ctxName); err != nil {
			t.Fatal(err)
		}
		if ents, _ := os.ReadDir(cfg); len(ents) != 0 {
			t.Fatalf("created %v", ents)
		}
	})
}

func TestSwitchCancelledWritesNothing(t *testing.T) {
	cfg := t.TempDir()
	path := filepath.Join(cfg, "config.json")
	in := `{"currentContext":"ghost"}`
	writeFile(t, path, in, 0o600)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	switched, err := switchCurrentContext(ctx, cfg, ctxName, envOf(nil), "unix:///nonexistent.sock")
	if !errors.Is(err, context.Canceled) || switched {
		t.Fatalf("switched %v, err %v", switched, err)
	}
	if got := readFile(t, path); got != in {
		t.Fatalf("written after cancel: %s", got)
	}
}

func TestContextManager(t *testing.T) {
	cfg := t.TempDir()
	path := filepath.Join(cfg, "config.json")
	writeFile(t, path, `{"currentContext":"ghost"}`, 0o600)
	results := make(chan bool, 4)
	m := NewContextManager(cfg, ctxName, "unix:///x.sock", envOf(nil), zaptest.NewLogger(t), func(switched bool, err error) {
		if err != nil {
			t.Errorf("probe: %v", err)
		}
		results <- switched
	})
	m.defaultHost = "unix:///nonexistent.sock"
	if err := m.Activate(context.Background()); err != nil {
		t.Fatal(err)
	}
	m.Wait()
	if !<-results {
		t.Fatal("not switched")
	}
	if got := currentContextOf(t, cfg); got != ctxName {
		t.Fatalf("currentContext %q", got)
	}
	// A second activation probes again; ours is current, so nothing changes.
	if err := m.Activate(context.Background()); err != nil {
		t.Fatal(err)
	}
	m.Wait()
	if <-results {
		t.Fatal("switched twice")
	}
	if err := m.Deactivate(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := currentContextOf(t, cfg); got != "" {
		t.Fatalf("currentContext %q after Deactivate", got)
	}
	if _, err := os.Stat(ContextMetaDir(cfg, ctxName)); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("context dir left")
	}
}
