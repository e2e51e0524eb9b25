// Package lima holds the parts of the lima VM driver that every rdd command
// may link: the Lima template rdd renders (behavior.md §6.6) and the QEMU
// argument rewrite of its QEMU wrapper. It must not import
// github.com/lima-vm/lima: that costs every CLI command 8-10 ms of package
// initialisation (TestNoLimaInRDD guards it). The code that links Lima lives
// in cmd/rdd-lima.
package lima

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"text/template"
	"unicode"

	"github.com/rdd-project/rdd/internal/paths"
)

//go:embed template.yaml
var baseTemplate string

// The base template uses <% %> so that Lima's own {{ }} pass through. It is
// parsed on first use: parsing it at init cost every CLI command 0.13 ms.
var tmpl = sync.OnceValue(func() *template.Template {
	return template.Must(template.New("lima.yaml").
		Delims("<%", "%>").
		Funcs(template.FuncMap{"quote": strconv.Quote}).
		Parse(baseTemplate))
})

// DefaultMemory is behavior.md §6.6's 6 GiB.
const DefaultMemory = 6 << 30

// DefaultCPUs is behavior.md §6.6's 2.
const DefaultCPUs = 2

// Image is a local guest image (RDD_VM_IMAGE). The zero Image means the
// pinned default image, which Lima downloads and checks by digest.
type Image struct {
	// Location is the absolute path of a qcow2 or raw disk image.
	Location string
	// Kernel, Initrd and Cmdline boot the kernel directly (QEMU -kernel),
	// which an image without a boot loader needs. Kernel "" boots the
	// image's own boot loader; Initrd needs Kernel.
	Kernel  string
	Initrd  string
	Cmdline string
}

// Params is everything that goes into the rendered template. Two Params
// that render the same need no VM restart between them (RestartKey).
type Params struct {
	Engine string // "moby" or "containerd"

	Home       string // the user's home: HOST_HOME_GUEST
	ShortDir   string // H: the docker socket goes to H/docker.sock
	ServiceDir string // D: the shared directory is D/vm-share (ShareDir)
	LogDir     string // L

	KubernetesEnabled bool
	KubernetesVersion string // bare, e.g. "1.32.0"
	KubernetesPort    int    // status.kubernetesPort; 0 when disabled

	CPUs   int
	Memory uint64 // bytes
	// Arch is Lima's name of the guest architecture, "x86_64" or "aarch64".
	Arch  string
	Image Image

	KeepLogs     bool // RDD_KEEP_LOGS
	TracePackets bool // RDD_TRACE_PACKETS (WSL only; kept for the params)
	// DNS, when not empty, replaces Lima's host resolver with these servers:
	// a guest that must not reach outside has no use for the host's.
	DNS []string

	// Accel ("kvm", "hvf", "tcg"; "" = DefaultAccel) and RestrictNetwork
	// are applied by rdd's QEMU wrapper (RewriteQEMUArgs), not by Lima.
	// They are rendered as a comment so that RestartKey covers them.
	Accel           string
	RestrictNetwork bool
}

// Defaults are the Params of behavior.md §6.6 for the instance at pp, with
// the moby engine and Kubernetes disabled.
func Defaults(pp paths.Paths) Params {
	return Params{
		Engine:     "moby",
		Home:       pp.Home,
		ShortDir:   pp.ShortDir,
		ServiceDir: pp.ServiceDir,
		LogDir:     pp.LogDir,
		CPUs:       DefaultCPUs,
		Memory:     DefaultMemory,
		Arch:       NativeArch(runtime.GOARCH),
	}
}

// NativeArch is Lima's name of Go's GOARCH goarch, "" when Lima has none
// rdd supports.
func NativeArch(goarch string) string {
	switch goarch {
	case "amd64":
		return "x86_64"
	case "arm64":
		return "aarch64"
	}
	return ""
}

