package kubetest

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// DirOptions configures StartInDir.
type DirOptions struct {
	// Dir holds the PKI, the logs and etcd's data (Dir/etcd). It outlives the
	// server, so a restart keeps the CA, the administrator certificate and
	// every object stored, as a k3s data directory does.
	Dir string
	// BindAddress is the API server's address; it must be a loopback IP
	// (nothing here may listen beyond the machine). Empty means 127.0.0.1.
	BindAddress string
	// Port is the API server's port; it is not retried when taken.
	Port int
	// ExtraAPIServerArgs are appended to kube-apiserver's flags.
	ExtraAPIServerArgs []string
	// ReadyTimeout bounds start-up; 0 means DefaultReadyTimeout.
	ReadyTimeout time.Duration
	// Logf receives progress lines; nil discards them.
	Logf func(format string, args ...any)
}

// ErrNotLoopback is returned by StartInDir for a bind address beyond loopback.
var ErrNotLoopback = errors.New("kubetest: bind address is not a loopback IP")

// StartInDir runs etcd and kube-apiserver with their files in opts.Dir and the
// API server on opts.BindAddress:opts.Port, and returns when /readyz answers
// 200. Unlike Start it does not pick ports or retry: a taken port fails at
// once with the listen error ("bind: address already in use"). Stop stops the
// processes and keeps Dir. Kubeconfig is empty; write one with
// WriteKubeconfig.
func StartInDir(ctx context.Context, opts DirOptions) (_ *Server, err error) {
	logf := opts.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	bind := opts.BindAddress
	if bind == "" {
		bind = "127.0.0.1"
	}
	ip := net.ParseIP(bind)
	if ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("%w: %q", ErrNotLoopback, bind)
	}
	readyTimeout := opts.ReadyTimeout
	if readyTimeout <= 0 {
		readyTimeout = DefaultReadyTimeout
	}
	deadline := time.Now().Add(readyTimeout)
	// Fail before starting anything, as k3s does when its listener cannot
	// bind; the API server would say the same only after etcd is up.
	addr := net.JoinHostPort(bind, strconv.Itoa(opts.Port))
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("kubetest: API server listener: %w", err)
	}
	_ = l.Close()

	etcdBin, err := FindEtcd()
	if err != nil {
		return nil, err
	}
	apiBin, err := FindAPIServer(ctx, func(s string) { logf("%s", s) })
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("kubetest: create %s: %w", opts.Dir, err)
	}
	s := &Server{Dir: opts.Dir, etcdDir: filepath.Join(opts.Dir, "etcd"), keepFiles: true}
	defer func() {
		if err != nil {
			_ = s.Stop()
		}
	}()
	if err := s.loadOrWritePKI(ip); err != nil {
		return nil, err
	}
	// etcd keeps its membership in its data directory and ignores the
	// initial-cluster flags on a restart, so fresh ports each time are fine.
	ports, err := freePorts(2)
	if err != nil {
		return nil, err
	}
	if err := s.run(ctx, etcdBin, apiBin, listeners{
		bind: bind, etcdClient: ports[0], etcdPeer: ports[1], apiserver: opts.Port,
		extraAPIArgs: opts.ExtraAPIServerArgs,
	}, deadline); err != nil {
		return nil, err
	}
	return s, nil
}

// APIServerPID is kube-apiserver's process id.
func (s *Server) APIServerPID() int { return s.apiserver.cmd.Process.Pid }

// EtcdPID is etcd's process id.
func (s *Server) EtcdPID() int { return s.etcd.cmd.Process.Pid }

// APIServerDone is closed once kube-apiserver has exited and been reaped.
func (s *Server) APIServerDone() <-chan struct{} { return s.apiserver.done }

// EtcdDone is closed once etcd has exited and been reaped.
func (s *Server) EtcdDone() <-chan struct{} { return s.etcd.done }

// APIServerExit describes how kube-apiserver ended and the end of its log;
// call it after APIServerDone is closed.
func (s *Server) APIServerExit() string {
	return fmt.Sprintf("kube-apiserver exited (%v); its log %s ends:\n%s", s.apiserver.err, s.apiserver.logPath, s.apiserver.logTail())
}

