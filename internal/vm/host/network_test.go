package host

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/rdd-project/rdd/internal/paths"
	"github.com/rdd-project/rdd/internal/vm"
)

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }

func TestChooseSubnet(t *testing.T) {
	all10213 := pfx("10.213.0.0/16")
	for _, tc := range []struct {
		name string
		prev netip.Prefix
		used []netip.Prefix
		seed uint32
		want netip.Prefix
	}{
		{name: "nothing in use: first of the first pool", want: pfx("10.213.0.0/24")},
		{name: "seed picks the start", seed: 7, want: pfx("10.213.7.0/24")},
		{name: "seed wraps within the pool", seed: 256 + 3, want: pfx("10.213.3.0/24")},
		{name: "route to the seeded /24 is skipped", seed: 7, used: []netip.Prefix{pfx("10.213.7.0/24")}, want: pfx("10.213.8.0/24")},
		{name: "interface /28 inside a candidate is skipped", used: []netip.Prefix{pfx("10.213.0.16/28")}, want: pfx("10.213.1.0/24")},
		{name: "supernet route skips a whole pool", used: []netip.Prefix{pfx("10.0.0.0/8")}, want: pfx("192.168.216.0/24")},
		{name: "last candidate of the wrapped pool", seed: 255, used: []netip.Prefix{pfx("10.213.255.0/24")}, want: pfx("10.213.0.0/24")},
		{name: "recorded subnet is kept", prev: pfx("10.213.42.0/24"), seed: 1, used: []netip.Prefix{pfx("192.0.2.0/24")}, want: pfx("10.213.42.0/24")},
		{name: "recorded subnet outside the pools is kept", prev: pfx("10.99.0.0/24"), want: pfx("10.99.0.0/24")},
		{name: "recorded subnet that now collides is replaced", prev: pfx("10.213.42.0/24"), seed: 42, used: []netip.Prefix{pfx("10.213.42.128/25")}, want: pfx("10.213.43.0/24")},
		{name: "docker0's range is never kept", prev: pfx("172.17.5.0/24"), used: alwaysAvoid, want: pfx("10.213.0.0/24")},
		{name: "second pool when the first is full", seed: 9, used: []netip.Prefix{all10213, pfx("192.168.225.0/24")}, want: pfx("192.168.217.0/24")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := chooseSubnet(tc.prev, tc.used, tc.seed)
			if err != nil || got != tc.want {
				t.Fatalf("chooseSubnet = %v, %v; want %v", got, err, tc.want)
			}
		})
	}
	if got, err := chooseSubnet(netip.Prefix{}, []netip.Prefix{all10213, pfx("192.168.0.0/16")}, 0); err == nil {
		t.Fatalf("every pool in use: got %v, want an error", got)
	}
}

func TestParseRoutes(t *testing.T) {
	const table = `Iface	Destination	Gateway 	Flags	RefCnt	Use	Metric	Mask		MTU	Window	IRTT
eth0	00000000	010200C0	0003	0	0	0	00000000	0	0	0
rdd-2-abcdef	00FAD50A	00000000	0001	0	0	0	00FFFFFF	0	0	0
eth0	000200C0	00000000	0001	0	0	0	00FFFFFF	0	0	0
docker0	000011AC	00000000	0001	0	0	0	0000FFFF	0	0	0
wg0	0000000A	00000000	0001	0	0	0	000000FF	0	0	0
`
	got, err := parseRoutes(strings.NewReader(table), "rdd-2-abcdef")
	if err != nil {
		t.Fatal(err)
	}
	// The default route and our own bridge's route are not "in use".
	want := []netip.Prefix{pfx("192.0.2.0/24"), pfx("172.17.0.0/16"), pfx("10.0.0.0/8")}
	if !slices.Equal(got, want) {
		t.Fatalf("parseRoutes = %v, want %v", got, want)
	}
	if _, err := parseRoutes(strings.NewReader("Iface\tDestination\nx\tzz\t0\t0\t0\t0\t0\t00FFFFFF\n"), ""); err == nil {
		t.Fatal("bad hex: want an error")
	}
}

func TestIPv4Networks(t *testing.T) {
	_, n4, _ := net.ParseCIDR("192.0.2.7/24")
	n4.IP = net.ParseIP("192.0.2.7") // an interface address, not its network
	_, n6, _ := net.ParseCIDR("fd00::2/64")
	got := ipv4Networks([]net.Addr{n4, n6, &net.IPAddr{IP: net.ParseIP("10.0.0.1")}})
	if want := []netip.Prefix{pfx("192.0.2.0/24")}; !slices.Equal(got, want) {
		t.Fatalf("ipv4Networks = %v, want %v", got, want)
	}
}

