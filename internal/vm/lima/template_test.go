package lima

import (
	"bytes"
	"flag"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/lima-vm/lima/pkg/limayaml"
	"github.com/sirupsen/logrus"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

// base is a Params with fixed paths, so that goldens do not depend on the
// machine that runs the test.
func base() Params {
	return Params{
		Engine:     "moby",
		Home:       "/home/u",
		ShortDir:   "/home/u/.rd2",
		ServiceDir: "/home/u/.local/share/rancher-desktop-2",
		LogDir:     "/home/u/.local/state/rancher-desktop-2",
		CPUs:       DefaultCPUs,
		Memory:     DefaultMemory,
		Arch:       "x86_64",
	}
}

type renderCase struct {
	name   string
	modify func(*Params)
}

// renderCases has a golden file each: testdata/<name>.yaml.
var renderCases = []renderCase{
	{"default", func(*Params) {}},
	{"containerd", func(p *Params) { p.Engine = "containerd" }},
	{"kubernetes", func(p *Params) {
		p.KubernetesEnabled, p.KubernetesVersion, p.KubernetesPort = true, "1.32.0", 6443
	}},
	{"kubernetes-port", func(p *Params) {
		p.KubernetesEnabled, p.KubernetesVersion, p.KubernetesPort = true, "1.31.4", 9443
	}},
	// A port left over from an enabled Kubernetes is not rendered.
	{"kubernetes-disabled-port", func(p *Params) { p.KubernetesVersion, p.KubernetesPort = "1.32.0", 6443 }},
	{"keep-logs", func(p *Params) { p.KeepLogs = true }},
	{"keep-logs-trace-packets", func(p *Params) { p.KeepLogs, p.TracePackets = true, true }},
	{"trace-packets", func(p *Params) { p.TracePackets = true }},
	{"cpus-memory", func(p *Params) { p.CPUs, p.Memory = 4, 4<<30 }},
	{"local-image", func(p *Params) { p.Image = Image{Location: "/var/cache/rdd/vm/rdd-guest.qcow2"} }},
	{"local-image-kernel", func(p *Params) {
		p.Image = Image{
			Location: "/var/cache/rdd/vm/rdd-guest.qcow2",
			Kernel:   "/var/cache/rdd/vm/vmlinuz",
			Initrd:   "/var/cache/rdd/vm/initrd.img",
			Cmdline:  "root=/dev/vda rw console=ttyS0 net.ifnames=0 apparmor=0",
		}
	}},
	{"local-image-kernel-no-initrd", func(p *Params) {
		p.Image = Image{
			Location: "/var/cache/rdd/vm/rdd-guest.qcow2",
			Kernel:   "/var/cache/rdd/vm/vmlinuz",
			Cmdline:  "root=/dev/vda rw console=ttyS0",
		}
	}},
	{"local-image-aarch64", func(p *Params) {
		p.Arch = "aarch64"
		p.Image = Image{Location: "/var/cache/rdd/vm/rdd-guest.qcow2"}
	}},
	{"dns", func(p *Params) { p.DNS = []string{"10.0.2.3"} }},
	{"accel-restrict", func(p *Params) { p.Accel, p.RestrictNetwork = "tcg", true }},
	{"paths-with-spaces", func(p *Params) {
		p.Home = "/Users/Jane Doe"
		p.ServiceDir = "/Users/Jane Doe/Library/Application Support/rancher-desktop-2"
		p.LogDir = "/Users/Jane Doe/Library/Logs/rancher-desktop-2"
		p.KubernetesEnabled, p.KubernetesVersion, p.KubernetesPort = true, "1.32.0", 6443
	}},
}

func (c renderCase) params() Params {
	p := base()
	c.modify(&p)
	return p
}

func TestRenderGolden(t *testing.T) {
	for _, c := range renderCases {
		t.Run(c.name, func(t *testing.T) {
			got, err := Render(c.params())
			if err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", c.name+".yaml")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to write it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("Render differs from %s (go test -update rewrites it):\n%s", golden, lineDiff(string(want), string(got)))
			}
		})
	}
}