// ShareDir is the one host directory the guest sees (writable, at the same
// path), and only while Kubernetes is enabled: the host puts the k3s binary
// into it and the guest puts the kubeconfig into it. docs/lima.md says why
// it is not ~ (the reference) nor D.
func (p Params) ShareDir() string { return filepath.Join(p.ServiceDir, "vm-share") }

// KubeconfigPath is where the guest copies k3s's kubeconfig
// (HOST_INSTANCE_CONFIG): ShareDir/k3s.yaml, not the reference's D/k3s.yaml.
func (p Params) KubeconfigPath() string { return filepath.Join(p.ShareDir(), "k3s.yaml") }

// K3sBinaryPath is where the guest looks for the k3s binary of
// KubernetesVersion when its image has none. The host must put a copy
// there, not a hard link: the guest may write to it.
func (p Params) K3sBinaryPath() string { return filepath.Join(p.ShareDir(), "k3s") }

// PrepareShareDir creates ShareDir (mode 0700: it carries credentials)
// when the template mounts it, before Lima starts the VM: QEMU's 9p refuses
// a missing directory, and reverse-sshfs would mount nothing.
func (p Params) PrepareShareDir() error {
	if !p.KubernetesEnabled {
		return nil
	}
	if err := os.MkdirAll(p.ShareDir(), 0o700); err != nil {
		return fmt.Errorf("create the VM's shared directory: %w", err)
	}
	return os.Chmod(p.ShareDir(), 0o700)
}

// DockerSocket is where Lima forwards the guest's /var/run/docker.sock.
func (p Params) DockerSocket() string { return filepath.Join(p.ShortDir, "docker.sock") }

// Default guest images: Debian 12 genericcloud, pinned by the digests Debian
// publishes (SHA512SUMS), as Lima v1.2.1's own debian-12 template pins them.
var defaultImages = []imageView{
	{
		Location: "https://cloud.debian.org/images/cloud/bookworm/20250703-2162/debian-12-genericcloud-amd64-20250703-2162.qcow2",
		Arch:     "x86_64",
		Digest:   "sha512:da702efced2cd98017790d0e00fee81f1e1404d3f990a4741f52e6f18bde9856d37799c053b3baa48805048a595d2a6a13c41b8287ec6f76ec27b7ef1b67a215",
	},
	{
		Location: "https://cloud.debian.org/images/cloud/bookworm/20250703-2162/debian-12-genericcloud-arm64-20250703-2162.qcow2",
		Arch:     "aarch64",
		Digest:   "sha512:95f72a3dbc9bbe261aee622ffe0c1b89085d843c9631b720738557a3640e229847deee7f0f87a29b566bf56ba7ecdc9010fb4b844c3477ca76a00865cf016fc1",
	},
}

type imageView struct {
	Location, Arch, Digest  string
	Kernel, Initrd, Cmdline string
}

// view is what template.yaml sees.
type view struct {
	Images          []imageView
	No9p            bool
	CPUs            int
	Memory          uint64
	Share           string
	DNS             []string
	ExtraKubePort   int
	Accel           string
	RestrictNetwork bool
}

// Render is the full Lima YAML for p: the base template followed by the
// param block of behavior.md §6.6, in the spec's order.
func Render(p Params) ([]byte, error) {
	if err := p.validate(); err != nil {
		return nil, err
	}
	v := view{
		CPUs:            p.CPUs,
		Memory:          p.Memory,
		DNS:             p.DNS,
		Accel:           p.Accel,
		RestrictNetwork: p.RestrictNetwork,
	}
	if v.Accel == "" {
		v.Accel = "default"
	}
	if p.Image.Location == "" {
		v.Images = defaultImages
		v.No9p = true
	} else {
		v.Images = []imageView{{
			Location: p.Image.Location,
			Arch:     p.Arch,
			Kernel:   p.Image.Kernel,
			Initrd:   p.Image.Initrd,
			Cmdline:  p.Image.Cmdline,
		}}
	}
	if p.KubernetesEnabled {
		v.Share = p.ShareDir()
		if p.KubernetesPort != 6443 {
			v.ExtraKubePort = p.KubernetesPort
		}
	}
	var b bytes.Buffer
	if err := tmpl().Execute(&b, v); err != nil {
		return nil, fmt.Errorf("render the lima template: %w", err)
	}
	b.WriteString("param:\n")
	for _, kv := range p.params() {
		fmt.Fprintf(&b, "  %s: %s\n", kv[0], strconv.Quote(kv[1]))
	}
	return b.Bytes(), nil
}