func TestBridgeName(t *testing.T) {
	for _, tc := range []struct{ instance, prefix string }{
		{"2", "rdd-2-"},
		{"dev", "rdd-dev-"},
		{"Staging_Long-Name", "rdd-stag-"},
		{"__", "rdd-"},
		{"", "rdd-"},
	} {
		got := bridgeName(tc.instance, "/home/u/.local/share/x/engine")
		if len(got) > 15 || !strings.HasPrefix(got, tc.prefix) || len(got) != len(tc.prefix)+6 {
			t.Errorf("bridgeName(%q) = %q: want %q + 6 hex digits, at most 15 characters", tc.instance, got, tc.prefix)
		}
		for _, r := range got {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
				t.Errorf("bridgeName(%q) = %q has %q", tc.instance, got, r)
			}
		}
	}
	a, b := bridgeName("2", "/home/a/engine"), bridgeName("2", "/home/b/engine")
	if a == b {
		t.Errorf("two HOMEs with instance 2 share bridge %q", a)
	}
	if a != bridgeName("2", "/home/a/engine") {
		t.Error("bridgeName is not stable")
	}
}

func TestNetworkArgs(t *testing.T) {
	common := []string{"--iptables=false", "--ip6tables=false", "--ip-forward=false", "--ip-masq=false"}
	if got, want := dockerdNetworkArgs(NetworkNone, "rdd-2-abcdef"), append([]string{"--bridge=none"}, common...); !slices.Equal(got, want) {
		t.Errorf("none: %v, want %v", got, want)
	}
	want := append([]string{"--bridge=rdd-2-abcdef", "--ip=127.0.0.1", "--userland-proxy=true"}, common...)
	if got := dockerdNetworkArgs(NetworkBridge, "rdd-2-abcdef"); !slices.Equal(got, want) {
		t.Errorf("bridge: %v, want %v", got, want)
	}
	// The user's extra args come last, so they can override ours.
	args := layout{}.dockerdArgs(want, []string{"--ip=0.0.0.0"})
	if i, j := slices.Index(args, "--ip=127.0.0.1"), slices.Index(args, "--ip=0.0.0.0"); i < 0 || j < i {
		t.Errorf("dockerdArgs order: %v", args)
	}
	for in, out := range map[string]string{"": NetworkBridge, "bridge": NetworkBridge, "none": NetworkNone} {
		if got, err := networkMode(in); err != nil || got != out {
			t.Errorf("networkMode(%q) = %q, %v; want %q", in, got, err, out)
		}
	}
	if _, err := networkMode("host"); err == nil || !strings.Contains(err.Error(), "RDD_HOST_NETWORK") {
		t.Errorf("networkMode(host): %v, want an error naming RDD_HOST_NETWORK", err)
	}
}

func TestParseRuleList(t *testing.T) {
	out := []byte(`-P POSTROUTING ACCEPT
-A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE
-A POSTROUTING -s 10.213.5.0/24 ! -o rdd-2-abcdef -m comment --comment "rdd:rdd-2-abcdef" -j MASQUERADE
-A POSTROUTING -s 10.213.6.0/24 ! -o rdd-2-ffffff -m comment --comment "rdd:rdd-2-ffffff" -j MASQUERADE
`)
	got := parseRuleList(out, "POSTROUTING", "rdd:rdd-2-abcdef")
	want := natRules("rdd-2-abcdef", pfx("10.213.5.0/24"))[0].spec
	if len(got) != 1 || !slices.Equal(got[0], want) {
		t.Fatalf("parseRuleList = %q, want [%q]", got, want)
	}
}

// --- against the real kernel (root) ---

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("this test creates bridges and iptables rules: run it as root")
	}
	requireBinary(t, "ip", "iproute2")
	requireBinary(t, "iptables", "iptables")
}

// netTestDriver returns a driver for a fresh HOME whose network is torn
// down at the end of the test, after its processes are killed, even when
// the test fails half-way.
func netTestDriver(t *testing.T, opts Options) (*Driver, paths.Paths) {
	t.Helper()
	p := testPaths(t)
	t.Cleanup(func() { New(p, nil, Options{}).teardownNetwork(context.Background()) })
	d := newTestDriver(t, p, opts)
	if _, err := d.Create(context.Background()); err != nil {
		t.Fatal(err)
	}
	return d, p
}

// ourRules counts the rules carrying bridge's comment in table/chain.
func ourRules(t *testing.T, table, chain, bridge string) int {
	t.Helper()
	specs, err := listRules(context.Background(), "iptables", table, chain, ruleComment(bridge))
	if err != nil {
		t.Fatal(err)
	}
	return len(specs)
}