// loadLima is what Lima v1.2.1 makes of the rendered template when it
// creates an instance from it: Load (which fills the defaults) and Validate.
func loadLima(t *testing.T, b []byte) *limayaml.LimaYAML {
	t.Helper()
	instDir := filepath.Join(t.TempDir(), "rancher-desktop-2")
	// Lima only logs what it dislikes but accepts: unknown fields (its
	// "Non-strict YAML" warning) and {{ }} it cannot expand. Both are bugs
	// of the template here.
	var logged bytes.Buffer
	logger := logrus.StandardLogger()
	out, level := logger.Out, logger.GetLevel()
	logger.SetOutput(&logged)
	logger.SetLevel(logrus.WarnLevel)
	y, err := limayaml.Load(b, filepath.Join(instDir, "lima.yaml"))
	logger.SetOutput(out)
	logger.SetLevel(level)
	if err != nil {
		t.Fatalf("limayaml.Load: %v", err)
	}
	if logged.Len() > 0 {
		t.Errorf("Lima warned while loading the template:\n%s", logged.String())
	}
	if err := limayaml.Validate(y, false); err != nil {
		t.Fatalf("limayaml.Validate: %v", err)
	}
	return y
}

// TestRenderIsValidLima checks every golden case against Lima's own parser
// and validator, and that Lima reads what rdd meant.
func TestRenderIsValidLima(t *testing.T) {
	t.Setenv("LIMA_HOME", t.TempDir()) // no default.yaml or override.yaml of the user's
	for _, c := range renderCases {
		t.Run(c.name, func(t *testing.T) {
			p := c.params()
			b, err := Render(p)
			if err != nil {
				t.Fatal(err)
			}
			y := loadLima(t, b)

			if *y.VMType != "qemu" {
				t.Errorf("vmType = %q, want qemu", *y.VMType)
			}
			if *y.CPUs != p.CPUs {
				t.Errorf("cpus = %d, want %d", *y.CPUs, p.CPUs)
			}
			if *y.SSH.LoadDotSSHPubKeys || *y.Containerd.System || *y.Containerd.User || *y.UpgradePackages {
				t.Errorf("loadDotSSHPubKeys=%v containerd.system=%v containerd.user=%v upgradePackages=%v, want all false",
					*y.SSH.LoadDotSSHPubKeys, *y.Containerd.System, *y.Containerd.User, *y.UpgradePackages)
			}
			checkForwards(t, p, y)
			checkMounts(t, p, y)
			checkParams(t, p, y)
			checkImages(t, p, y)
			if len(p.DNS) > 0 {
				if *y.HostResolver.Enabled || len(y.DNS) != len(p.DNS) {
					t.Errorf("hostResolver.enabled=%v dns=%v, want the resolver off and dns %v", *y.HostResolver.Enabled, y.DNS, p.DNS)
				}
			} else if !*y.HostResolver.Enabled {
				t.Error("hostResolver is off without explicit DNS servers")
			}
			if len(y.Provision) != 1 {
				t.Fatalf("%d provision scripts, want 1", len(y.Provision))
			}
			checkShellSyntax(t, y.Provision[0].Script)
		})
	}
}

// checkForwards: F29, nothing is bound beyond 127.0.0.1, and the docker
// socket reaches H/docker.sock.
func checkForwards(t *testing.T, p Params, y *limayaml.LimaYAML) {
	t.Helper()
	socket := false
	for i, r := range y.PortForwards {
		if r.Ignore {
			continue
		}
		if r.GuestSocket != "" {
			if r.GuestSocket == "/var/run/docker.sock" {
				socket = true
				if r.HostSocket != p.DockerSocket() {
					t.Errorf("docker socket forwarded to %q, want %q", r.HostSocket, p.DockerSocket())
				}
			}
			continue
		}
		if !r.HostIP.Equal(net.IPv4(127, 0, 0, 1)) {
			t.Errorf("portForwards[%d] binds host IP %v, want 127.0.0.1: %+v", i, r.HostIP, r)
		}
	}
	if !socket {
		t.Error("no forward of /var/run/docker.sock")
	}
	if p.KubernetesEnabled {
		found := false
		for _, r := range y.PortForwards {
			if r.GuestPortRange == [2]int{p.KubernetesPort, p.KubernetesPort} && r.HostPortRange == r.GuestPortRange {
				found = true
			}
		}
		if !found {
			t.Errorf("no forward of the Kubernetes port %d", p.KubernetesPort)
		}
	}
}

