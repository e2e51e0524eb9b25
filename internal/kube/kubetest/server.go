package kubetest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// EntryName is the name k3s gives its cluster, user and context; the harness
// writes its kubeconfig the same way.
const EntryName = "default"

// serviceRange is the API server's --service-cluster-ip-range. Nothing here
// routes to service IPs (no kube-proxy, no kubelet), and a loopback range
// guarantees that even a stray connection could not leave the machine.
const serviceRange = "127.0.250.0/24"

// DefaultReadyTimeout bounds the wait for etcd and for /readyz. The server is
// ready after about 3 s on an idle machine; a busy shared one needs more.
const DefaultReadyTimeout = 90 * time.Second

// startAttempts covers the race between picking a free port and binding it.
const startAttempts = 3

// Options configures Start.
type Options struct {
	// Logf receives progress lines (the binary search, a build); nil discards them.
	Logf func(format string, args ...any)
	// ReadyTimeout bounds start-up; 0 means DefaultReadyTimeout.
	ReadyTimeout time.Duration
}

// Server is a running kube-apiserver backed by its own etcd, both bound to
// 127.0.0.1, with TLS from a CA the harness generated, client-certificate
// authentication, anonymous requests refused and every authenticated request
// authorised. Its fields are read-only after Start.
type Server struct {
	// Dir holds certificates, logs and Kubeconfig; removed by Stop.
	Dir string
	// URL is https://127.0.0.1:<port>.
	URL string
	// Kubeconfig is a file shaped like k3s's: cluster, user and context all
	// named "default", embedded CA and administrator client certificate.
	Kubeconfig string
	// CA signs the serving and client certificates the server trusts.
	CA *Authority
	// Admin is the administrator's client certificate (group system:masters).
	Admin KeyPair

	etcdDir   string
	etcd      *process
	apiserver *process
	// keepFiles: Dir and etcdDir belong to the caller (StartInDir), so Stop
	// leaves them for the next start.
	keepFiles bool

	stopOnce sync.Once
	stopErr  error

	foreignOnce sync.Once
	foreign     KeyPair
	foreignErr  error

	clientOnce sync.Once
	client     kubernetes.Interface
	clientErr  error
}

// Start runs etcd and kube-apiserver and returns when /readyz answers 200.
// The caller must call Stop. Binaries are found with FindEtcd and
// FindAPIServer (which may build kube-apiserver).
func Start(ctx context.Context, opts Options) (*Server, error) {
	logf := opts.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	etcdBin, err := FindEtcd()
	if err != nil {
		return nil, err
	}
	apiBin, err := FindAPIServer(ctx, func(s string) { logf("%s", s) })
	if err != nil {
		return nil, err
	}
	var lastErr error
	for range startAttempts {
		s, err := start(ctx, etcdBin, apiBin, opts)
		if err == nil {
			return s, nil
		}
		lastErr = err
		if !errors.Is(err, errPortTaken) {
			break
		}
		logf("kubetest: %v; retrying with other ports", err)
	}
	return nil, lastErr
}

func start(ctx context.Context, etcdBin, apiBin string, opts Options) (_ *Server, err error) {
	readyTimeout := opts.ReadyTimeout
	if readyTimeout <= 0 {
		readyTimeout = DefaultReadyTimeout
	}
	sweepStale()
	dir, err := makeOwnedTemp(os.TempDir(), dirPrefix)
	if err != nil {
		return nil, fmt.Errorf("kubetest: create temp dir: %w", err)
	}
	s := &Server{Dir: dir, etcdDir: filepath.Join(dir, "etcd")}
	if fi, err := os.Stat(shmDir); err == nil && fi.IsDir() {
		// etcd fsyncs every write; tmpfs makes that free on a shared disk.
		if d, err := makeOwnedTemp(shmDir, etcdDirPrefix); err == nil {
			s.etcdDir = d
		}
	}
	defer func() {
		if err != nil {
			_ = s.Stop()
		}
	}()
	if err := s.writePKI(); err != nil {
		return nil, err
	}
	ports, err := freePorts(3)
	if err != nil {
		return nil, err
	}
	if err := s.run(ctx, etcdBin, apiBin, listeners{
		bind: "127.0.0.1", etcdClient: ports[0], etcdPeer: ports[1], apiserver: ports[2],
	}, time.Now().Add(readyTimeout)); err != nil {
		return nil, err
	}
	s.Kubeconfig = filepath.Join(dir, "k3s.yaml")
	if err := s.WriteKubeconfig(s.Kubeconfig, CredAdmin); err != nil {
		return nil, err
	}
	return s, nil
}

// listeners are the loopback address and ports of one server's processes.
type listeners struct {
	bind                            string
	etcdClient, etcdPeer, apiserver int
	// extraAPIArgs are appended to kube-apiserver's flags (pflag: last wins).
	extraAPIArgs []string
}

