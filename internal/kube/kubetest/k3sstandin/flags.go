package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// serverConfig is what `k3s server` flags mean to the stand-in.
type serverConfig struct {
	bindAddress    string
	httpsPort      int
	dataDir        string
	kubeconfig     string
	kubeconfigMode os.FileMode
	nodeName       string
	nodeLabels     []string
	disableAgent   bool
	apiArgs        []string
	// ignored names the flags given that configure nothing the stand-in runs.
	ignored []string

	modeText string
	disable  stringSlice
	rawAPI   stringSlice
	labels   stringSlice
	fs       *flag.FlagSet
}

// stringSlice is a repeatable flag, as urfave/cli's StringSliceFlag.
type stringSlice []string

func (s *stringSlice) String() string     { return strings.Join(*s, ",") }
func (s *stringSlice) Set(v string) error { *s = append(*s, v); return nil }

// used are the flags the stand-in acts on; every other defined flag is
// accepted (urfave/cli semantics: Go's flag package, so -x, --x, --x=v and
// --x v all work) and reported as ignored.
var used = map[string]bool{
	"bind-address": true, "https-listen-port": true, "data-dir": true, "d": true,
	"write-kubeconfig": true, "o": true, "write-kubeconfig-mode": true,
	"node-name": true, "node-label": true, "disable-agent": true,
	"kube-apiserver-arg": true, "disable": true, "debug": true,
}

// Flags of k3s server (pkg/cli/cmds/server.go and agent.go) that configure
// components the stand-in does not run. Booleans take no value.
var (
	ignoredStrings = []string{
		"advertise-address", "cluster-domain", "service-node-port-range", "flannel-backend",
		"flannel-iface", "flannel-conf", "flannel-cni-conf-file", "egress-selector-mode",
		"servicelb-namespace", "write-kubeconfig-group", "helm-job-image", "token", "t",
		"token-file", "agent-token", "agent-token-file", "server", "s", "cluster-reset-restore-path",
		"datastore-endpoint", "datastore-cafile", "datastore-certfile", "datastore-keyfile",
		"etcd-snapshot-name", "etcd-snapshot-schedule-cron", "etcd-snapshot-dir",
		"default-local-storage-path", "system-default-registry", "container-runtime-endpoint",
		"image-service-endpoint", "pause-image", "snapshotter", "private-registry",
		"node-ip", "i", "node-external-ip", "resolv-conf", "vmodule", "log", "l",
		"cni-bin-dir", "cni-conf-dir", "default-runtime", "lb-server-port",
		"image-credential-provider-bin-dir", "image-credential-provider-config",
	}
	ignoredInts  = []string{"advertise-port", "etcd-snapshot-retention", "v"}
	ignoredBools = []string{
		"flannel-ipv6-masq", "flannel-external-ip", "cluster-init", "cluster-reset",
		"etcd-expose-metrics", "etcd-disable-snapshots", "etcd-snapshot-compress",
		"disable-scheduler", "disable-cloud-controller", "disable-kube-proxy",
		"disable-network-policy", "disable-helm-controller", "disable-apiserver",
		"disable-controller-manager", "disable-etcd", "embedded-registry",
		"secrets-encryption", "enable-pprof", "docker", "prefer-bundled-bin",
		"protect-kernel-defaults", "selinux", "rootless", "with-node-id",
		"alsologtostderr", "tls-san-security", "disable-default-registry-endpoint",
	}
	ignoredSlices = []string{
		"tls-san", "cluster-cidr", "service-cidr", "cluster-dns", "etcd-arg",
		"kube-controller-manager-arg", "kube-scheduler-arg", "kube-cloud-controller-manager-arg",
		"kubelet-arg", "kube-proxy-arg", "node-taint", "node-external-ipv6",
	}
)

// ownedAPIArgs are kube-apiserver flags the stand-in sets itself: letting
// --kube-apiserver-arg change them could bind beyond loopback or point the
// server at another etcd.
var ownedAPIArgs = map[string]bool{
	"bind-address": true, "advertise-address": true, "secure-port": true,
	"etcd-servers": true, "client-ca-file": true, "tls-cert-file": true,
	"tls-private-key-file": true, "authorization-mode": true, "anonymous-auth": true,
}

