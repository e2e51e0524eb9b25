package kube

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"path"
	"strings"
	"sync"

	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/rdd-project/rdd/internal/userfile"
)

// Endpoint is how rdd reaches one Kubernetes API server: its address, TLS
// material and credentials, as kubectl derives them from a kubeconfig
// cluster and user. It stands in for client-go's rest.Config, whose package
// (with exec credential plugins, go-spew and more) would add its init to
// every rdd command, in the few plain HTTPS requests rdd makes: the probe,
// the node list, the liveness watch and the current-context probe.
//
// Like rest.Config it is data: files named here are read when a client is
// built (each Probe), and a TLS or credential problem surfaces there, not
// when the Endpoint is made. Credential plugins (exec, auth-provider) are not
// supported; the current-context policy never probes such users (F3), and a
// k3s kubeconfig has none.
type Endpoint struct {
	// Host is the cluster's server: a URL, possibly with a path prefix, or a
	// host:port pair, which means http unless TLS material is given.
	Host string

	// CAFile and CAData are the server's CA (data wins); without either the
	// system roots are used.
	CAFile string
	CAData []byte
	// CertFile/CertData and KeyFile/KeyData are the client certificate and
	// key (data wins). Both from files are re-read at each handshake.
	CertFile string
	CertData []byte
	KeyFile  string
	KeyData  []byte
	// Insecure skips verification of the server's certificate.
	Insecure bool
	// ServerName is the name the server's certificate is checked against.
	ServerName string

	// BearerToken is sent as "Authorization: Bearer <token>". When
	// BearerTokenFile is set, it is re-read for every request and its
	// trimmed content wins while it is readable and not empty.
	BearerToken     string
	BearerTokenFile string
	// Username and Password are basic authentication, used when Username is
	// set. Basic authentication and a bearer token exclude each other.
	Username string
	Password string

	// Proxy is the cluster's proxy-url; nil means the proxy environment.
	Proxy func(*http.Request) (*url.URL, error)
}

// EndpointFromFile builds the Endpoint of the cluster named by the kubeconfig
// at path (the k3s kubeconfig): its server, CA, client certificate and key,
// or bearer token, with relative file references resolved against the
// kubeconfig's directory. A missing file is a *FileError matching
// os.ErrNotExist, an unparsable one a *ParseError, missing entries a
// *SourceError; an invalid cluster or user is an error too.
func EndpointFromFile(path string) (*Endpoint, error) {
	cluster, user, err := readSource(path)
	if err != nil {
		return nil, err
	}
	const name = "rdd"
	ep, err := endpointFor(name, cluster, name, user)
	if err != nil {
		return nil, fmt.Errorf("build client config for %s: %w", cluster.Server, err)
	}
	return ep, nil
}

// endpointFor turns one cluster and user into an Endpoint the way
// clientcmd's DirectClientConfig.ClientConfig turns them into a rest.Config
// (client-go v0.34): the same validation (ConfirmUsable), proxy-url parsing
// and server URL clean-up, and credentials and TLS material only for an
// https server. user may be nil: a context naming a missing user has none.
func endpointFor(clusterName string, cluster *clientcmdapi.Cluster, userName string, user *clientcmdapi.AuthInfo) (*Endpoint, error) {
	c := *cluster
	u := clientcmdapi.AuthInfo{}
	if user != nil {
		u = *user
	}
	if err := confirmUsable(clusterName, &c, userName, &u); err != nil {
		return nil, err
	}
	ep := &Endpoint{Host: c.Server}
	if c.ProxyURL != "" {
		pu, err := parseProxyURL(c.ProxyURL)
		if err != nil {
			return nil, err
		}
		ep.Proxy = http.ProxyURL(pu)
	}
	if su, err := url.ParseRequestURI(ep.Host); err == nil && su.Opaque == "" && len(su.Path) > 1 {
		su.RawQuery = ""
		su.Fragment = ""
		ep.Host = su.String()
	}
	// clientcmd reads the user's credentials only when the server is https
	// (judged before any TLS material is known, so a bare host:port is http).
	if base, err := serverURL(ep.Host, false); err != nil || base.Scheme != "https" {
		return ep, nil
	}
	if len(u.Token) > 0 {
		ep.BearerToken, ep.BearerTokenFile = u.Token, u.TokenFile
	} else if len(u.TokenFile) > 0 {
		b, err := userfile.Read(u.TokenFile)
		if err != nil {
			return nil, err
		}
		ep.BearerToken, ep.BearerTokenFile = string(b), u.TokenFile
	}
	if len(u.ClientCertificate) > 0 || len(u.ClientCertificateData) > 0 {
		ep.CertFile, ep.CertData = u.ClientCertificate, u.ClientCertificateData
		ep.KeyFile, ep.KeyData = u.ClientKey, u.ClientKeyData
	}
	if len(u.Username) > 0 || len(u.Password) > 0 {
		ep.Username, ep.Password = u.Username, u.Password
	}
	if u.Exec != nil || u.AuthProvider != nil {
		return nil, fmt.Errorf("user %q needs a credential plugin (exec or auth-provider), which rdd does not run", userName)
	}
	ep.CAFile, ep.CAData = c.CertificateAuthority, c.CertificateAuthorityData
	ep.Insecure, ep.ServerName = c.InsecureSkipTLSVerify, c.TLSServerName
	return ep, nil
}