// RestartKey is the restart key of the lima driver (vm.RestartKeyer): a VM
// boots from its whole template, so any change to the render needs a
// restart. Params that do not render are not a key; Render reports why.
func RestartKey(p Params) string {
	b, err := Render(p)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// params is the param block, in behavior.md §6.6's order.
func (p Params) params() [][2]string {
	extra, guestLogDir := "", ""
	if p.KeepLogs {
		extra, guestLogDir = "--vm-switch-logfile-append", p.LogDir
		if p.TracePackets {
			extra += " --trace-packets"
		}
	}
	port := p.KubernetesPort
	if !p.KubernetesEnabled {
		port = 0
	}
	return [][2]string{
		{"CONTAINER_ENGINE", p.Engine},
		{"HOST_DOCKER_SOCKET", p.DockerSocket()},
		{"HOST_HOME_GUEST", p.Home},
		{"HOST_INSTANCE_CONFIG", p.KubeconfigPath()},
		{"VM_SWITCH_LOG", filepath.Join(p.LogDir, "vm-switch.log")},
		{"NETWORK_SETUP_EXTRA_ARGS", extra},
		{"GUEST_LOG_DIR", guestLogDir},
		{"KUBERNETES_ENABLED", strconv.FormatBool(p.KubernetesEnabled)},
		{"KUBERNETES_VERSION", p.KubernetesVersion},
		{"KUBERNETES_PORT", strconv.Itoa(port)},
	}
}

// validate catches what Lima would refuse later, or worse, accept and boot
// into something else, while the error can still name rdd's own input.
func (p Params) validate() error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	switch p.Engine {
	case "moby", "containerd":
	default:
		add("invalid container engine %q: valid values: moby, containerd", p.Engine)
	}
	for _, d := range []struct{ name, path string }{
		{"home directory", p.Home},
		{"short directory (H)", p.ShortDir},
		{"service directory (D)", p.ServiceDir},
		{"log directory (L)", p.LogDir},
	} {
		if !filepath.IsAbs(d.path) {
			add("the %s must be an absolute path, got %q", d.name, d.path)
		}
	}
	if p.KubernetesEnabled {
		if p.KubernetesVersion == "" {
			add("kubernetes is enabled without a version")
		} else if strings.HasPrefix(p.KubernetesVersion, "v") || strings.Contains(p.KubernetesVersion, "+") {
			add("invalid kubernetes version %q: must be bare, e.g. 1.32.0", p.KubernetesVersion)
		}
		if p.KubernetesPort < 1 || p.KubernetesPort > 65535 {
			add("invalid kubernetes port %d: must be 1-65535", p.KubernetesPort)
		}
	}
	if p.CPUs < 1 {
		add("invalid cpus %d: must be at least 1", p.CPUs)
	}
	if p.Memory < minMemory {
		add("invalid memory %d bytes: must be at least 256MiB", p.Memory)
	}
	switch p.Arch {
	case "x86_64", "aarch64":
	default:
		add("unsupported guest architecture %q: rdd supports x86_64 and aarch64", p.Arch)
	}
	img := p.Image
	if img.Location == "" && (img.Kernel != "" || img.Initrd != "") {
		add("a kernel or initrd needs a local image (RDD_VM_IMAGE)")
	}
	if img.Location != "" && !filepath.IsAbs(img.Location) {
		add("the VM image must be an absolute path, got %q", img.Location)
	}
	if img.Initrd != "" && img.Kernel == "" {
		add("an initrd needs a kernel: %s has no vmlinuz next to it", img.Location)
	}
	for _, s := range p.DNS {
		if net.ParseIP(s) == nil {
			add("invalid DNS server %q: must be an IP address", s)
		}
	}
	switch p.Accel {
	case "", "kvm", "hvf", "tcg":
	default:
		add("invalid accelerator %q: valid values: kvm, hvf, tcg", p.Accel)
	}
	// Lima refuses params with control characters, and a newline in a
	// path would break the guest's params file.
	for _, kv := range p.params() {
		for _, r := range kv[1] {
			if !unicode.IsPrint(r) {
				add("param %s contains the unprintable character %q: %q", kv[0], r, kv[1])
				break
			}
		}
	}
	if img.Cmdline != "" && strings.ContainsFunc(img.Cmdline, func(r rune) bool { return r == '\n' || r == '\r' }) {
		add("the kernel command line must be one line, got %q", img.Cmdline)
	}
	return errors.Join(errs...)
}

