package lima

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// guest runs the rendered provision script (as Lima hands it to the guest)
// against a fake root: /etc and /usr/local live under a temporary
// directory, systemctl records its calls, and sleep returns at once.
type guest struct {
	t     *testing.T
	root  string
	log   string
	p     Params
	units []string // units systemctl cat finds in the image
}

func newGuest(t *testing.T, p Params, units ...string) *guest {
	t.Helper()
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh")
	}
	g := &guest{t: t, root: t.TempDir(), p: p, units: units}
	g.log = filepath.Join(g.root, "systemctl.log")
	bin := filepath.Join(g.root, "stub")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	stub := func(name, body string) {
		if err := os.WriteFile(filepath.Join(bin, name), []byte("#!/bin/sh\n"+body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	stub("systemctl", `echo "$*" >>"$STUB_LOG"
if [ "$1" = cat ]; then
  for u in $STUB_UNITS; do [ "$u" = "$2" ] && exit 0; done
  exit 1
fi
exit 0
`)
	stub("sleep", "exit 0\n")
	return g
}

// k3s writes a fake k3s binary of version v to path.
func fakeK3s(t *testing.T, path, v string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	body := "#!/bin/sh\n[ \"$1\" = --version ] && echo 'k3s version " + v + " (abcdef)' && echo 'go version go1.23'\n"
	if err := os.WriteFile(path, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
}

// run runs the script and returns its output and systemctl's calls.
func (g *guest) run() (out string, calls []string, err error) {
	g.t.Helper()
	g.t.Setenv("LIMA_HOME", g.t.TempDir())
	b, rerr := Render(g.p)
	if rerr != nil {
		g.t.Fatal(rerr)
	}
	y := loadLima(g.t, b)
	script := y.Provision[0].Script
	script = strings.ReplaceAll(script, "/etc/", g.root+"/etc/")
	script = strings.ReplaceAll(script, "/usr/local/", g.root+"/usr/local/")
	for _, d := range []string{"etc/systemd/system", "usr/local/bin"} {
		if err := os.MkdirAll(filepath.Join(g.root, d), 0o755); err != nil {
			g.t.Fatal(err)
		}
	}
	cmd := exec.Command("sh", "-c", script)
	cmd.Env = []string{
		"PATH=" + filepath.Join(g.root, "stub") + ":" + os.Getenv("PATH"),
		"STUB_LOG=" + g.log,
		"STUB_UNITS=" + strings.Join(g.units, " "),
	}
	for k, v := range y.Param {
		cmd.Env = append(cmd.Env, "PARAM_"+k+"="+v)
	}
	o, err := cmd.CombinedOutput()
	logged, _ := os.ReadFile(g.log)
	return string(o), strings.Split(strings.TrimSpace(string(logged)), "\n"), err
}

func (g *guest) file(rel string) string {
	g.t.Helper()
	b, err := os.ReadFile(filepath.Join(g.root, rel))
	if err != nil {
		g.t.Fatal(err)
	}
	return string(b)
}

func has(calls []string, call string) bool {
	for _, c := range calls {
		if c == call {
			return true
		}
	}
	return false
}

func TestProvisionEngine(t *testing.T) {
	installed := []string{"containerd.service", "docker.socket", "docker.service"}
	cases := []struct {
		engine   string
		wants    []string
		disabled []string
		missing  string // reported as not in the image
	}{
		{"moby", []string{"containerd.service", "docker.socket", "docker.service"}, []string{"buildkit.service"}, ""},
		{"containerd", []string{"containerd.service"}, []string{"docker.socket", "docker.service"}, "buildkit.service"},
	}
	for _, c := range cases {
		t.Run(c.engine, func(t *testing.T) {
			p := base()
			p.Engine = c.engine
			g := newGuest(t, p, installed...)
			out, calls, err := g.run()
			if err != nil {
				t.Fatalf("provision: %v\n%s", err, out)
			}
			for _, u := range c.wants {
				if !has(calls, "add-wants rancher-desktop.target "+u) {
					t.Errorf("%s is not wanted by rancher-desktop.target; systemctl calls: %q", u, calls)
				}
			}
			for _, u := range c.disabled {
				if !has(calls, "disable --now "+u) {
					t.Errorf("%s is not disabled; systemctl calls: %q", u, calls)
				}
			}
			if c.missing != "" && !strings.Contains(out, "rdd: "+c.missing+" is not installed in the guest image") {
				t.Errorf("missing %s not reported; output:\n%s", c.missing, out)
			}
			if has(calls, "add-wants rancher-desktop.target k3s.service") {
				t.Error("k3s is wanted with Kubernetes disabled")
			}
			if last := calls[len(calls)-1]; last != "start --no-block rancher-desktop.target" {
				t.Errorf("the last systemctl call is %q, want the trap's start of rancher-desktop.target", last)
			}
			params := g.file("etc/sysconfig/rancher-desktop")
			if !strings.Contains(params, `CONTAINER_ENGINE="`+c.engine+`"`) {
				t.Errorf("params file:\n%s", params)
			}
		})
	}
}

func kubernetesParams(t *testing.T) Params {
	p := base()
	p.ServiceDir = filepath.Join(t.TempDir(), "D")
	p.KubernetesEnabled, p.KubernetesVersion, p.KubernetesPort = true, "1.32.0", 9443
	if err := p.PrepareShareDir(); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestProvisionK3sFromShare: an offline guest installs the k3s binary the
// host put into the shared directory, and runs it on the App's port.
func TestProvisionK3sFromShare(t *testing.T) {
	p := kubernetesParams(t)
	fakeK3s(t, p.K3sBinaryPath(), "v1.32.0+k3s1")
	g := newGuest(t, p, "containerd.service", "docker.socket", "docker.service")
	out, calls, err := g.run()
	if err != nil {
		t.Fatalf("provision: %v\n%s", err, out)
	}
	if got, want := g.file("usr/local/bin/k3s"), g.fileAbs(p.K3sBinaryPath()); got != want {
		t.Error("/usr/local/bin/k3s is not the shared directory's k3s")
	}
	for _, u := range []string{"k3s.service", "rdd-kubeconfig.service"} {
		if !has(calls, "add-wants rancher-desktop.target "+u) {
			t.Errorf("%s is not wanted; systemctl calls: %q", u, calls)
		}
	}
	unit := g.file("etc/systemd/system/k3s.service")
	if !strings.Contains(unit, "--https-listen-port ${KUBERNETES_PORT}") {
		t.Errorf("k3s.service does not listen on KUBERNETES_PORT:\n%s", unit)
	}
	if rt := g.file("etc/sysconfig/rancher-desktop-k3s"); !strings.Contains(rt, `"--docker"`) {
		t.Errorf("moby: k3s runtime options = %q, want --docker", rt)
	}
	if params := g.file("etc/sysconfig/rancher-desktop"); !strings.Contains(params, `KUBERNETES_PORT="9443"`) {
		t.Errorf("params file:\n%s", params)
	}
}

// TestProvisionK3sAlreadyInstalled: the right version in the image needs
// nothing from the host.
func TestProvisionK3sAlreadyInstalled(t *testing.T) {
	p := kubernetesParams(t)
	g := newGuest(t, p)
	fakeK3s(t, filepath.Join(g.root, "usr/local/bin/k3s"), "v1.32.0+k3s1")
	out, calls, err := g.run()
	if err != nil {
		t.Fatalf("provision: %v\n%s", err, out)
	}
	if !has(calls, "add-wants rancher-desktop.target k3s.service") {
		t.Errorf("k3s is not wanted; systemctl calls: %q", calls)
	}
}

// TestProvisionK3sMissing: without the binary the script fails, names the
// path the host should fill, and still starts the engine (the EXIT trap).
func TestProvisionK3sMissing(t *testing.T) {
	for _, tc := range []struct{ name, shared string }{{"absent", ""}, {"other version", "v1.31.4+k3s1"}} {
		t.Run(tc.name, func(t *testing.T) {
			p := kubernetesParams(t)
			if tc.shared != "" {
				fakeK3s(t, p.K3sBinaryPath(), tc.shared)
			}
			g := newGuest(t, p, "containerd.service", "docker.socket", "docker.service")
			out, calls, err := g.run()
			if err == nil {
				t.Fatalf("provision succeeded without k3s v1.32.0+k3s1:\n%s", out)
			}
			if !strings.Contains(out, "rdd: k3s v1.32.0+k3s1 is not in the guest image and "+p.K3sBinaryPath()+" is missing or another version") {
				t.Errorf("output does not name the missing binary:\n%s", out)
			}
			if !has(calls, "add-wants rancher-desktop.target docker.service") {
				t.Errorf("the engine is not wanted; systemctl calls: %q", calls)
			}
			if last := calls[len(calls)-1]; last != "start --no-block rancher-desktop.target" {
				t.Errorf("the last systemctl call is %q, want the trap's start of rancher-desktop.target", last)
			}
			if has(calls, "add-wants rancher-desktop.target k3s.service") {
				t.Error("k3s is wanted without a binary")
			}
		})
	}
}

// TestCopyKubeconfig runs the guest's copy unit script: k3s's kubeconfig
// lands at HOST_INSTANCE_CONFIG in the shared directory.
func TestCopyKubeconfig(t *testing.T) {
	p := kubernetesParams(t)
	fakeK3s(t, p.K3sBinaryPath(), "v1.32.0+k3s1")
	g := newGuest(t, p)
	if out, _, err := g.run(); err != nil {
		t.Fatalf("provision: %v\n%s", err, out)
	}
	kubeconfig := "apiVersion: v1\nkind: Config\n"
	if err := os.WriteFile(filepath.Join(g.root, "etc/rancher/k3s/k3s.yaml"), []byte(kubeconfig), 0o600); err != nil {
		t.Fatal(err)
	}
	// Its paths point into the fake root already: run() rewrote the
	// provision script that wrote it.
	script := g.file("usr/local/libexec/rdd-copy-kubeconfig")
	cmd := exec.Command("sh", "-c", script)
	cmd.Env = []string{
		"PATH=" + filepath.Join(g.root, "stub") + ":" + os.Getenv("PATH"),
		"HOST_INSTANCE_CONFIG=" + p.KubeconfigPath(),
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("copy: %v\n%s", err, out)
	}
	if got := g.fileAbs(p.KubeconfigPath()); got != kubeconfig {
		t.Errorf("%s = %q, want k3s's kubeconfig", p.KubeconfigPath(), got)
	}
}

func (g *guest) fileAbs(path string) string {
	g.t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		g.t.Fatal(err)
	}
	return string(b)
}