// parseProxyURL is clientcmd's: http, https and socks5 proxies only.
func parseProxyURL(proxyURL string) (*url.URL, error) {
	u, err := url.Parse(proxyURL)
	if err != nil {
		return nil, fmt.Errorf("could not parse: %v", proxyURL)
	}
	switch u.Scheme {
	case "http", "https", "socks5":
	default:
		return nil, fmt.Errorf("unsupported scheme %q, must be http, https, or socks5", u.Scheme)
	}
	return u, nil
}

// errEmptyCluster and errEmptyConfig are clientcmd's ErrEmptyCluster and
// ErrEmptyConfig messages.
var (
	errEmptyCluster = errors.New("cluster has no server defined")
	errEmptyConfig  = errors.New("no configuration has been provided, try setting KUBERNETES_MASTER environment variable")
)

// invalidConfigError is clientcmd's errConfigurationInvalid: every problem
// ConfirmUsable found, in one message.
type invalidConfigError []error

func (e invalidConfigError) Error() string {
	return fmt.Sprintf("invalid configuration: %v", utilerrors.NewAggregate(e).Error())
}

func (e invalidConfigError) Unwrap() []error { return e }

// confirmUsable is clientcmd's DirectClientConfig.ConfirmUsable for a context
// that exists: the user's and the cluster's validation errors, all of them.
func confirmUsable(clusterName string, cluster *clientcmdapi.Cluster, userName string, user *clientcmdapi.AuthInfo) error {
	errs := validateAuthInfo(userName, user)
	errs = append(errs, validateClusterInfo(clusterName, cluster)...)
	if len(errs) == 1 && errs[0] == errEmptyCluster {
		errs = []error{errEmptyConfig}
	}
	if len(errs) == 0 {
		return nil
	}
	return invalidConfigError(errs)
}

// isEmptyCluster reports whether c equals clientcmdapi.NewCluster() once
// merged into one, as clientcmd compares it.
func isEmptyCluster(c *clientcmdapi.Cluster) bool {
	return c.LocationOfOrigin == "" && c.Server == "" && c.TLSServerName == "" &&
		!c.InsecureSkipTLSVerify && c.CertificateAuthority == "" &&
		len(c.CertificateAuthorityData) == 0 && c.ProxyURL == "" &&
		!c.DisableCompression && len(c.Extensions) == 0
}

// validateClusterInfo is clientcmd's (validation.go, v0.34).
func validateClusterInfo(clusterName string, c *clientcmdapi.Cluster) []error {
	if isEmptyCluster(c) {
		return []error{errEmptyCluster}
	}
	var errs []error
	if len(c.Server) == 0 {
		if len(clusterName) == 0 {
			errs = append(errs, fmt.Errorf("default cluster has no server defined"))
		} else {
			errs = append(errs, fmt.Errorf("no server found for cluster %q", clusterName))
		}
	}
	if proxyURL := c.ProxyURL; proxyURL != "" {
		if _, err := parseProxyURL(proxyURL); err != nil {
			errs = append(errs, fmt.Errorf("invalid 'proxy-url' %q for cluster %q: %w", proxyURL, clusterName, err))
		}
	}
	if len(c.CertificateAuthority) != 0 && len(c.CertificateAuthorityData) != 0 {
		errs = append(errs, fmt.Errorf("certificate-authority-data and certificate-authority are both specified for %v. certificate-authority-data will override.", clusterName))
	}
	if len(c.CertificateAuthority) != 0 {
		if err := canOpen(c.CertificateAuthority); err != nil {
			errs = append(errs, fmt.Errorf("unable to read certificate-authority %v for %v due to %w", c.CertificateAuthority, clusterName, err))
		}
	}
	return errs
}