// checkMounts: no mount unless Kubernetes needs the shared directory, and
// never ~ or D.
func checkMounts(t *testing.T, p Params, y *limayaml.LimaYAML) {
	t.Helper()
	if !p.KubernetesEnabled {
		if len(y.Mounts) != 0 {
			t.Errorf("mounts = %+v, want none", y.Mounts)
		}
		return
	}
	if len(y.Mounts) != 1 {
		t.Fatalf("mounts = %+v, want the shared directory only", y.Mounts)
	}
	m := y.Mounts[0]
	if m.Location != p.ShareDir() || *m.MountPoint != p.ShareDir() || !*m.Writable {
		t.Errorf("mount = %s at %s writable=%v, want %s at the same path, writable", m.Location, *m.MountPoint, *m.Writable, p.ShareDir())
	}
	if filepath.Dir(p.KubeconfigPath()) != *m.MountPoint || filepath.Dir(p.K3sBinaryPath()) != *m.MountPoint {
		t.Errorf("kubeconfig %s and k3s %s are not in the mount %s", p.KubeconfigPath(), p.K3sBinaryPath(), *m.MountPoint)
	}
}

// checkParams: behavior.md §6.6's table, as Lima reads it.
func checkParams(t *testing.T, p Params, y *limayaml.LimaYAML) {
	t.Helper()
	want := map[string]string{
		"CONTAINER_ENGINE":         p.Engine,
		"HOST_DOCKER_SOCKET":       filepath.Join(p.ShortDir, "docker.sock"),
		"HOST_HOME_GUEST":          p.Home,
		"HOST_INSTANCE_CONFIG":     filepath.Join(p.ServiceDir, "vm-share", "k3s.yaml"),
		"VM_SWITCH_LOG":            filepath.Join(p.LogDir, "vm-switch.log"),
		"NETWORK_SETUP_EXTRA_ARGS": "",
		"GUEST_LOG_DIR":            "",
		"KUBERNETES_ENABLED":       "false",
		"KUBERNETES_VERSION":       p.KubernetesVersion,
		"KUBERNETES_PORT":          "0",
	}
	if p.KeepLogs {
		want["NETWORK_SETUP_EXTRA_ARGS"] = "--vm-switch-logfile-append"
		if p.TracePackets {
			want["NETWORK_SETUP_EXTRA_ARGS"] = "--vm-switch-logfile-append --trace-packets"
		}
		want["GUEST_LOG_DIR"] = p.LogDir
	}
	if p.KubernetesEnabled {
		want["KUBERNETES_ENABLED"] = "true"
		want["KUBERNETES_PORT"] = strconv.Itoa(p.KubernetesPort)
	}
	for k, v := range want {
		if got, ok := y.Param[k]; !ok || got != v {
			t.Errorf("param %s = %q (present %v), want %q", k, got, ok, v)
		}
	}
	if len(y.Param) != len(want) {
		t.Errorf("params = %v, want exactly %v", y.Param, want)
	}
}