const minMemory = 256 << 20

// Env names FromEnv reads.
const (
	EnvImage           = "RDD_VM_IMAGE"
	EnvCPUs            = "RDD_VM_CPUS"
	EnvMemory          = "RDD_VM_MEMORY"
	EnvAccel           = "RDD_VM_ACCEL"
	EnvRestrictNetwork = "RDD_VM_RESTRICT_NETWORK"
	EnvDNS             = "RDD_VM_DNS"
	EnvKeepLogs        = "RDD_KEEP_LOGS"
	EnvTracePackets    = "RDD_TRACE_PACKETS"
)

// Files next to RDD_VM_IMAGE that switch on direct kernel boot.
const (
	KernelFile  = "vmlinuz"
	InitrdFile  = "initrd.img"
	CmdlineFile = "cmdline"
)

// FromEnv is base with the RDD_VM_* overrides of the environment getenv
// reads. An invalid value is an error naming the variable, never a silent
// fallback to the default.
func FromEnv(getenv func(string) string, base Params) (Params, error) {
	p := base
	var errs []error
	if v := getenv(EnvImage); v != "" {
		img, err := localImage(v)
		if err != nil {
			errs = append(errs, err)
		}
		p.Image = img
	}
	if v := getenv(EnvCPUs); v != "" {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 1 {
			errs = append(errs, fmt.Errorf("invalid %s value %q: must be an integer of at least 1", EnvCPUs, v))
		} else {
			p.CPUs = n
		}
	}
	if v := getenv(EnvMemory); v != "" {
		n, err := ParseMemory(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("invalid %s value %q: %w", EnvMemory, v, err))
		} else {
			p.Memory = n
		}
	}
	if v := getenv(EnvAccel); v != "" {
		switch v {
		case "kvm", "hvf", "tcg":
			p.Accel = v
		default:
			errs = append(errs, fmt.Errorf("invalid %s value %q: valid values: kvm, hvf, tcg", EnvAccel, v))
		}
	}
	if v := getenv(EnvRestrictNetwork); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("invalid %s value %q: use true or false", EnvRestrictNetwork, v))
		} else {
			p.RestrictNetwork = b
		}
	}
	if v := getenv(EnvDNS); v != "" {
		servers := strings.FieldsFunc(v, func(r rune) bool { return r == ',' || unicode.IsSpace(r) })
		var bad []string
		for _, s := range servers {
			if net.ParseIP(s) == nil {
				bad = append(bad, s)
			}
		}
		if len(bad) > 0 || len(servers) == 0 {
			errs = append(errs, fmt.Errorf("invalid %s value %q: want IP addresses separated by commas", EnvDNS, v))
		} else {
			p.DNS = servers
		}
	}
	// behavior.md §1.3: these two count as set when not empty, as everywhere
	// else in rdd.
	p.KeepLogs = getenv(EnvKeepLogs) != ""
	p.TracePackets = getenv(EnvTracePackets) != ""
	if err := errors.Join(errs...); err != nil {
		return base, err
	}
	return p, nil
}