// validateAuthInfo is clientcmd's (validation.go, v0.34).
func validateAuthInfo(name string, u *clientcmdapi.AuthInfo) []error {
	var errs []error
	var methods []string
	if len(u.Token) != 0 {
		methods = append(methods, "token")
	}
	if len(u.Username) != 0 || len(u.Password) != 0 {
		methods = append(methods, "basicAuth")
	}
	if len(u.ClientCertificate) != 0 || len(u.ClientCertificateData) != 0 {
		if len(u.ClientCertificate) != 0 && len(u.ClientCertificateData) != 0 {
			errs = append(errs, fmt.Errorf("client-cert-data and client-cert are both specified for %v. client-cert-data will override.", name))
		}
		if len(u.ClientKey) != 0 && len(u.ClientKeyData) != 0 {
			errs = append(errs, fmt.Errorf("client-key-data and client-key are both specified for %v; client-key-data will override", name))
		}
		if len(u.ClientKey) == 0 && len(u.ClientKeyData) == 0 {
			errs = append(errs, fmt.Errorf("client-key-data or client-key must be specified for %v to use the clientCert authentication method.", name))
		}
		if len(u.ClientCertificate) != 0 {
			if err := canOpen(u.ClientCertificate); err != nil {
				errs = append(errs, fmt.Errorf("unable to read client-cert %v for %v due to %w", u.ClientCertificate, name, err))
			}
		}
		if len(u.ClientKey) != 0 {
			if err := canOpen(u.ClientKey); err != nil {
				errs = append(errs, fmt.Errorf("unable to read client-key %v for %v due to %w", u.ClientKey, name, err))
			}
		}
	}
	if u.Exec != nil {
		if u.AuthProvider != nil {
			errs = append(errs, fmt.Errorf("authProvider cannot be provided in combination with an exec plugin for %s", name))
		}
		if len(u.Exec.Command) == 0 {
			errs = append(errs, fmt.Errorf("command must be specified for %v to use exec authentication plugin", name))
		}
		if len(u.Exec.APIVersion) == 0 {
			errs = append(errs, fmt.Errorf("apiVersion must be specified for %v to use exec authentication plugin", name))
		}
		for _, v := range u.Exec.Env {
			if len(v.Name) == 0 {
				errs = append(errs, fmt.Errorf("env variable name must be specified for %v to use exec authentication plugin", name))
			}
		}
		switch u.Exec.InteractiveMode {
		case "":
			errs = append(errs, fmt.Errorf("interactiveMode must be specified for %v to use exec authentication plugin", name))
		case clientcmdapi.NeverExecInteractiveMode, clientcmdapi.IfAvailableExecInteractiveMode, clientcmdapi.AlwaysExecInteractiveMode:
		default:
			errs = append(errs, fmt.Errorf("invalid interactiveMode for %v: %q", name, u.Exec.InteractiveMode))
		}
	}
	if len(methods) > 1 {
		errs = append(errs, fmt.Errorf("more than one authentication method found for %v; found %v, only one is allowed", name, methods))
	}
	if (len(u.ImpersonateUID) > 0 || len(u.ImpersonateGroups) > 0 || len(u.ImpersonateUserExtra) > 0) && len(u.Impersonate) == 0 {
		errs = append(errs, fmt.Errorf("requesting uid, groups or user-extra for %v without impersonating a user", name))
	}
	return errs
}

func canOpen(path string) error {
	return userfile.Check(path)
}

