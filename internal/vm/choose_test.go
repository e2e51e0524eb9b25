package vm

import (
	"errors"
	"strings"
	"testing"
)

func TestChoose(t *testing.T) {
	const user, root = 1000, 0
	cases := []struct {
		requested, goos string
		euid            int
		qemu            bool
		want            string // driver name; "" expects an error
		reason          string // contained in the reason, or the error
	}{
		{"", "linux", user, true, "lima", "auto: not root and QEMU is installed"},
		{"auto", "linux", user, true, "lima", "auto: not root and QEMU is installed"},
		{"auto", "linux", root, true, "host", "auto: running as root, Lima refuses root; using the host driver"},
		{"auto", "linux", user, false, "host", "auto: QEMU is not installed; using the host driver"},
		{"auto", "linux", root, false, "host", "auto: running as root"},
		{"", "darwin", user, true, "lima", "auto: macOS has no host driver; using the lima driver"},
		{"auto", "darwin", root, true, "", "running as root on macOS"},
		{"auto", "darwin", user, false, "", "needs QEMU"},
		{"auto", "windows", user, true, "", "auto: no VM driver supports windows"},
		{"host", "linux", user, true, "host", "requested"},
		{"host", "linux", root, false, "host", "requested"},
		{"host", "darwin", user, true, "", "the host driver needs Linux"},
		{"lima", "linux", user, true, "lima", "requested"},
		{"lima", "darwin", user, true, "lima", "requested"},
		{"lima", "linux", root, true, "", "the lima driver cannot run as root (Lima refuses it): run rdd as a regular user, or set RDD_VM_DRIVER=host"},
		{"lima", "darwin", root, true, "", "cannot run as root"},
		{"lima", "linux", user, false, "", "needs QEMU"},
		{"lima", "windows", user, true, "", "not supported on windows"},
		{"kvm", "linux", user, true, "", `unknown vm driver "kvm": valid values: auto, host, lima`},
		{"Lima", "linux", user, true, "", `unknown vm driver "Lima"`},
	}
	for _, c := range cases {
		name, reason, err := Choose(c.requested, c.goos, c.euid, c.qemu)
		if c.want == "" {
			if err == nil || !strings.Contains(err.Error(), c.reason) {
				t.Errorf("Choose(%q, %s, euid %d, qemu %v) = %q, %q, %v; want an error containing %q",
					c.requested, c.goos, c.euid, c.qemu, name, reason, err, c.reason)
			}
			continue
		}
		if err != nil || name != c.want || !strings.Contains(reason, c.reason) {
			t.Errorf("Choose(%q, %s, euid %d, qemu %v) = %q, %q, %v; want %q with a reason containing %q",
				c.requested, c.goos, c.euid, c.qemu, name, reason, err, c.want, c.reason)
		}
	}
}

func TestChooseLimaAsRootIsErrLimaAsRoot(t *testing.T) {
	_, _, err := Choose("lima", "linux", 0, true)
	if !errors.Is(err, ErrLimaAsRoot) {
		t.Fatalf("err = %v, want ErrLimaAsRoot", err)
	}
}

func TestQEMUInstalled(t *testing.T) {
	onPath := func(have ...string) func(string) (string, error) {
		return func(name string) (string, error) {
			for _, h := range have {
				if h == name {
					return "/usr/bin/" + name, nil
				}
			}
			return "", errors.New("not found")
		}
	}
	env := func(kv ...string) func(string) string {
		return func(k string) string {
			for i := 0; i+1 < len(kv); i += 2 {
				if kv[i] == k {
					return kv[i+1]
				}
			}
			return ""
		}
	}
	cases := []struct {
		name   string
		goarch string
		getenv func(string) string
		path   func(string) (string, error)
		want   bool
	}{
		{"amd64 on PATH", "amd64", env(), onPath("qemu-system-x86_64"), true},
		{"arm64 on PATH", "arm64", env(), onPath("qemu-system-aarch64"), true},
		{"other arch's qemu only", "amd64", env(), onPath("qemu-system-aarch64"), false},
		{"none", "amd64", env(), onPath(), false},
		{"wrapper named by env", "amd64", env("QEMU_SYSTEM_X86_64", "/opt/rdd/qemu-wrapper"), onPath("/opt/rdd/qemu-wrapper"), true},
		{"env names a missing binary", "amd64", env("QEMU_SYSTEM_X86_64", "/nope"), onPath("qemu-system-x86_64"), false},
		{"unsupported arch", "riscv64", env(), onPath("qemu-system-riscv64"), false},
	}
	for _, c := range cases {
		if got := QEMUInstalled(c.goarch, c.getenv, c.path); got != c.want {
			t.Errorf("%s: QEMUInstalled = %v, want %v", c.name, got, c.want)
		}
	}
}