// bridgeAddrs returns the IPv4 addresses of link name, or nil when there is
// no such link.
func bridgeAddrs(t *testing.T, name string) []netip.Prefix {
	t.Helper()
	ifc, err := net.InterfaceByName(name)
	if err != nil {
		return nil
	}
	addrs, err := ifc.Addrs()
	if err != nil {
		t.Fatal(err)
	}
	var out []netip.Prefix
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil {
			ip, _ := netip.AddrFromSlice(n.IP.To4())
			ones, _ := n.Mask.Size()
			out = append(out, netip.PrefixFrom(ip, ones))
		}
	}
	return out
}

func linkExists(name string) bool { return fileExists(filepath.Join("/sys/class/net", name)) }

// assertNetworkUp checks the bridge, its one address and one copy of each
// rule, and returns the recorded subnet.
func assertNetworkUp(t *testing.T, d *Driver) netip.Prefix {
	t.Helper()
	br := d.bridge()
	ns, ok := readNetState(d.netStateFile())
	if !ok || ns.Bridge != br {
		t.Fatalf("network state %s: %+v, ok=%v; want bridge %s", d.netStateFile(), ns, ok, br)
	}
	subnet := pfx(ns.Subnet)
	if got, want := bridgeAddrs(t, br), []netip.Prefix{netip.PrefixFrom(subnet.Addr().Next(), 24)}; !slices.Equal(got, want) {
		t.Fatalf("bridge %s addresses %v, want %v", br, got, want)
	}
	if !fileExists(filepath.Join("/sys/class/net", br, "bridge")) {
		t.Fatalf("%s is not a bridge", br)
	}
	if n := ourRules(t, "nat", "POSTROUTING", br); n != 1 {
		t.Fatalf("%d MASQUERADE rules for %s, want 1", n, br)
	}
	if n := ourRules(t, "filter", "FORWARD", br); n != 2 {
		t.Fatalf("%d FORWARD rules for %s, want 2", n, br)
	}
	if b, _ := os.ReadFile("/proc/sys/net/ipv4/ip_forward"); strings.TrimSpace(string(b)) != "1" {
		t.Fatalf("ip_forward = %q with NAT on", b)
	}
	return subnet
}

func assertNetworkGone(t *testing.T, br string) {
	t.Helper()
	if linkExists(br) {
		t.Errorf("bridge %s still exists", br)
	}
	if n := ourRules(t, "nat", "POSTROUTING", br) + ourRules(t, "filter", "FORWARD", br); n != 0 {
		t.Errorf("%d rules for %s remain", n, br)
	}
}