// serverURL is client-go's rest.DefaultServerURL without an API path: host
// as a URL, or a host:port pair given the scheme defaultTLS implies.
func serverURL(host string, defaultTLS bool) (*url.URL, error) {
	if host == "" {
		return nil, fmt.Errorf("host must be a URL or a host:port pair")
	}
	hostURL, err := url.Parse(host)
	if err != nil || hostURL.Scheme == "" || hostURL.Host == "" {
		scheme := "http://"
		if defaultTLS {
			scheme = "https://"
		}
		hostURL, err = url.Parse(scheme + host)
		if err != nil {
			return nil, err
		}
		if hostURL.Path != "" && hostURL.Path != "/" {
			return nil, fmt.Errorf("host must be a URL or a host:port pair: %q", host)
		}
	}
	return hostURL, nil
}

// hasCA, hasCert and hasCertAuth are client-go's checks of TLS material.
func (ep *Endpoint) hasCA() bool   { return len(ep.CAData) > 0 || len(ep.CAFile) > 0 }
func (ep *Endpoint) hasCert() bool { return len(ep.CertData) != 0 || len(ep.CertFile) != 0 }
func (ep *Endpoint) hasCertAuth() bool {
	return ep.hasCert() && (len(ep.KeyData) != 0 || len(ep.KeyFile) != 0)
}

// resourceURL is the URL of p (an absolute API path such as "/healthz")
// under ep's server, as rest.DefaultServerUrlFor places it: an empty Host is
// localhost, and a bare host:port is https when TLS material is given.
func (ep *Endpoint) resourceURL(p string) (*url.URL, error) {
	host := ep.Host
	if host == "" {
		host = "localhost"
	}
	base, err := serverURL(host, ep.hasCA() || ep.hasCert() || ep.Insecure)
	if err != nil {
		return nil, fmt.Errorf("server URL %q: %w", ep.Host, err)
	}
	u := *base
	u.Path = path.Join("/", base.Path, p)
	return &u, nil
}

// tlsConfig is client-go's transport.TLSConfigFor: nil when ep asks for no
// TLS setting (the defaults then apply to an https server), else TLS 1.2 or
// later with ep's CA, client certificate and server name.
func (ep *Endpoint) tlsConfig() (*tls.Config, error) {
	if !(ep.hasCA() || ep.hasCertAuth() || ep.Insecure || len(ep.ServerName) > 0) {
		return nil, nil
	}
	if ep.hasCA() && ep.Insecure {
		return nil, fmt.Errorf("specifying a root certificates file with the insecure flag is not allowed")
	}
	caData, err := dataFromSliceOrFile(ep.CAData, ep.CAFile)
	if err != nil {
		return nil, err
	}
	// Certificate and key both from files are reloaded at each handshake.
	reload := len(ep.CertFile) > 0 && len(ep.CertData) == 0 && len(ep.KeyFile) > 0 && len(ep.KeyData) == 0
	certData, err := dataFromSliceOrFile(ep.CertData, ep.CertFile)
	if err != nil {
		return nil, err
	}
	keyData, err := dataFromSliceOrFile(ep.KeyData, ep.KeyFile)
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: ep.Insecure,
		ServerName:         ep.ServerName,
	}
	if len(caData) > 0 {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(caData) {
			return nil, fmt.Errorf("unable to load root certificates: %w", errorParsingCAData(caData))
		}
		cfg.RootCAs = pool
	}
	if !ep.hasCertAuth() {
		return cfg, nil
	}
	var static *tls.Certificate
	if !reload {
		cert, err := tls.X509KeyPair(certData, keyData)
		if err != nil {
			return nil, err
		}
		static = &cert
	}
	certFile, keyFile := ep.CertFile, ep.KeyFile
	cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		if static != nil {
			return static, nil
		}
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		return &cert, err
	}
	return cfg, nil
}

// dataFromSliceOrFile returns data if not empty, else the content of file.
func dataFromSliceOrFile(data []byte, file string) ([]byte, error) {
	if len(data) > 0 {
		return data, nil
	}
	if len(file) > 0 {
		b, err := userfile.Read(file)
		if err != nil {
			return []byte{}, err
		}
		return b, nil
	}
	return nil, nil
}

