package lima

import (
	"slices"
	"strings"
	"testing"
)

// limaX8664 is the shape of the command line Lima v1.2.1 builds for an
// x86_64 guest on an x86_64 Linux host (pkg/driver/qemu/qemu.go).
var limaX8664 = []string{
	"-m", "6144", "-cpu", "host", "-machine", "q35,accel=kvm",
	"-smp", "2,sockets=1,cores=2,threads=1",
	"-netdev", "user,id=net0,net=192.168.5.0/24,dhcpstart=192.168.5.15,hostfwd=tcp:127.0.0.1:60022-:22",
	"-device", "virtio-net-pci,netdev=net0,mac=52:55:55:12:34:56",
	"-netdev", "socket,id=net1,fd={{ fd_connect \"/tmp/sock\" }}",
}

func TestRewriteQEMUArgs(t *testing.T) {
	cases := []struct {
		name     string
		args     string
		accel    string
		restrict bool
		want     string
	}{
		{name: "Lima's accelerator query is QEMU's own", args: "-M none -accel help", accel: "tcg", restrict: true,
			want: "-M none -accel help"},
		{name: "a version query boots nothing", args: "-version", accel: "tcg",
			want: "-version"},
		{name: "kvm stays", args: "-cpu host -machine q35,accel=kvm", accel: "kvm",
			want: "-cpu host -machine q35,accel=kvm"},
		{name: "hvf stays", args: "-cpu host -machine virt,accel=hvf", accel: "hvf",
			want: "-cpu host -machine virt,accel=hvf"},
		{name: "default accel stays", args: "-cpu host -machine q35,accel=kvm", accel: "",
			want: "-cpu host -machine q35,accel=kvm"},
		{name: "tcg replaces machine accel", args: "-cpu host -machine q35,accel=kvm -smp 2", accel: "tcg",
			want: "-cpu max -machine q35 -accel tcg,thread=multi -smp 2"},
		{name: "tcg keeps other machine options", args: "-machine q35,accel=kvm,kernel-irqchip=off", accel: "tcg",
			want: "-machine q35,kernel-irqchip=off -accel tcg,thread=multi"},
		{name: "tcg drops a machine that was only accel", args: "-M accel=kvm -m 512", accel: "tcg",
			want: "-accel tcg,thread=multi -m 512"},
		{name: "tcg replaces -accel kvm", args: "-m 512 -accel kvm -cpu host", accel: "tcg",
			want: "-m 512 -accel tcg,thread=multi -cpu max"},
		{name: "tcg replaces -accel hvf", args: "-accel hvf", accel: "tcg",
			want: "-accel tcg,thread=multi"},
		{name: "tcg replaces -enable-kvm", args: "-enable-kvm -cpu host", accel: "tcg",
			want: "-accel tcg,thread=multi -cpu max"},
		{name: "tcg replaces every form once", args: "-enable-kvm -accel kvm -machine q35,accel=kvm", accel: "tcg",
			want: "-accel tcg,thread=multi -machine q35"},
		{name: "tcg keeps cpu features", args: "-cpu host,+aes -accel kvm", accel: "tcg",
			want: "-cpu max,+aes -accel tcg,thread=multi"},
		{name: "tcg leaves named cpus", args: "-cpu cortex-a72 -machine virt,accel=kvm", accel: "tcg",
			want: "-cpu cortex-a72 -machine virt -accel tcg,thread=multi"},
		{name: "tcg already asked for", args: "-machine q35,vmport=off -accel tcg,thread=multi,tb-size=512", accel: "tcg",
			want: "-machine q35,vmport=off -accel tcg,thread=multi,tb-size=512"},
		{name: "tcg in machine already", args: "-machine q35,accel=tcg", accel: "tcg",
			want: "-machine q35,accel=tcg"},
		{name: "tcg without any accelerator", args: "-m 512", accel: "tcg",
			want: "-m 512 -accel tcg,thread=multi"},
		{name: "double-dash options", args: "--enable-kvm --cpu host", accel: "tcg",
			want: "-accel tcg,thread=multi --cpu max"},
		{name: "restrict user netdev", args: "-netdev user,id=net0,hostfwd=tcp:127.0.0.1:60022-:22", restrict: true,
			want: "-netdev user,id=net0,hostfwd=tcp:127.0.0.1:60022-:22,restrict=on"},
		{name: "restrict not twice", args: "-netdev user,id=net0,restrict=on", restrict: true,
			want: "-netdev user,id=net0,restrict=on"},
		{name: "restrict overrides off", args: "-netdev user,restrict=off,id=net0", restrict: true,
			want: "-netdev user,restrict=on,id=net0"},
		{name: "restrict every user netdev, and -nic", args: "-netdev user,id=a -nic user,id=b -netdev socket,id=c", restrict: true,
			want: "-netdev user,id=a,restrict=on -nic user,id=b,restrict=on -netdev socket,id=c"},
		{name: "no restrict leaves netdev", args: "-netdev user,id=net0",
			want: "-netdev user,id=net0"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := strings.Fields(c.args)
			orig := slices.Clone(in)
			got := RewriteQEMUArgs(in, c.accel, c.restrict)
			if want := strings.Fields(c.want); !slices.Equal(got, want) {
				t.Errorf("RewriteQEMUArgs(%q, %q, %v)\n got %q\nwant %q", c.args, c.accel, c.restrict, got, want)
			}
			if !slices.Equal(in, orig) {
				t.Errorf("the input was modified: %q", in)
			}
			if again := RewriteQEMUArgs(got, c.accel, c.restrict); !slices.Equal(again, got) {
				t.Errorf("a second rewrite changes the result again: %q", again)
			}
		})
	}
}

// TestRewriteLimaCommandLine: on a host whose /dev/kvm does not boot
// guests, Lima's command line runs under TCG, the guest reaches only the
// host's forwards, and the socket network (fd template) is left alone.
func TestRewriteLimaCommandLine(t *testing.T) {
	got := RewriteQEMUArgs(limaX8664, DefaultAccel("linux", false), true)
	want := []string{
		"-m", "6144", "-cpu", "max", "-machine", "q35", "-accel", "tcg,thread=multi",
		"-smp", "2,sockets=1,cores=2,threads=1",
		"-netdev", "user,id=net0,net=192.168.5.0/24,dhcpstart=192.168.5.15,hostfwd=tcp:127.0.0.1:60022-:22,restrict=on",
		"-device", "virtio-net-pci,netdev=net0,mac=52:55:55:12:34:56",
		"-netdev", "socket,id=net1,fd={{ fd_connect \"/tmp/sock\" }}",
	}
	if !slices.Equal(got, want) {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

func TestDefaultAccel(t *testing.T) {
	cases := []struct {
		goos      string
		kvmUsable bool
		want      string
	}{
		{"darwin", false, "hvf"},
		{"darwin", true, "hvf"},
		{"linux", true, "kvm"},
		{"linux", false, "tcg"},
		{"windows", true, "tcg"},
	}
	for _, c := range cases {
		if got := DefaultAccel(c.goos, c.kvmUsable); got != c.want {
			t.Errorf("DefaultAccel(%q, %v) = %q, want %q", c.goos, c.kvmUsable, got, c.want)
		}
	}
}