// EtcdExit is APIServerExit for etcd.
func (s *Server) EtcdExit() string {
	return fmt.Sprintf("etcd exited (%v); its log %s ends:\n%s", s.etcd.err, s.etcd.logPath, s.etcd.logTail())
}

// pkiFiles are what loadOrWritePKI keeps in Dir between starts.
var pkiFiles = []string{"ca.crt", "ca.key", "admin.crt", "admin.key", "server.crt", "server.key", "sa.key", "sa.pub"}

// pkiMinLife is how long reused certificates must still be valid; anything
// closer to expiry is regenerated (certValidity is a day).
const pkiMinLife = time.Hour

// loadOrWritePKI reuses the PKI a previous start left in Dir when it is
// complete, still valid and serves ip; otherwise it generates a new one and
// saves it, CA key included.
func (s *Server) loadOrWritePKI(ip net.IP) error {
	if s.loadPKI(ip) == nil {
		return nil
	}
	ca, err := NewAuthority("kubetest-ca")
	if err != nil {
		return err
	}
	serving, err := ca.issue(&x509.Certificate{
		Subject:     pkix.Name{CommonName: "kube-apiserver"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: uniqueIPs(net.IPv4(127, 0, 0, 1), ip),
		DNSNames:    []string{"localhost"},
	})
	if err != nil {
		return err
	}
	admin, err := ca.ClientCert("system:admin", "system:masters")
	if err != nil {
		return err
	}
	caKey, err := signerPEM(ca.Key)
	if err != nil {
		return err
	}
	saKey, saPub, err := newServiceAccountKey()
	if err != nil {
		return err
	}
	s.CA, s.Admin = ca, admin
	for name, data := range map[string][]byte{
		"ca.crt": ca.CertPEM, "ca.key": caKey,
		"admin.crt": admin.CertPEM, "admin.key": admin.KeyPEM,
		"server.crt": serving.CertPEM, "server.key": serving.KeyPEM,
		"sa.key": saKey, "sa.pub": saPub,
	} {
		if err := os.WriteFile(filepath.Join(s.Dir, name), data, 0o600); err != nil {
			return fmt.Errorf("kubetest: write %s: %w", name, err)
		}
	}
	return nil
}

func (s *Server) loadPKI(ip net.IP) error {
	files := map[string][]byte{}
	for _, name := range pkiFiles {
		b, err := os.ReadFile(filepath.Join(s.Dir, name))
		if err != nil {
			return err
		}
		files[name] = b
	}
	caCert, err := parseCertPEM(files["ca.crt"])
	if err != nil {
		return err
	}
	caKey, err := parseKeyPEM(files["ca.key"])
	if err != nil {
		return err
	}
	serving, err := parseCertPEM(files["server.crt"])
	if err != nil {
		return err
	}
	if err := serving.VerifyHostname(ip.String()); err != nil {
		return err
	}
	admin, err := parseCertPEM(files["admin.crt"])
	if err != nil {
		return err
	}
	soon := time.Now().Add(pkiMinLife)
	for _, c := range []*x509.Certificate{caCert, serving, admin} {
		if c.NotAfter.Before(soon) {
			return fmt.Errorf("certificate %s expires at %s", c.Subject.CommonName, c.NotAfter)
		}
	}
	s.CA = &Authority{Cert: caCert, Key: caKey, CertPEM: files["ca.crt"]}
	s.Admin = KeyPair{CertPEM: files["admin.crt"], KeyPEM: files["admin.key"]}
	return nil
}

func parseCertPEM(b []byte) (*x509.Certificate, error) {
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM certificate")
	}
	return x509.ParseCertificate(block.Bytes)
}

func parseKeyPEM(b []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "EC PRIVATE KEY" {
		return nil, errors.New("no PEM EC private key")
	}
	return x509.ParseECPrivateKey(block.Bytes)
}

func signerPEM(k crypto.Signer) ([]byte, error) {
	ec, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("kubetest: CA key is %T, not ECDSA", k)
	}
	return keyPEM(ec)
}

func uniqueIPs(ips ...net.IP) []net.IP {
	var out []net.IP
	for _, ip := range ips {
		dup := false
		for _, o := range out {
			dup = dup || bytes.Equal(o.To16(), ip.To16())
		}
		if !dup {
			out = append(out, ip)
		}
	}
	return out
}
