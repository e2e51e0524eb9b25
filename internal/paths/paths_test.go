package paths

import (
	"runtime"
	"strings"
	"testing"
)

func noEnv(string) string { return "" }

// Scenario 60 of behavior.md: the instance suffix drives every name and directory.
func TestResolveInstance(t *testing.T) {
	for _, tc := range []struct {
		instance string
		name     string
		short    string
		index    int
		port     int
	}{
		{"", "rancher-desktop-2", "/home/u/.rd2", 2, 7443},
		{"2", "rancher-desktop-2", "/home/u/.rd2", 2, 7443},
		{"99", "rancher-desktop-99", "/home/u/.rd99", 99, 7540},
		{"100", "rancher-desktop-100", "/home/u/.rd100", 100 + (49+48+48)%100, 7441 + 100 + (49+48+48)%100},
		{"bats", "rancher-desktop-bats", "/home/u/.rdbats", 126, 7567},
	} {
		p, err := Resolve(tc.instance, "/home/u", noEnv)
		if err != nil {
			t.Fatal(err)
		}
		if p.Name != tc.name || p.ShortDir != tc.short || p.Index != tc.index || p.PreferredK3sPort() != tc.port {
			t.Errorf("Resolve(%q) = name %s short %s index %d port %d, want %s %s %d %d",
				tc.instance, p.Name, p.ShortDir, p.Index, p.PreferredK3sPort(), tc.name, tc.short, tc.index, tc.port)
		}
		if p.Socket != p.ShortDir+"/rdd.sock" || p.DockerSocket != p.ShortDir+"/docker.sock" || p.KubeConfig != p.ShortDir+"/kube.config" {
			t.Errorf("sockets of %q not under %s: %+v", tc.instance, p.ShortDir, p)
		}
		if runtime.GOOS == "linux" && (p.EventLog != "/home/u/.local/share/"+tc.name+"/events.db" || p.DaemonLog != "/home/u/.local/state/"+tc.name+"/rdd.log") {
			t.Errorf("files of %q: %s, %s", tc.instance, p.EventLog, p.DaemonLog)
		}
	}
}

func TestLogDirOverride(t *testing.T) {
	p, err := Resolve("2", "/home/u", func(k string) string {
		if k == "RDD_LOG_DIR" {
			return "/var/log/rdd"
		}
		return ""
	})
	if err != nil {
		t.Fatal(err)
	}
	if p.DaemonLog != "/var/log/rdd/rdd.log" {
		t.Fatalf("RDD_LOG_DIR ignored: %s", p.DaemonLog)
	}
}

// A HOME so long that the socket path would not fit in sun_path is refused
// with a message that says what to do, instead of failing later at bind.
func TestSocketPathTooLong(t *testing.T) {
	_, err := Resolve("2", "/"+strings.Repeat("h", 100), noEnv)
	if err == nil || !strings.Contains(err.Error(), "shorter HOME") {
		t.Fatalf("err = %v, want a hint about the socket path length", err)
	}
}

// A HOME that fits rdd.sock but not containerd's ttrpc socket, the longest
// one of the instance, is refused naming that socket (issue 10).
func TestSocketPathCoversLongestSocket(t *testing.T) {
	suffix := len("/.rd2/containerd.sock.ttrpc")
	home := "/" + strings.Repeat("h", MaxSocketPath-suffix) // ttrpc socket: exactly 104 bytes
	_, err := Resolve("2", home, noEnv)
	if err == nil || !strings.Contains(err.Error(), "containerd.sock.ttrpc") || !strings.Contains(err.Error(), "shorter HOME") {
		t.Fatalf("err = %v, want it to name containerd.sock.ttrpc", err)
	}
	p, err := Resolve("2", home[:len(home)-1], noEnv)
	if err != nil {
		t.Fatalf("a HOME whose longest socket is %d bytes: %v", MaxSocketPath, err)
	}
	if got := len(p.ContainerdTTRPCSocket); got != MaxSocketPath {
		t.Fatalf("ttrpc socket is %d bytes, want %d", got, MaxSocketPath)
	}
	for _, s := range p.Sockets() {
		if len(s) > len(p.ContainerdTTRPCSocket) {
			t.Errorf("%s is longer than the ttrpc socket", s)
		}
	}
}

func TestMissingHome(t *testing.T) {
	if _, err := Resolve("2", "", noEnv); err == nil || !strings.Contains(err.Error(), "HOME") {
		t.Fatalf("err = %v, want it to name HOME", err)
	}
}