// errorParsingCAData says why PEM data held no usable CA certificate.
func errorParsingCAData(pemCerts []byte) error {
	for len(pemCerts) > 0 {
		var block *pem.Block
		block, pemCerts = pem.Decode(pemCerts)
		if block == nil {
			return fmt.Errorf("unable to parse bytes as PEM block")
		}
		if block.Type != "CERTIFICATE" || len(block.Headers) != 0 {
			continue
		}
		if _, err := x509.ParseCertificate(block.Bytes); err != nil {
			return fmt.Errorf("failed to parse certificate: %w", err)
		}
	}
	return fmt.Errorf("no valid certificate authority data seen")
}

// oneShotClient is an HTTP client for ep that keeps no idle connections and
// follows no redirects, and its transport. It honours ep.Proxy, else the
// proxy environment like kubectl (which never proxies loopback addresses).
func (ep *Endpoint) oneShotClient() (*http.Client, *http.Transport, error) {
	tlsCfg, err := ep.tlsConfig()
	if err != nil {
		return nil, nil, fmt.Errorf("TLS config for %s: %w", ep.Host, err)
	}
	proxy := ep.Proxy
	if proxy == nil {
		proxy = http.ProxyFromEnvironment
	}
	tr := &http.Transport{
		Proxy:             proxy,
		DialContext:       (&net.Dialer{}).DialContext,
		TLSClientConfig:   tlsCfg,
		DisableKeepAlives: true,
	}
	rt, err := ep.authenticate(tr)
	if err != nil {
		return nil, nil, fmt.Errorf("credentials for %s: %w", ep.Host, err)
	}
	return &http.Client{
		Transport:     rt,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}, tr, nil
}

// authenticate wraps rt with ep's bearer token or basic authentication, as
// client-go's transport.HTTPWrappersForConfig does.
func (ep *Endpoint) authenticate(rt http.RoundTripper) (http.RoundTripper, error) {
	hasBasic := len(ep.Username) != 0
	hasToken := len(ep.BearerToken) != 0 || len(ep.BearerTokenFile) != 0
	switch {
	case hasBasic && hasToken:
		return nil, fmt.Errorf("username/password or bearer token may be set, but not both")
	case hasToken:
		b := &bearerAuth{token: ep.BearerToken, file: ep.BearerTokenFile, rt: rt}
		if b.file != "" && b.token == "" {
			tok, err := readTokenFile(b.file)
			if err != nil {
				return nil, err
			}
			b.token = tok
		}
		return b, nil
	case hasBasic:
		return &basicAuth{username: ep.Username, password: ep.Password, rt: rt}, nil
	}
	return rt, nil
}

// readTokenFile is client-go's file token source: the trimmed content,
// which must not be empty.
func readTokenFile(path string) (string, error) {
	b, err := userfile.Read(path)
	if err != nil {
		return "", fmt.Errorf("failed to read token file %q: %v", path, err)
	}
	tok := strings.TrimSpace(string(b))
	if len(tok) == 0 {
		return "", fmt.Errorf("read empty token from file %q", path)
	}
	return tok, nil
}

// bearerAuth sets "Authorization: Bearer" unless the request has an
// Authorization header. With a token file, each request re-reads it and
// falls back to the last token read, then to the static token.
type bearerAuth struct {
	token string
	file  string
	rt    http.RoundTripper

	mu       sync.Mutex
	lastFile string
}

func (b *bearerAuth) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Header.Get("Authorization") != "" {
		return b.rt.RoundTrip(req)
	}
	token := b.token
	if b.file != "" {
		b.mu.Lock()
		if tok, err := readTokenFile(b.file); err == nil {
			b.lastFile = tok
		}
		if b.lastFile != "" {
			token = b.lastFile
		}
		b.mu.Unlock()
	}
	req = req.Clone(req.Context())
	req.Header.Set("Authorization", "Bearer "+token)
	return b.rt.RoundTrip(req)
}

// basicAuth sets basic authentication unless the request has an
// Authorization header.
type basicAuth struct {
	username, password string
	rt                 http.RoundTripper
}

func (b *basicAuth) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Header.Get("Authorization") != "" {
		return b.rt.RoundTrip(req)
	}
	req = req.Clone(req.Context())
	req.SetBasicAuth(b.username, b.password)
	return b.rt.RoundTrip(req)
}
