package host

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"
)

// Network modes of Options.Network (RDD_HOST_NETWORK).
const (
	// NetworkBridge gives the instance's dockerd a bridge of its own with
	// outbound NAT; published ports bind to 127.0.0.1 by default.
	NetworkBridge = "bridge"
	// NetworkNone keeps containers off the network (dockerd --bridge=none).
	NetworkNone = "none"
)

// netOpTimeout bounds one network setup or teardown when the caller's ctx
// has no earlier deadline: ip and iptables answer in milliseconds unless
// something holds the xtables lock.
const netOpTimeout = 30 * time.Second

// netLockFile serialises subnet choice and bridge creation across every rdd
// on the host, so two instances starting at once never pick the same subnet.
const netLockFile = "/run/rdd-host-network.lock"

// subnetPools are searched in order for a free /24. Docker's own default
// pools (172.17.0.0/16 … 172.31.0.0/16, 192.168.0.0/16 in /20s from
// 192.168.0.0) and k3s's 10.42/16 and 10.43/16 are not in them, so a system
// dockerd or k3s that starts later does not pick our subnet either.
var subnetPools = []netip.Prefix{
	netip.MustParsePrefix("10.213.0.0/16"),
	netip.MustParsePrefix("192.168.216.0/21"),
}

// alwaysAvoid is treated as in use even when nothing routes it yet: the
// system docker0 may be created after us.
var alwaysAvoid = []netip.Prefix{
	netip.MustParsePrefix("172.17.0.0/16"),
}

// netState is D/engine/network.json. It lives in the data root, not in the
// runtime state, so the subnet stays the same across stops and restarts;
// Delete removes it with the data root.
type netState struct {
	V      int    `json:"v"`
	Bridge string `json:"bridge"`
	Subnet string `json:"subnet"`
}

// networkMode validates Options.Network.
func networkMode(s string) (string, error) {
	switch s {
	case "", NetworkBridge:
		return NetworkBridge, nil
	case NetworkNone:
		return NetworkNone, nil
	}
	return "", fmt.Errorf("host: RDD_HOST_NETWORK=%q is not %q or %q", s, NetworkBridge, NetworkNone)
}

// bridgeName is the instance's bridge: "rdd-", up to 4 characters of the
// instance suffix (lower-case letters and digits only), "-", and 6 hex
// digits of the SHA-256 of the engine data root, 15 characters at most
// (IFNAMSIZ-1). The hash is of the data root rather than the instance name
// because two users (or two HOMEs) may both run instance "2" on one host.
func bridgeName(instance, dataRoot string) string {
	short := make([]byte, 0, 4)
	for _, r := range strings.ToLower(instance) {
		if len(short) == cap(short) {
			break
		}
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			short = append(short, byte(r))
		}
	}
	sum := sha256.Sum256([]byte(dataRoot))
	h := hex.EncodeToString(sum[:3])
	if len(short) == 0 {
		return "rdd-" + h
	}
	return "rdd-" + string(short) + "-" + h
}

// ruleComment marks every iptables rule rdd adds for bridge, so cleanup
// finds exactly this instance's rules (and counts them in tests).
func ruleComment(bridge string) string { return "rdd:" + bridge }

// dockerdNetworkArgs is dockerd's network flags. In both modes dockerd
// leaves the host alone (no iptables rules, no sysctls): rdd owns the bridge
// and the NAT rule, so a system dockerd's chains are never touched. Ports
// are published by dockerd's userland proxy, which needs no iptables, on
// 127.0.0.1 unless `-p ADDR:…` names another address.
func dockerdNetworkArgs(mode, bridge string) []string {
	first := []string{"--bridge=none"}
	if mode == NetworkBridge {
		first = []string{"--bridge=" + bridge, "--ip=127.0.0.1", "--userland-proxy=true"}
	}
	return append(first, "--iptables=false", "--ip6tables=false", "--ip-forward=false", "--ip-masq=false")
}

func (d *Driver) bridge() string       { return bridgeName(d.p.Instance, d.l.dataRoot) }
func (d *Driver) netStateFile() string { return filepath.Join(d.l.dataRoot, "network.json") }