func checkImages(t *testing.T, p Params, y *limayaml.LimaYAML) {
	t.Helper()
	if p.Image.Location == "" {
		for _, img := range y.Images {
			if !strings.HasPrefix(img.Location, "https://") || img.Digest == "" {
				t.Errorf("default image %s is not pinned by a digest", img.Location)
			}
		}
		if len(y.Images) != 2 {
			t.Errorf("%d default images, want x86_64 and aarch64", len(y.Images))
		}
		if !slices.Contains(y.MountTypesUnsupported, "9p") {
			t.Error("the genericcloud image has no 9p, but the template does not say so")
		}
		return
	}
	if len(y.Images) != 1 {
		t.Fatalf("images = %+v, want the local image only", y.Images)
	}
	img := y.Images[0]
	if img.Location != p.Image.Location || img.Arch != p.Arch {
		t.Errorf("image = %s (%s), want %s (%s)", img.Location, img.Arch, p.Image.Location, p.Arch)
	}
	switch {
	case p.Image.Kernel == "" && img.Kernel != nil:
		t.Errorf("kernel = %+v, want none", img.Kernel)
	case p.Image.Kernel != "" && (img.Kernel == nil || img.Kernel.Location != p.Image.Kernel || img.Kernel.Cmdline != p.Image.Cmdline):
		t.Errorf("kernel = %+v, want %s with cmdline %q", img.Kernel, p.Image.Kernel, p.Image.Cmdline)
	}
	switch {
	case p.Image.Initrd == "" && img.Initrd != nil:
		t.Errorf("initrd = %+v, want none", img.Initrd)
	case p.Image.Initrd != "" && (img.Initrd == nil || img.Initrd.Location != p.Image.Initrd):
		t.Errorf("initrd = %+v, want %s", img.Initrd, p.Image.Initrd)
	}
}

func checkShellSyntax(t *testing.T, script string) {
	t.Helper()
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Log("no sh: the provision script's syntax is not checked")
		return
	}
	cmd := exec.Command(sh, "-n")
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("provision script: sh -n: %v\n%s", err, out)
	}
}

// TestParamOrder: the param block is behavior.md §6.6's, in its order.
func TestParamOrder(t *testing.T) {
	b, err := Render(base())
	if err != nil {
		t.Fatal(err)
	}
	_, block, ok := strings.Cut(string(b), "\nparam:\n")
	if !ok {
		t.Fatal("no param block")
	}
	var keys []string
	for _, line := range strings.Split(strings.TrimSpace(block), "\n") {
		k, _, _ := strings.Cut(strings.TrimSpace(line), ":")
		keys = append(keys, k)
	}
	want := []string{"CONTAINER_ENGINE", "HOST_DOCKER_SOCKET", "HOST_HOME_GUEST", "HOST_INSTANCE_CONFIG",
		"VM_SWITCH_LOG", "NETWORK_SETUP_EXTRA_ARGS", "GUEST_LOG_DIR", "KUBERNETES_ENABLED",
		"KUBERNETES_VERSION", "KUBERNETES_PORT"}
	if !slices.Equal(keys, want) {
		t.Errorf("param keys = %v, want %v", keys, want)
	}
}

func TestRenderRejects(t *testing.T) {
	cases := []struct {
		name   string
		modify func(*Params)
		want   string
	}{
		{"engine", func(p *Params) { p.Engine = "podman" }, `invalid container engine "podman": valid values: moby, containerd`},
		{"cpus", func(p *Params) { p.CPUs = 0 }, "invalid cpus 0: must be at least 1"},
		{"memory", func(p *Params) { p.Memory = 1 << 20 }, "must be at least 256MiB"},
		{"arch", func(p *Params) { p.Arch = "riscv64" }, `unsupported guest architecture "riscv64"`},
		{"relative dir", func(p *Params) { p.ShortDir = "rd2" }, `the short directory (H) must be an absolute path, got "rd2"`},
		{"kubernetes without version", func(p *Params) { p.KubernetesEnabled, p.KubernetesPort = true, 6443 }, "kubernetes is enabled without a version"},
		{"kubernetes v-version", func(p *Params) {
			p.KubernetesEnabled, p.KubernetesVersion, p.KubernetesPort = true, "v1.32.0", 6443
		}, `invalid kubernetes version "v1.32.0": must be bare`},
		{"kubernetes port", func(p *Params) { p.KubernetesEnabled, p.KubernetesVersion = true, "1.32.0" }, "invalid kubernetes port 0"},
		{"initrd without kernel", func(p *Params) {
			p.Image = Image{Location: "/img/disk.qcow2", Initrd: "/img/initrd.img"}
		}, "an initrd needs a kernel"},
		{"kernel without local image", func(p *Params) { p.Image = Image{Kernel: "/img/vmlinuz"} }, "a kernel or initrd needs a local image"},
		{"relative image", func(p *Params) { p.Image = Image{Location: "disk.qcow2"} }, `the VM image must be an absolute path, got "disk.qcow2"`},
		{"dns", func(p *Params) { p.DNS = []string{"dns.example"} }, `invalid DNS server "dns.example"`},
		{"accel", func(p *Params) { p.Accel = "whpx" }, `invalid accelerator "whpx"`},
		{"newline in a path", func(p *Params) { p.Home = "/home/u\nx" }, "param HOST_HOME_GUEST contains the unprintable character '\\n'"},
		{"multi-line cmdline", func(p *Params) {
			p.Image = Image{Location: "/img/disk.qcow2", Kernel: "/img/vmlinuz", Cmdline: "root=/dev/vda\ninit=/bin/sh"}
		}, "the kernel command line must be one line"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := base()
			c.modify(&p)
			_, err := Render(p)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Render error = %v, want one containing %q", err, c.want)
			}
			if RestartKey(p) != "" {
				t.Error("RestartKey of params that do not render is not empty")
			}
		})
	}
}