// localImage is RDD_VM_IMAGE at path, with the direct-boot files next to it.
// The image itself is not checked: Lima needs it only to create the VM, and
// names it when it is missing; the files next to it decide the template.
func localImage(path string) (Image, error) {
	if !filepath.IsAbs(path) {
		return Image{}, fmt.Errorf("invalid %s value %q: must be an absolute path", EnvImage, path)
	}
	dir := filepath.Dir(path)
	img := Image{Location: path}
	exists := func(name string) (string, bool, error) {
		f := filepath.Join(dir, name)
		_, err := os.Stat(f)
		switch {
		case err == nil:
			return f, true, nil
		case errors.Is(err, os.ErrNotExist):
			return "", false, nil
		}
		return "", false, fmt.Errorf("%s: %w", EnvImage, err)
	}
	kernel, hasKernel, err := exists(KernelFile)
	if err != nil {
		return Image{}, err
	}
	initrd, hasInitrd, err := exists(InitrdFile)
	if err != nil {
		return Image{}, err
	}
	cmdline, hasCmdline, err := exists(CmdlineFile)
	if err != nil {
		return Image{}, err
	}
	switch {
	case !hasKernel && (hasInitrd || hasCmdline):
		return Image{}, fmt.Errorf("%s: %s has %s or %s but no %s next to it: add the kernel, or remove them to boot the image's own boot loader",
			EnvImage, dir, InitrdFile, CmdlineFile, KernelFile)
	case !hasKernel:
		return img, nil
	case !hasCmdline:
		return Image{}, fmt.Errorf("%s: %s has %s but no %s next to it: direct kernel boot needs the kernel command line (e.g. root=/dev/vda rw console=ttyS0)",
			EnvImage, dir, KernelFile, CmdlineFile)
	}
	b, err := os.ReadFile(cmdline)
	if err != nil {
		return Image{}, fmt.Errorf("%s: %w", EnvImage, err)
	}
	img.Kernel = kernel
	img.Cmdline = strings.TrimSpace(string(b))
	if hasInitrd {
		img.Initrd = initrd
	}
	return img, nil
}

// ParseMemory reads a memory size such as "4GiB", "512MiB", "4G" or a
// number of bytes. Units are binary whatever their spelling, as Lima reads
// them (go-units RAMInBytes), so that rdd and Lima agree on the size.
func ParseMemory(s string) (uint64, error) {
	t := strings.TrimSpace(s)
	i := strings.IndexFunc(t, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	num, unit := t, ""
	if i >= 0 {
		num, unit = t[:i], strings.ToLower(strings.TrimSpace(t[i:]))
	}
	if num == "" {
		return 0, errors.New("not a size: use e.g. 4GiB or 512MiB")
	}
	var mult float64
	switch unit {
	case "", "b":
		mult = 1
	case "k", "kb", "kib":
		mult = 1 << 10
	case "m", "mb", "mib":
		mult = 1 << 20
	case "g", "gb", "gib":
		mult = 1 << 30
	case "t", "tb", "tib":
		mult = 1 << 40
	default:
		return 0, fmt.Errorf("unknown unit %q: use B, KiB, MiB, GiB or TiB", strings.TrimSpace(t[i:]))
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, errors.New("not a size: use e.g. 4GiB or 512MiB")
	}
	n := f * mult
	if n < minMemory {
		return 0, errors.New("must be at least 256MiB")
	}
	if n > 1<<50 {
		return 0, errors.New("too large")
	}
	return uint64(n), nil
}