// prepareNetwork makes the instance's network ready for dockerd and returns
// dockerd's network flags. In bridge mode it (re)uses the bridge, its
// subnet and its rules, replacing whatever a crashed rdd left that no longer
// fits, so nothing is ever duplicated.
func (d *Driver) prepareNetwork(ctx context.Context) ([]string, error) {
	mode, err := networkMode(d.opts.Network)
	if err != nil {
		return nil, err
	}
	br := d.bridge()
	if mode == NetworkNone {
		// A bridge left from an earlier start in bridge mode would be
		// orphaned: nothing else removes it once the mode is none.
		d.teardownNetwork(ctx)
		return dockerdNetworkArgs(mode, br), nil
	}
	ipBin, err := lookBinary("ip", "", "iproute2")
	if err != nil {
		return nil, err
	}
	iptBin, err := lookBinary("iptables", "", "iptables")
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, netOpTimeout)
	defer cancel()
	unlock, err := lockHostNetwork(ctx)
	if err != nil {
		return nil, fmt.Errorf("host: %w (the bridge network needs root; RDD_HOST_NETWORK=none does without)", err)
	}
	defer unlock()

	var prev netip.Prefix
	if ns, ok := readNetState(d.netStateFile()); ok && ns.Bridge == br {
		prev, _ = netip.ParsePrefix(ns.Subnet)
	}
	used, err := hostPrefixes(br)
	if err != nil {
		return nil, fmt.Errorf("host: network: %w", err)
	}
	sum := sha256.Sum256([]byte(d.l.dataRoot))
	subnet, err := chooseSubnet(prev, append(used, alwaysAvoid...), binary.BigEndian.Uint32(sum[:4]))
	if err != nil {
		return nil, fmt.Errorf("host: network: %w; set RDD_HOST_NETWORK=none to run without one", err)
	}
	if prev.IsValid() && prev != subnet {
		d.log.Warn("recorded subnet now collides with the host's; choosing another",
			zap.String("bridge", br), zap.Stringer("was", prev), zap.Stringer("now", subnet))
	}
	// Recorded before the rules exist, so a teardown after a crash at any
	// later point knows there is something to remove.
	if err := writeNetState(d.netStateFile(), netState{Bridge: br, Subnet: subnet.String()}); err != nil {
		return nil, fmt.Errorf("host: network: %w", err)
	}
	if err := ensureBridge(ctx, ipBin, br, netip.PrefixFrom(subnet.Addr().Next(), subnet.Bits())); err != nil {
		return nil, fmt.Errorf("host: network (as root, or set RDD_HOST_NETWORK=none): %w", err)
	}
	if err := syncRules(ctx, iptBin, br, natRules(br, subnet)); err != nil {
		return nil, fmt.Errorf("host: network: %w", err)
	}
	if err := enableForwarding(); err != nil {
		return nil, fmt.Errorf("host: network: %w", err)
	}
	d.log.Info("bridge network ready", zap.String("bridge", br), zap.Stringer("subnet", subnet))
	return dockerdNetworkArgs(mode, br), nil
}

// teardownNetwork removes the instance's bridge and its iptables rules, if
// any. The subnet record stays, so the next start gets the same subnet.
// Failures are logged, not returned: the machine is stopped either way, and
// the next prepareNetwork replaces what is left.
func (d *Driver) teardownNetwork(ctx context.Context) {
	br := d.bridge()
	_, stateErr := os.Stat(d.netStateFile())
	_, linkErr := os.Stat(filepath.Join("/sys/class/net", br))
	if stateErr != nil && linkErr != nil {
		return // never had a network: skip running iptables at all
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), netOpTimeout)
	defer cancel()
	unlock, err := lockHostNetwork(ctx)
	if err != nil {
		d.log.Warn("cannot remove the bridge network", zap.String("bridge", br), zap.Error(err))
		return
	}
	defer unlock()
	var errs []error
	if iptBin, err := exec.LookPath("iptables"); err == nil {
		errs = append(errs, syncRules(ctx, iptBin, br, nil))
	}
	if linkErr == nil {
		if ipBin, err := lookBinary("ip", "", "iproute2"); err != nil {
			errs = append(errs, err)
		} else if err := runTool(ctx, ipBin, "link", "del", "dev", br); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		d.log.Warn("cannot remove the bridge network", zap.String("bridge", br), zap.Error(err))
		return
	}
	d.log.Info("bridge network removed", zap.String("bridge", br))
}

// lockHostNetwork takes netLockFile's flock, polling so ctx can end the wait.
func lockHostNetwork(ctx context.Context) (unlock func(), err error) {
	f, err := os.OpenFile(netLockFile, os.O_CREATE|os.O_RDWR|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("network lock: %w", err)
	}
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { _ = f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			_ = f.Close()
			return nil, fmt.Errorf("network lock %s: %w", netLockFile, err)
		}
		select {
		case <-ctx.Done():
			_ = f.Close()
			return nil, fmt.Errorf("network lock %s held by another rdd: %w", netLockFile, ctx.Err())
		case <-t.C:
		}
	}
}

