package e2e

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestHostNetworkPublishesOnLoopback runs a web server in a container of the
// instance's dockerd with `-p PORT:80`: it answers on 127.0.0.1:PORT and
// listens nowhere else; the instance's bridge and NAT rule exist while the
// engine runs and are gone after `rdd stop`. No test traffic leaves loopback
// and the bridge: outbound NAT is checked by its rule, never by sending.
func TestHostNetworkPublishesOnLoopback(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("the host driver's bridge network needs root")
	}
	var bridge string
	// Registered before newInstance so it runs after the instance's
	// teardown, which may have had to kill the engine instead of stopping it.
	t.Cleanup(func() { removeBridgeLeftovers(bridge) })
	in := newInstance(t)
	in.env = append(in.env, "RDD_HOST_NETWORK=bridge")
	in.must("start", "--timeout=3m")

	var ns struct{ Bridge, Subnet string }
	b, err := os.ReadFile(in.path(".local", "share", contextName, "engine", "network.json"))
	if err != nil {
		t.Fatalf("the instance records no network: %v", err)
	}
	if err := json.Unmarshal(b, &ns); err != nil || ns.Bridge == "" || ns.Subnet == "" {
		t.Fatalf("network record %s: %v", b, err)
	}
	bridge = ns.Bridge
	if _, err := os.Stat(filepath.Join("/sys/class/net", bridge, "bridge")); err != nil {
		t.Fatalf("bridge %s while running: %v", bridge, err)
	}
	if n := natRuleCount(t, bridge); n != 1 {
		t.Fatalf("%d NAT rules for %s while running, want 1", n, bridge)
	}

	ref := in.importBusybox()
	port := freeLoopbackPort(t)
	host := "unix://" + in.path(".rd2", "docker.sock")
	script := "mkdir -p /www && echo rdd-network-ok > /www/index.html && exec /bin/busybox httpd -f -p 80 -h /www"
	if out, err := in.docker("--host", host, "run", "-d", "--name", "web", "-p", fmt.Sprintf("%d:80", port), ref, "/bin/sh", "-c", script); err != nil {
		t.Fatalf("docker run -p %d:80: %v\n%s", port, err, out)
	}

	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	cli := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(time.Minute)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for ; ; <-tick.C {
		body, err := get(cli, url)
		if err == nil && strings.TrimSpace(body) == "rdd-network-ok" {
			break
		}
		if time.Now().After(deadline) {
			logs, _ := in.docker("--host", host, "logs", "web")
			t.Fatalf("GET %s: %q, %v; container log:\n%s", url, body, err, logs)
		}
	}

	addrs := tcpListenAddrs(t, port)
	if len(addrs) == 0 {
		t.Fatalf("nothing listens on port %d although it answered", port)
	}
	for _, a := range addrs {
		if a != "127.0.0.1" {
			t.Errorf("port %d listens on %s; published ports must bind 127.0.0.1 only (all: %v)", port, a, addrs)
		}
	}

	in.must("stop", "--timeout=2m")
	if _, err := os.Stat(filepath.Join("/sys/class/net", bridge)); !os.IsNotExist(err) {
		t.Errorf("bridge %s still exists after stop (stat: %v)", bridge, err)
	}
	if n := natRuleCount(t, bridge); n != 0 {
		t.Errorf("%d NAT rules for %s after stop, want 0", n, bridge)
	}
	if addrs := tcpListenAddrs(t, port); len(addrs) > 0 {
		t.Errorf("port %d still listens on %v after stop", port, addrs)
	}
}

func get(cli *http.Client, url string) (string, error) {
	resp, err := cli.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("status %s", resp.Status)
	}
	return string(b), err
}

// freeLoopbackPort returns a TCP port that was free on 127.0.0.1 a moment ago.
func freeLoopbackPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// tcpListenAddrs returns the local addresses of the sockets listening on
// port, read from /proc/net/tcp and tcp6 (so no connection is attempted to
// a non-loopback address).
func tcpListenAddrs(t *testing.T, port int) []string {
	t.Helper()
	var out []string
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			fs := strings.Fields(line)
			if len(fs) < 4 || fs[3] != "0A" { // 0A = TCP_LISTEN
				continue
			}
			hexAddr, hexPort, ok := strings.Cut(fs[1], ":")
			if p, err := strconv.ParseUint(hexPort, 16, 16); !ok || err != nil || int(p) != port {
				continue
			}
			out = append(out, procNetAddr(t, hexAddr))
		}
	}
	return out
}

// procNetAddr decodes an address of /proc/net/tcp{,6}: each 32-bit word
// printed as %08X of its value in host byte order.
func procNetAddr(t *testing.T, h string) string {
	t.Helper()
	raw := make([]byte, 0, len(h)/2)
	for w := 0; w+8 <= len(h); w += 8 {
		v, err := strconv.ParseUint(h[w:w+8], 16, 32)
		if err != nil {
			t.Fatalf("bad address %q in /proc/net/tcp", h)
		}
		raw = binary.NativeEndian.AppendUint32(raw, uint32(v))
	}
	return net.IP(raw).String()
}

// natRuleCount counts the POSTROUTING rules carrying rdd's comment for bridge.
func natRuleCount(t *testing.T, bridge string) int {
	t.Helper()
	out, err := exec.Command("iptables", "-w", "-t", "nat", "-S", "POSTROUTING").Output()
	if err != nil {
		t.Fatalf("iptables -t nat -S POSTROUTING: %v", err)
	}
	return strings.Count(string(out), `--comment "rdd:`+bridge+`"`)
}

// removeBridgeLeftovers removes the bridge and every rule rdd made for it,
// for when the test failed before rdd could.
func removeBridgeLeftovers(bridge string) {
	if bridge == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, tc := range [][2]string{{"nat", "POSTROUTING"}, {"filter", "FORWARD"}} {
		out, _ := exec.CommandContext(ctx, "iptables", "-w", "-t", tc[0], "-S", tc[1]).Output()
		for _, line := range strings.Split(string(out), "\n") {
			if !strings.Contains(line, `--comment "rdd:`+bridge+`"`) {
				continue
			}
			spec := strings.Fields(strings.ReplaceAll(line, `"`, ""))[2:]
			_ = exec.CommandContext(ctx, "iptables", append([]string{"-w", "-t", tc[0], "-D", tc[1]}, spec...)...).Run()
		}
	}
	_ = exec.CommandContext(ctx, "ip", "link", "del", "dev", bridge).Run()
}