func TestRestartKey(t *testing.T) {
	k := RestartKey(base())
	if len(k) != 64 {
		t.Fatalf("RestartKey = %q, want a sha256 in hex", k)
	}
	if RestartKey(base()) != k {
		t.Error("RestartKey is not stable")
	}
	seen := map[string]string{k: "default"}
	for _, c := range renderCases[1:] {
		got := RestartKey(c.params())
		if prev, dup := seen[got]; dup {
			// Only a rendered difference needs a restart: trace-packets
			// alone renders nothing (it needs keep-logs).
			if c.name != "trace-packets" || prev != "default" {
				t.Errorf("%s has the restart key of %s", c.name, prev)
			}
			continue
		}
		seen[got] = c.name
	}
}

func TestFromEnv(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		t.Helper()
		f := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return f
	}
	plain := write("plain/disk.qcow2", "")
	direct := write("direct/disk.qcow2", "")
	write("direct/vmlinuz", "")
	write("direct/initrd.img", "")
	write("direct/cmdline", "root=/dev/vda rw console=ttyS0 net.ifnames=0 apparmor=0\n")
	noInitrd := write("noinitrd/disk.qcow2", "")
	write("noinitrd/vmlinuz", "")
	write("noinitrd/cmdline", "root=/dev/vda rw")
	noCmdline := write("nocmdline/disk.qcow2", "")
	write("nocmdline/vmlinuz", "")
	noKernel := write("nokernel/disk.qcow2", "")
	write("nokernel/initrd.img", "")

	cases := []struct {
		name    string
		env     map[string]string
		want    func(*Params)
		wantErr string
	}{
		{name: "nothing set", env: nil, want: func(*Params) {}},
		{name: "cpus", env: map[string]string{"RDD_VM_CPUS": "4"}, want: func(p *Params) { p.CPUs = 4 }},
		{name: "cpus not a number", env: map[string]string{"RDD_VM_CPUS": "four"}, wantErr: `invalid RDD_VM_CPUS value "four"`},
		{name: "cpus zero", env: map[string]string{"RDD_VM_CPUS": "0"}, wantErr: `invalid RDD_VM_CPUS value "0": must be an integer of at least 1`},
		{name: "cpus negative", env: map[string]string{"RDD_VM_CPUS": "-2"}, wantErr: `invalid RDD_VM_CPUS value "-2"`},
		{name: "cpus fraction", env: map[string]string{"RDD_VM_CPUS": "1.5"}, wantErr: `invalid RDD_VM_CPUS value "1.5"`},
		{name: "memory GiB", env: map[string]string{"RDD_VM_MEMORY": "4GiB"}, want: func(p *Params) { p.Memory = 4 << 30 }},
		{name: "memory G", env: map[string]string{"RDD_VM_MEMORY": "2G"}, want: func(p *Params) { p.Memory = 2 << 30 }},
		{name: "memory MiB fraction", env: map[string]string{"RDD_VM_MEMORY": "1.5GiB"}, want: func(p *Params) { p.Memory = 3 << 29 }},
		{name: "memory bytes", env: map[string]string{"RDD_VM_MEMORY": "536870912"}, want: func(p *Params) { p.Memory = 512 << 20 }},
		{name: "memory unit", env: map[string]string{"RDD_VM_MEMORY": "4 parsecs"}, wantErr: `invalid RDD_VM_MEMORY value "4 parsecs": unknown unit`},
		{name: "memory too small", env: map[string]string{"RDD_VM_MEMORY": "1MiB"}, wantErr: `invalid RDD_VM_MEMORY value "1MiB": must be at least 256MiB`},
		{name: "memory negative", env: map[string]string{"RDD_VM_MEMORY": "-4GiB"}, wantErr: `invalid RDD_VM_MEMORY value "-4GiB": not a size`},
		{name: "memory two dots", env: map[string]string{"RDD_VM_MEMORY": "1.2.3GiB"}, wantErr: `invalid RDD_VM_MEMORY value "1.2.3GiB": not a size`},
		{name: "memory no number", env: map[string]string{"RDD_VM_MEMORY": "GiB"}, wantErr: `invalid RDD_VM_MEMORY value "GiB": not a size`},
		{name: "accel", env: map[string]string{"RDD_VM_ACCEL": "tcg"}, want: func(p *Params) { p.Accel = "tcg" }},
		{name: "accel unknown", env: map[string]string{"RDD_VM_ACCEL": "whpx"}, wantErr: `invalid RDD_VM_ACCEL value "whpx": valid values: kvm, hvf, tcg`},
		{name: "restrict", env: map[string]string{"RDD_VM_RESTRICT_NETWORK": "true"}, want: func(p *Params) { p.RestrictNetwork = true }},
		{name: "restrict 1", env: map[string]string{"RDD_VM_RESTRICT_NETWORK": "1"}, want: func(p *Params) { p.RestrictNetwork = true }},
		{name: "restrict bad", env: map[string]string{"RDD_VM_RESTRICT_NETWORK": "please"}, wantErr: `invalid RDD_VM_RESTRICT_NETWORK value "please": use true or false`},
		{name: "dns", env: map[string]string{"RDD_VM_DNS": "10.0.2.3, 192.168.5.3"}, want: func(p *Params) { p.DNS = []string{"10.0.2.3", "192.168.5.3"} }},
		{name: "dns not an IP", env: map[string]string{"RDD_VM_DNS": "10.0.2.3,dns.example"}, wantErr: `invalid RDD_VM_DNS value "10.0.2.3,dns.example": want IP addresses`},
		{name: "dns only separators", env: map[string]string{"RDD_VM_DNS": " , "}, wantErr: `invalid RDD_VM_DNS value`},
		{name: "keep logs", env: map[string]string{"RDD_KEEP_LOGS": "1", "RDD_TRACE_PACKETS": "1"}, want: func(p *Params) { p.KeepLogs, p.TracePackets = true, true }},
		{name: "image", env: map[string]string{"RDD_VM_IMAGE": plain}, want: func(p *Params) { p.Image = Image{Location: plain} }},
		{name: "image direct boot", env: map[string]string{"RDD_VM_IMAGE": direct}, want: func(p *Params) {
			d := filepath.Dir(direct)
			p.Image = Image{Location: direct, Kernel: filepath.Join(d, "vmlinuz"), Initrd: filepath.Join(d, "initrd.img"),
				Cmdline: "root=/dev/vda rw console=ttyS0 net.ifnames=0 apparmor=0"}
		}},
		{name: "image direct boot without initrd", env: map[string]string{"RDD_VM_IMAGE": noInitrd}, want: func(p *Params) {
			p.Image = Image{Location: noInitrd, Kernel: filepath.Join(filepath.Dir(noInitrd), "vmlinuz"), Cmdline: "root=/dev/vda rw"}
		}},
		{name: "image relative", env: map[string]string{"RDD_VM_IMAGE": "disk.qcow2"}, wantErr: `invalid RDD_VM_IMAGE value "disk.qcow2": must be an absolute path`},
		{name: "image kernel without cmdline", env: map[string]string{"RDD_VM_IMAGE": noCmdline}, wantErr: "has vmlinuz but no cmdline next to it"},
		{name: "image initrd without kernel", env: map[string]string{"RDD_VM_IMAGE": noKernel}, wantErr: "but no vmlinuz next to it"},
		{name: "every error at once", env: map[string]string{"RDD_VM_CPUS": "x", "RDD_VM_MEMORY": "y"}, wantErr: "invalid RDD_VM_CPUS value \"x\": must be an integer of at least 1\ninvalid RDD_VM_MEMORY value \"y\""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := base()
			in.KeepLogs = true // FromEnv decides it: unset means false
			got, err := FromEnv(func(k string) string { return c.env[k] }, in)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("FromEnv error = %v, want one containing %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := base()
			c.want(&want)
			if !equalParams(got, want) {
				t.Errorf("FromEnv =\n%+v\nwant\n%+v", got, want)
			}
			if _, err := Render(got); err != nil {
				t.Errorf("FromEnv's params do not render: %v", err)
			}
		})
	}
}