func newServerFlags() (*serverConfig, *flag.FlagSet) {
	c := &serverConfig{}
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&c.bindAddress, "bind-address", "", "(listener) k3s bind address (stand-in: loopback only; default 127.0.0.1)")
	fs.IntVar(&c.httpsPort, "https-listen-port", 6443, "(listener) HTTPS listen port")
	for _, n := range []string{"data-dir", "d"} {
		fs.StringVar(&c.dataDir, n, "", "(data) Folder to hold state default /var/lib/rancher/k3s or ${HOME}/.rancher/k3s if not root")
	}
	for _, n := range []string{"write-kubeconfig", "o"} {
		fs.StringVar(&c.kubeconfig, n, os.Getenv("K3S_KUBECONFIG_OUTPUT"), "(client) Write kubeconfig for admin client to this file")
	}
	fs.StringVar(&c.modeText, "write-kubeconfig-mode", os.Getenv("K3S_KUBECONFIG_MODE"), "(client) Write kubeconfig with this mode")
	fs.StringVar(&c.nodeName, "node-name", os.Getenv("K3S_NODE_NAME"), "(agent/node) Node name")
	fs.Var(&c.labels, "node-label", "(agent/node) Registering and starting kubelet with set of labels")
	fs.BoolVar(&c.disableAgent, "disable-agent", false, "Do not run a local agent and register a local kubelet")
	fs.Var(&c.rawAPI, "kube-apiserver-arg", "(flags) Customized flag for kube-apiserver process")
	fs.Var(&c.disable, "disable", "(components) Do not deploy packaged components")
	fs.Bool("debug", false, "(logging) Turn on debug logs")
	fs.String("config", "", "(config) Load configuration from FILE (stand-in: refused)")
	fs.String("c", "", "(config) Load configuration from FILE (stand-in: refused)")
	for _, n := range ignoredStrings {
		fs.String(n, "", "ignored by the stand-in")
	}
	for _, n := range ignoredInts {
		fs.Int(n, 0, "ignored by the stand-in")
	}
	for _, n := range ignoredBools {
		fs.Bool(n, false, "ignored by the stand-in")
	}
	for _, n := range ignoredSlices {
		fs.Var(new(stringSlice), n, "ignored by the stand-in")
	}
	c.fs = fs
	return c, fs
}

// resolve checks the parsed flags and fills in k3s's defaults.
func (c *serverConfig) resolve() error {
	var configFile string
	c.fs.Visit(func(f *flag.Flag) {
		switch {
		case f.Name == "config" || f.Name == "c":
			configFile = f.Value.String()
		case !used[f.Name]:
			c.ignored = append(c.ignored, f.Name)
		}
	})
	if configFile != "" {
		return fmt.Errorf("the stand-in does not read config files (--config %s); pass flags", configFile)
	}
	sort.Strings(c.ignored)
	if c.bindAddress == "" {
		// k3s binds 0.0.0.0; the stand-in must never listen beyond loopback.
		c.bindAddress = "127.0.0.1"
	}
	if ip := net.ParseIP(c.bindAddress); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("--bind-address %s: the stand-in listens on loopback only", c.bindAddress)
	}
	if c.httpsPort <= 0 || c.httpsPort > 65535 {
		return fmt.Errorf("--https-listen-port %d out of range", c.httpsPort)
	}
	if c.dataDir == "" {
		c.dataDir = "/var/lib/rancher/k3s"
		if os.Geteuid() != 0 {
			home, err := os.UserHomeDir()
			if err != nil {
				return fmt.Errorf("default --data-dir: %w", err)
			}
			c.dataDir = filepath.Join(home, ".rancher", "k3s")
		}
	}
	abs, err := filepath.Abs(c.dataDir)
	if err != nil {
		return err
	}
	c.dataDir = abs
	if c.kubeconfig == "" {
		c.kubeconfig = "/etc/rancher/k3s/k3s.yaml"
	}
	c.kubeconfigMode = 0o600
	if c.modeText != "" {
		m, err := strconv.ParseUint(c.modeText, 8, 32)
		if err != nil || m > 0o777 {
			return fmt.Errorf("--write-kubeconfig-mode %q: not an octal file mode", c.modeText)
		}
		c.kubeconfigMode = os.FileMode(m)
	}
	if c.nodeName == "" {
		h, err := os.Hostname()
		if err != nil {
			return fmt.Errorf("default --node-name: %w", err)
		}
		c.nodeName = strings.ToLower(h)
	}
	for _, l := range c.labels {
		if k, _, ok := strings.Cut(l, "="); !ok || k == "" {
			return fmt.Errorf("--node-label %q: want key=value", l)
		}
	}
	c.nodeLabels = c.labels
	for _, a := range c.rawAPI {
		k, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if ownedAPIArgs[k] {
			return fmt.Errorf("--kube-apiserver-arg %s: the stand-in sets %s itself", a, k)
		}
		c.apiArgs = append(c.apiArgs, "--"+strings.TrimLeft(a, "-"))
	}
	return nil
}

func serverUsage(fs *flag.FlagSet) string {
	var b strings.Builder
	b.WriteString("NAME:\n   k3s server - Run management server\n\nUSAGE:\n   k3s server [OPTIONS]\n\nOPTIONS:\n")
	fs.VisitAll(func(f *flag.Flag) {
		if f.Usage == "ignored by the stand-in" {
			return
		}
		dash := "--"
		if len(f.Name) == 1 {
			dash = "-"
		}
		fmt.Fprintf(&b, "   %s%s\t%s\n", dash, f.Name, f.Usage)
	})
	b.WriteString("   (and k3s's other server flags, accepted and ignored)\n")
	return b.String()
}