func TestNetworkPrepareTeardownIdempotent(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	d, _ := netTestDriver(t, Options{})
	ctx := context.Background()
	br := d.bridge()

	args, err := d.prepareNetwork(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(args, "--bridge="+br) {
		t.Fatalf("dockerd args %v do not name %s", args, br)
	}
	subnet := assertNetworkUp(t, d)
	if _, err := d.prepareNetwork(ctx); err != nil {
		t.Fatalf("second prepare: %v", err)
	}
	if again := assertNetworkUp(t, d); again != subnet {
		t.Fatalf("second prepare moved the subnet %v → %v", subnet, again)
	}

	d.teardownNetwork(ctx)
	assertNetworkGone(t, br)
	d.teardownNetwork(ctx) // nothing left: a no-op
	assertNetworkGone(t, br)

	// The record outlives the bridge: the next start gets the same subnet.
	if _, err := d.prepareNetwork(ctx); err != nil {
		t.Fatal(err)
	}
	if again := assertNetworkUp(t, d); again != subnet {
		t.Fatalf("subnet after a teardown %v, want the recorded %v", again, subnet)
	}
	d.teardownNetwork(ctx)
	assertNetworkGone(t, br)
}

// TestNetworkLeftovers is what a crashed rdd leaves: the bridge with a
// wrong address, the NAT rule twice and one for an old subnet. The next
// prepare keeps one copy of each right rule and nothing else.
func TestNetworkLeftovers(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	d, _ := netTestDriver(t, Options{})
	ctx := context.Background()
	br := d.bridge()
	if _, err := d.prepareNetwork(ctx); err != nil {
		t.Fatal(err)
	}
	subnet := assertNetworkUp(t, d)

	mustRun(t, "ip", "addr", "add", "192.0.2.254/32", "dev", br)
	nat := natRules(br, subnet)[0]
	mustRun(t, "iptables", append([]string{"-w", "-t", "nat", "-A", "POSTROUTING"}, nat.spec...)...)
	stale := natRules(br, pfx("10.213.254.0/24"))[0]
	mustRun(t, "iptables", append([]string{"-w", "-t", "nat", "-I", "POSTROUTING"}, stale.spec...)...)
	mustRun(t, "iptables", "-w", "-D", "FORWARD", "-i", br, "-m", "comment", "--comment", ruleComment(br), "-j", "ACCEPT")
	if n := ourRules(t, "nat", "POSTROUTING", br); n != 3 {
		t.Fatalf("set-up: %d NAT rules, want 3", n)
	}

	if _, err := d.prepareNetwork(ctx); err != nil {
		t.Fatal(err)
	}
	if again := assertNetworkUp(t, d); again != subnet {
		t.Fatalf("subnet %v after leftovers, want %v", again, subnet)
	}
	specs, err := listRules(ctx, "iptables", "nat", "POSTROUTING", ruleComment(br))
	if err != nil || len(specs) != 1 || !slices.Equal(specs[0], nat.spec) {
		t.Fatalf("NAT rules %q (%v), want only %q", specs, err, nat.spec)
	}
}

// TestNetworkRecordedSubnetTaken: when something else now uses the recorded
// subnet, the next prepare moves to a free one instead of colliding.
func TestNetworkRecordedSubnetTaken(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	d, _ := netTestDriver(t, Options{})
	ctx := context.Background()
	if _, err := d.prepareNetwork(ctx); err != nil {
		t.Fatal(err)
	}
	subnet := assertNetworkUp(t, d)
	d.teardownNetwork(ctx)

	// Another interface takes the subnet while the instance is stopped. A
	// bridge, because it needs no kernel module beyond what rdd needs.
	other := "rddt-" + randomHex(t, 5)
	mustRun(t, "ip", "link", "add", "name", other, "type", "bridge")
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", "dev", other).Run() })
	mustRun(t, "ip", "addr", "add", netip.PrefixFrom(subnet.Addr().Next().Next(), 24).String(), "dev", other)

	if _, err := d.prepareNetwork(ctx); err != nil {
		t.Fatal(err)
	}
	moved := assertNetworkUp(t, d)
	if moved.Overlaps(subnet) {
		t.Fatalf("prepare kept %v although %s now has an address in it", moved, other)
	}
}

// TestNetworkNoneRemovesBridge: switching to RDD_HOST_NETWORK=none removes
// what an earlier bridge-mode start left, and creates nothing.
func TestNetworkNoneRemovesBridge(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	d, p := netTestDriver(t, Options{})
	ctx := context.Background()
	if _, err := d.prepareNetwork(ctx); err != nil {
		t.Fatal(err)
	}
	assertNetworkUp(t, d)
	none := newTestDriver(t, p, Options{Network: NetworkNone})
	args, err := none.prepareNetwork(ctx)
	if err != nil || !slices.Contains(args, "--bridge=none") {
		t.Fatalf("none: args %v, %v", args, err)
	}
	assertNetworkGone(t, d.bridge())
}

// TestMobyBridgeNetwork starts dockerd in bridge mode: it runs on the
// instance's bridge, and Stop and Delete leave no bridge, rule or record.
func TestMobyBridgeNetwork(t *testing.T) {
	requireRoot(t)
	requireBinary(t, "dockerd", "docker.io")
	requireBinary(t, "containerd", "containerd")
	t.Parallel()
	d, _ := netTestDriver(t, Options{})
	ctx := startCtx(t)
	br := d.bridge()

	info, err := d.Start(ctx, mobyCfg)
	if err != nil {
		t.Fatal(err)
	}
	assertNetworkUp(t, d)
	cmdline, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(info.PID), "cmdline"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"--bridge=" + br, "--ip=127.0.0.1", "--iptables=false"} {
		if !slices.Contains(strings.Split(string(cmdline), "\x00"), want) {
			t.Errorf("dockerd command line lacks %s: %q", want, cmdline)
		}
	}
	if err := d.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	assertNetworkGone(t, br)

	// A crashed engine leaves the network behind; Stop of the dead machine
	// removes it.
	if _, err := d.Start(ctx, mobyCfg); err != nil {
		t.Fatal(err)
	}
	killProcessesMentioning(t, d.p.Home)
	if !linkExists(br) {
		t.Fatal("the bridge went away with the engine; the leftover case is not exercised")
	}
	if err := d.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	assertNetworkGone(t, br)

	if info, err := d.Inspect(ctx); err != nil || info.Phase != vm.PhaseStopped {
		t.Fatalf("Inspect after Stop = %+v, %v", info, err)
	}
	if err := d.Delete(ctx); err != nil {
		t.Fatal(err)
	}
	if fileExists(d.netStateFile()) {
		t.Errorf("Delete kept %s", d.netStateFile())
	}
}

func mustRun(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, (n+1)/2)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)[:n]
}