// run starts etcd on s.etcdDir and kube-apiserver with the PKI in s.Dir, and
// returns once /readyz answers 200. On error the caller stops s.
func (s *Server) run(ctx context.Context, etcdBin, apiBin string, l listeners, deadline time.Time) (err error) {
	dir := s.Dir
	clientURL := "http://127.0.0.1:" + strconv.Itoa(l.etcdClient)
	peerURL := "http://127.0.0.1:" + strconv.Itoa(l.etcdPeer)
	s.URL = "https://" + net.JoinHostPort(l.bind, strconv.Itoa(l.apiserver))

	s.etcd, err = startProcess("etcd", etcdBin, []string{
		"--name=kubetest",
		"--data-dir=" + filepath.Join(s.etcdDir, "data"),
		"--listen-client-urls=" + clientURL,
		"--advertise-client-urls=" + clientURL,
		"--listen-peer-urls=" + peerURL,
		"--initial-advertise-peer-urls=" + peerURL,
		"--initial-cluster=kubetest=" + peerURL,
		"--initial-cluster-state=new",
		"--logger=zap",
		"--log-outputs=stderr",
		"--log-level=warn",
	}, filepath.Join(dir, "etcd.log"), "ETCD_")
	if err != nil {
		return err
	}
	if err := waitReady(ctx, s.etcd, deadline, &http.Client{Timeout: 2 * time.Second}, clientURL+"/health"); err != nil {
		return portRace(s.etcd, err)
	}

	p := func(name string) string { return filepath.Join(dir, name) }
	args := []string{
		"--etcd-servers=" + clientURL,
		"--bind-address=" + l.bind,
		"--advertise-address=" + l.bind,
		"--secure-port=" + strconv.Itoa(l.apiserver),
		"--cert-dir=" + p("certs"),
		"--tls-cert-file=" + p("server.crt"),
		"--tls-private-key-file=" + p("server.key"),
		"--client-ca-file=" + p("ca.crt"),
		"--anonymous-auth=false",
		"--authorization-mode=AlwaysAllow",
		"--service-account-issuer=https://kubernetes.default.svc",
		"--service-account-key-file=" + p("sa.pub"),
		"--service-account-signing-key-file=" + p("sa.key"),
		"--service-cluster-ip-range=" + serviceRange,
		// The endpoint reconciler would publish 127.0.0.1 as the kubernetes
		// service's endpoint, which validation rejects; nothing needs it.
		"--endpoint-reconciler-type=none",
		"--enable-priority-and-fairness=false",
		"--profiling=false",
		"--v=1",
	}
	s.apiserver, err = startProcess("kube-apiserver", apiBin, append(args, l.extraAPIArgs...), p("kube-apiserver.log"), "KUBE")
	if err != nil {
		return err
	}
	hc, err := s.adminHTTPClient()
	if err != nil {
		return err
	}
	if err := waitReady(ctx, s.apiserver, deadline, hc, s.URL+"/readyz"); err != nil {
		return portRace(s.apiserver, err)
	}
	return nil
}

// writePKI generates the CA, serving, administrator and service-account keys.
func (s *Server) writePKI() error {
	ca, err := NewAuthority("kubetest-ca")
	if err != nil {
		return err
	}
	serving, err := ca.ServerCert()
	if err != nil {
		return err
	}
	admin, err := ca.ClientCert("kubetest-admin", "system:masters")
	if err != nil {
		return err
	}
	saKey, saPub, err := newServiceAccountKey()
	if err != nil {
		return err
	}
	s.CA, s.Admin = ca, admin
	for name, data := range map[string][]byte{
		"ca.crt": ca.CertPEM, "server.crt": serving.CertPEM, "server.key": serving.KeyPEM,
		"sa.key": saKey, "sa.pub": saPub,
	} {
		if err := os.WriteFile(filepath.Join(s.Dir, name), data, 0o600); err != nil {
			return fmt.Errorf("kubetest: write %s: %w", name, err)
		}
	}
	return nil
}

// adminHTTPClient trusts the CA and presents the administrator certificate.
func (s *Server) adminHTTPClient() (*http.Client, error) {
	cert, err := tls.X509KeyPair(s.Admin.CertPEM, s.Admin.KeyPEM)
	if err != nil {
		return nil, fmt.Errorf("kubetest: load admin key pair: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(s.CA.Cert)
	return &http.Client{
		Timeout: 2 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig:   &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}},
			DisableKeepAlives: true,
		},
	}, nil
}

// waitReady polls url until it answers 200, p exits, ctx ends or deadline passes.
func waitReady(ctx context.Context, p *process, deadline time.Time, hc *http.Client, url string) error {
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	last := "no answer yet"
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return fmt.Errorf("kubetest: %s readiness request: %w", p.name, err)
		}
		resp, err := hc.Do(req)
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		select {
		case <-p.done:
			return fmt.Errorf("kubetest: %s exited before %s answered 200 (%v); its log %s ends:\n%s", p.name, url, p.err, p.logPath, p.logTail())
		case <-ctx.Done():
			return fmt.Errorf("kubetest: %s not ready at %s before the deadline (last: %s); its log %s ends:\n%s", p.name, url, last, p.logPath, p.logTail())
		case <-tick.C:
		}
	}
}