// chooseSubnet returns prev when it is valid and overlaps nothing in used,
// else the first /24 of subnetPools that overlaps nothing, starting each
// pool at an offset derived from seed so instances rarely contend.
func chooseSubnet(prev netip.Prefix, used []netip.Prefix, seed uint32) (netip.Prefix, error) {
	free := func(c netip.Prefix) bool {
		for _, u := range used {
			if u.Overlaps(c) {
				return false
			}
		}
		return true
	}
	if prev.IsValid() && prev.Addr().Is4() && free(prev) {
		return prev.Masked(), nil
	}
	for _, pool := range subnetPools {
		n := uint32(1) << (24 - pool.Bits())
		base := binary.BigEndian.Uint32(pool.Addr().AsSlice())
		for i := range n {
			var b [4]byte
			binary.BigEndian.PutUint32(b[:], base+((seed+i)%n)<<8)
			if c := netip.PrefixFrom(netip.AddrFrom4(b), 24); free(c) {
				return c, nil
			}
		}
	}
	return netip.Prefix{}, fmt.Errorf("no free /24 in %v: every one overlaps a route or an interface address", subnetPools)
}

// hostPrefixes lists the IPv4 networks in use on the host: route
// destinations (not default routes, which overlap everything) and interface
// networks, except those of skipIface (our own bridge, when it is left over).
func hostPrefixes(skipIface string) ([]netip.Prefix, error) {
	f, err := os.Open("/proc/net/route")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	used, err := parseRoutes(f, skipIface)
	if err != nil {
		return nil, err
	}
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("list interfaces: %w", err)
	}
	for _, ifc := range ifs {
		if ifc.Name == skipIface {
			continue
		}
		addrs, err := ifc.Addrs()
		if err != nil {
			return nil, fmt.Errorf("addresses of %s: %w", ifc.Name, err)
		}
		used = append(used, ipv4Networks(addrs)...)
	}
	return used, nil
}

// ipv4Networks returns the IPv4 networks of addrs.
func ipv4Networks(addrs []net.Addr) []netip.Prefix {
	var out []netip.Prefix
	for _, a := range addrs {
		n, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, ok := netip.AddrFromSlice(n.IP)
		ones, size := n.Mask.Size()
		if !ok || !ip.Unmap().Is4() || size != 32 {
			continue
		}
		out = append(out, netip.PrefixFrom(ip.Unmap(), ones).Masked())
	}
	return out
}

// parseRoutes reads /proc/net/route: one route a line, destination and mask
// as %08X of the address in host byte order.
func parseRoutes(r io.Reader, skipIface string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	sc := bufio.NewScanner(r)
	for first := true; sc.Scan(); first = false {
		f := strings.Fields(sc.Text())
		if first || len(f) < 8 || f[0] == skipIface {
			continue
		}
		dst, err1 := strconv.ParseUint(f[1], 16, 32)
		mask, err2 := strconv.ParseUint(f[7], 16, 32)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("/proc/net/route: cannot parse %q", sc.Text())
		}
		var d, m [4]byte
		binary.NativeEndian.PutUint32(d[:], uint32(dst))
		binary.NativeEndian.PutUint32(m[:], uint32(mask))
		mv := binary.BigEndian.Uint32(m[:])
		ones := bits.OnesCount32(mv)
		if ones == 0 {
			continue
		}
		if mv != ^uint32(0)<<(32-ones) {
			return nil, fmt.Errorf("/proc/net/route: non-contiguous mask in %q", sc.Text())
		}
		out = append(out, netip.PrefixFrom(netip.AddrFrom4(d), ones).Masked())
	}
	return out, sc.Err()
}

// ensureBridge makes name a bridge that is up and carries exactly gw (the
// subnet's first address, which dockerd uses as the containers' gateway).
func ensureBridge(ctx context.Context, ipBin, name string, gw netip.Prefix) error {
	if _, err := os.Stat(filepath.Join("/sys/class/net", name)); err == nil {
		if _, err := os.Stat(filepath.Join("/sys/class/net", name, "bridge")); err != nil {
			return fmt.Errorf("interface %s exists and is not a bridge; remove it", name)
		}
	} else if err := runTool(ctx, ipBin, "link", "add", "name", name, "type", "bridge"); err != nil {
		return err
	}
	ifc, err := net.InterfaceByName(name)
	if err != nil {
		return fmt.Errorf("bridge %s: %w", name, err)
	}
	addrs, err := ifc.Addrs()
	if err != nil {
		return fmt.Errorf("addresses of %s: %w", name, err)
	}
	var have []netip.Prefix
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(n.IP); ok && ip.Unmap().Is4() {
				ones, _ := n.Mask.Size()
				have = append(have, netip.PrefixFrom(ip.Unmap(), ones))
			}
		}
	}
	if len(have) != 1 || have[0] != gw {
		if err := runTool(ctx, ipBin, "-4", "addr", "flush", "dev", name); err != nil {
			return err
		}
		if err := runTool(ctx, ipBin, "addr", "add", gw.String(), "dev", name); err != nil {
			return err
		}
	}
	return runTool(ctx, ipBin, "link", "set", "dev", name, "up")
}