func equalParams(a, b Params) bool {
	return reflect.DeepEqual(a, b)
}

// lineDiff shows the first differing lines, enough to see what changed.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var out strings.Builder
	n := 0
	for i := 0; i < max(len(w), len(g)) && n < 10; i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			out.WriteString("line " + strconv.Itoa(i+1) + ":\n  want: " + wl + "\n  got:  " + gl + "\n")
			n++
		}
	}
	return out.String()
}

// TestParamsFile runs step 1 of the provision script (the params file) as
// the guest would, with values that need quoting, and reads the file back
// the way a shell sources it.
func TestParamsFile(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	t.Setenv("LIMA_HOME", t.TempDir())
	p := base()
	p.Home = "/home/it's \"quoted\" $HOME `date` back\\slash"
	p.KeepLogs, p.TracePackets = true, true
	b, err := Render(p)
	if err != nil {
		t.Fatal(err)
	}
	y := loadLima(t, b)
	script := y.Provision[0].Script
	start, end := strings.Index(script, "# 1."), strings.Index(script, "# 2.")
	if start < 0 || end < start {
		t.Fatalf("no step 1 in the provision script:\n%s", script)
	}
	dir := t.TempDir()
	step1 := strings.ReplaceAll(script[start:end], "/etc/sysconfig", dir)
	cmd := exec.Command(sh, "-eu", "-c", step1)
	for k, v := range y.Param {
		cmd.Env = append(cmd.Env, "PARAM_"+k+"="+v)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("step 1: %v\n%s", err, out)
	}
	for k, v := range y.Param {
		read := exec.Command(sh, "-c", `. "$1" && eval "printf %s \"\$$2\""`, "sh", filepath.Join(dir, "rancher-desktop"), k)
		read.Env = []string{} // nothing to inherit: the file alone must set it
		out, err := read.Output()
		if err != nil {
			t.Fatalf("source the params file: %v", err)
		}
		if string(out) != v {
			t.Errorf("%s reads back as %q, want %q", k, out, v)
		}
	}
}

func TestPrepareShareDir(t *testing.T) {
	p := base()
	p.ServiceDir = filepath.Join(t.TempDir(), "D")
	if err := p.PrepareShareDir(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p.ShareDir()); !os.IsNotExist(err) {
		t.Fatalf("without Kubernetes nothing is mounted, yet the shared directory was made (stat: %v)", err)
	}
	p.KubernetesEnabled = true
	if err := p.PrepareShareDir(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(p.ShareDir())
	if err != nil {
		t.Fatal(err)
	}
	if !fi.IsDir() || fi.Mode().Perm() != 0o700 {
		t.Errorf("shared directory mode %v, want a 0700 directory", fi.Mode())
	}
}