// portRace marks err as errPortTaken when p lost its port to another process.
func portRace(p *process, err error) error {
	if strings.Contains(p.logTail(), "address already in use") {
		return fmt.Errorf("%w: %w", errPortTaken, err)
	}
	return err
}

// Stop stops kube-apiserver and etcd (SIGTERM to each process group, SIGKILL
// after a grace period), waits for them, and removes the temporary
// directories. It is idempotent.
func (s *Server) Stop() error {
	s.stopOnce.Do(func() {
		if s.apiserver != nil {
			s.apiserver.stop(stopGrace)
		}
		if s.etcd != nil {
			s.etcd.stop(stopGrace)
		}
		if s.keepFiles {
			return
		}
		var errs []error
		if s.etcdDir != "" && !strings.HasPrefix(s.etcdDir, s.Dir) {
			errs = append(errs, os.RemoveAll(s.etcdDir))
		}
		errs = append(errs, os.RemoveAll(s.Dir))
		s.stopErr = errors.Join(errs...)
	})
	return s.stopErr
}

// Kill SIGKILLs kube-apiserver and returns once it has been reaped, so its
// port refuses connections from then on. etcd and the files stay until Stop.
func (s *Server) Kill() {
	s.apiserver.signal(syscall.SIGKILL)
	<-s.apiserver.done
}

// RESTConfig is an administrator client config for the server.
func (s *Server) RESTConfig() *rest.Config {
	return &rest.Config{
		Host: s.URL,
		TLSClientConfig: rest.TLSClientConfig{
			CAData:   s.CA.CertPEM,
			CertData: s.Admin.CertPEM,
			KeyData:  s.Admin.KeyPEM,
		},
	}
}

// Client is a clientset for the server as administrator, built once.
func (s *Server) Client() (kubernetes.Interface, error) {
	s.clientOnce.Do(func() {
		s.client, s.clientErr = kubernetes.NewForConfig(s.RESTConfig())
	})
	return s.client, s.clientErr
}

// Credential selects the user entry of a kubeconfig the harness writes.
type Credential string

// Credentials for Kubeconfig and WriteKubeconfig.
const (
	// CredAdmin is the administrator certificate the server trusts.
	CredAdmin Credential = "admin"
	// CredForeignCA is a certificate from a CA the server does not trust: the
	// TLS handshake succeeds and every request gets 401.
	CredForeignCA Credential = "foreign-ca"
	// CredNone presents no certificate: with anonymous auth off, 401.
	CredNone Credential = "none"
)

// KubeconfigBytes returns a k3s-shaped kubeconfig (cluster, user and context
// "default", current-context "default") for the server with cred as its user.
func (s *Server) KubeconfigBytes(cred Credential) ([]byte, error) {
	user := clientcmdapi.NewAuthInfo()
	switch cred {
	case CredAdmin:
		user.ClientCertificateData, user.ClientKeyData = s.Admin.CertPEM, s.Admin.KeyPEM
	case CredForeignCA:
		kp, err := s.foreignCert()
		if err != nil {
			return nil, err
		}
		user.ClientCertificateData, user.ClientKeyData = kp.CertPEM, kp.KeyPEM
	case CredNone:
	default:
		return nil, fmt.Errorf("kubetest: unknown credential %q", cred)
	}
	cluster := clientcmdapi.NewCluster()
	cluster.Server = s.URL
	cluster.CertificateAuthorityData = s.CA.CertPEM
	kctx := clientcmdapi.NewContext()
	kctx.Cluster, kctx.AuthInfo = EntryName, EntryName
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[EntryName] = cluster
	cfg.AuthInfos[EntryName] = user
	cfg.Contexts[EntryName] = kctx
	cfg.CurrentContext = EntryName
	return clientcmd.Write(*cfg)
}

// WriteKubeconfig writes KubeconfigBytes(cred) to path with mode 0600.
func (s *Server) WriteKubeconfig(path string, cred Credential) error {
	b, err := s.KubeconfigBytes(cred)
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return fmt.Errorf("kubetest: write kubeconfig %s: %w", path, err)
	}
	return nil
}

func (s *Server) foreignCert() (KeyPair, error) {
	s.foreignOnce.Do(func() {
		ca, err := NewAuthority("kubetest-foreign-ca")
		if err != nil {
			s.foreignErr = err
			return
		}
		s.foreign, s.foreignErr = ca.ClientCert("kubetest-admin", "system:masters")
	})
	return s.foreign, s.foreignErr
}