// ipRule is one iptables rule: table, chain and the rule spec as
// `iptables -S` prints it (which is the order natRules writes it in).
type ipRule struct {
	table, chain string
	spec         []string
}

// natRules are the rules of bridge mode: MASQUERADE for exactly the subnet
// leaving by any other interface, and FORWARD accepts for the bridge, needed
// where a FORWARD policy of DROP is set (a system dockerd sets one).
func natRules(bridge string, subnet netip.Prefix) []ipRule {
	c := ruleComment(bridge)
	return []ipRule{
		{"nat", "POSTROUTING", []string{"-s", subnet.String(), "!", "-o", bridge, "-m", "comment", "--comment", c, "-j", "MASQUERADE"}},
		{"filter", "FORWARD", []string{"-i", bridge, "-m", "comment", "--comment", c, "-j", "ACCEPT"}},
		{"filter", "FORWARD", []string{"-o", bridge, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-m", "comment", "--comment", c, "-j", "ACCEPT"}},
	}
}

// ruleChains are the chains rdd ever adds rules to.
var ruleChains = [][2]string{{"nat", "POSTROUTING"}, {"filter", "FORWARD"}}

// syncRules makes the rules carrying bridge's comment exactly want: stale
// and duplicate ones are deleted, missing ones appended. want nil removes
// them all.
func syncRules(ctx context.Context, iptBin, bridge string, want []ipRule) error {
	c := ruleComment(bridge)
	for _, tc := range ruleChains {
		have, err := listRules(ctx, iptBin, tc[0], tc[1], c)
		if err != nil {
			return err
		}
		wanted := map[string]bool{}
		for _, r := range want {
			if r.table == tc[0] && r.chain == tc[1] {
				wanted[strings.Join(r.spec, " ")] = true
			}
		}
		present := map[string]bool{}
		for _, spec := range have {
			key := strings.Join(spec, " ")
			if wanted[key] && !present[key] {
				present[key] = true
				continue
			}
			if err := runTool(ctx, iptBin, append([]string{"-w", "-t", tc[0], "-D", tc[1]}, spec...)...); err != nil {
				return err
			}
		}
		for _, r := range want {
			if r.table != tc[0] || r.chain != tc[1] || present[strings.Join(r.spec, " ")] {
				continue
			}
			if err := runTool(ctx, iptBin, append([]string{"-w", "-t", r.table, "-A", r.chain}, r.spec...)...); err != nil {
				return err
			}
		}
	}
	return nil
}

// listRules returns the specs of the rules in table/chain whose comment is
// comment, as `iptables -S` prints them (quotes removed).
func listRules(ctx context.Context, iptBin, table, chain, comment string) ([][]string, error) {
	out, err := exec.CommandContext(ctx, iptBin, "-w", "-t", table, "-S", chain).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			err = fmt.Errorf("%w: %s", err, bytes.TrimSpace(ee.Stderr))
		}
		return nil, fmt.Errorf("iptables -t %s -S %s: %w", table, chain, err)
	}
	return parseRuleList(out, chain, comment), nil
}

// parseRuleList picks from `iptables -S chain` output the rules whose
// comment is comment. rdd's comments hold no spaces, so splitting on spaces
// and dropping quotes is exact for them.
func parseRuleList(out []byte, chain, comment string) [][]string {
	var specs [][]string
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 || f[0] != "-A" || f[1] != chain {
			continue
		}
		spec := f[2:]
		for i := range spec {
			spec[i] = strings.Trim(spec[i], `"`)
		}
		for i := 0; i+1 < len(spec); i++ {
			if spec[i] == "--comment" && spec[i+1] == comment {
				specs = append(specs, spec)
				break
			}
		}
	}
	return specs
}

// enableForwarding sets net.ipv4.ip_forward, without which NAT does
// nothing. It is never turned back off: other software (a system dockerd,
// another instance) may rely on it by then, as dockerd itself assumes.
func enableForwarding() error {
	const sysctl = "/proc/sys/net/ipv4/ip_forward"
	b, err := os.ReadFile(sysctl)
	if err == nil && strings.TrimSpace(string(b)) == "1" {
		return nil
	}
	if err := os.WriteFile(sysctl, []byte("1\n"), 0o644); err != nil {
		return fmt.Errorf("enable IPv4 forwarding: %w", err)
	}
	return nil
}

func readNetState(path string) (netState, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return netState{}, false
	}
	var ns netState
	if json.Unmarshal(b, &ns) != nil || ns.V != 1 {
		return netState{}, false
	}
	return ns, true
}

func writeNetState(path string, ns netState) error {
	ns.V = 1
	b, err := json.Marshal(ns)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// runTool runs an ip or iptables command and quotes its output on failure.
func runTool(ctx context.Context, bin string, args ...string) error {
	out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", filepath.Base(bin), strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}
