package kube

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"net/url"
	"os/exec"
	"path"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/rdd-project/rdd/internal/kube/kubetest"
)

// The package reproduces clientcmd.Load, Write and ResolveLocalPaths, and
// the rest.Config clientcmd builds, so that the rdd binary does not link
// client-go's rest and clientcmd packages. These tests hold each to
// client-go's own (the tests may import them; the package must not).

// kubeconfigCorpus is kubeconfig text as users and tools write it: every
// field of clusters, users, contexts and preferences, extensions, exec and
// auth-provider users, JSON, comments, odd ordering, and empty documents.
var kubeconfigCorpus = map[string]string{
	"empty":      "",
	"blank":      "\n",
	"minimal":    "apiVersion: v1\nkind: Config\n",
	"no-version": "clusters: []\ncontexts: []\nusers: []\ncurrent-context: \"\"\n",
	"k3s": `apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCmZha2UKLS0tLS1FTkQgQ0VSVElGSUNBVEUtLS0tLQo=
    server: https://127.0.0.1:6443
  name: default
contexts:
- context:
    cluster: default
    user: default
  name: default
current-context: default
kind: Config
preferences: {}
users:
- name: default
  user:
    client-certificate-data: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCmZha2UKLS0tLS1FTkQgQ0VSVElGSUNBVEUtLS0tLQo=
    client-key-data: LS0tLS1CRUdJTiBFQyBQUklWQVRFIEtFWS0tLS0tCmZha2UKLS0tLS1FTkQgRUMgUFJJVkFURSBLRVktLS0tLQo=
`,
	"everything": `# a comment
kind: Config
apiVersion: v1
current-context: z-ctx
preferences:
  colors: true
  extensions:
  - name: pref-ext
    extension:
      kind: Something
      apiVersion: example.com/v1
      spec: {a: 1}
clusters:
- name: z-cluster
  cluster:
    server: https://z.example.com:6443/prefix
    tls-server-name: z.internal
    certificate-authority: relative/ca.crt
    proxy-url: socks5://proxy.example.com:1080
    disable-compression: true
    extensions:
    - name: client.authentication.k8s.io/exec
      extension:
        audience: z
- name: a-cluster
  cluster:
    server: http://a.example.com
    insecure-skip-tls-verify: true
contexts:
- name: z-ctx
  context:
    cluster: z-cluster
    user: z-user
    namespace: kube-system
    extensions:
    - name: ctx-ext
      extension: "just a string"
- name: a-ctx
  context: {cluster: a-cluster, user: a-user}
users:
- name: z-user
  user:
    client-certificate: certs/z.crt
    client-key: /abs/z.key
    tokenFile: token
    act-as: someone
    act-as-uid: "1000"
    act-as-groups: [g1, g2]
    act-as-user-extra:
      scopes: [a, b]
- name: a-user
  user:
    username: admin
    password: "s3cret: with colon"
- name: exec-user
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1beta1
      command: ./bin/get-token
      args: [--cluster, z]
      env:
      - name: FOO
        value: bar
      installHint: "install it\u001b[1m"
      provideClusterInfo: true
      interactiveMode: IfAvailable
- name: provider-user
  user:
    auth-provider:
      name: oidc
      config:
        client-id: abc
        id-token: xyz
`,
	"json": `{"apiVersion":"v1","kind":"Config","clusters":[{"name":"c","cluster":{"server":"https://j:443","insecure-skip-tls-verify":true}}],"users":[{"name":"u","user":{"token":"t"}}],"contexts":[{"name":"x","context":{"cluster":"c","user":"u"}}],"current-context":"x"}`,
	"duplicates": `apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {server: https://first}
- name: c
  cluster: {server: https://second}
`,
	"null-maps":        "apiVersion: v1\nkind: Config\nclusters: null\nusers: ~\ncontexts:\npreferences:\n",
	"malformed":        "clusters: [oops",
	"wrong-kind":       "apiVersion: v1\nkind: Pod\n",
	"wrong-version":    "apiVersion: v2\nkind: Config\n",
	"not-a-map":        "- a\n- b\n",
	"scalar":           "hello\n",
	"bad-field-type":   "apiVersion: v1\nkind: Config\nclusters: 7\n",
	"bad-base64":       "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://x\n    certificate-authority-data: '!!notbase64'\n",
	"unknown-fields":   "apiVersion: v1\nkind: Config\nsurprise: 1\nclusters:\n- name: c\n  cluster: {server: https://x, newfield: y}\n",
	"empty-names":      "apiVersion: v1\nkind: Config\nclusters:\n- name: \"\"\n  cluster: {server: https://x}\n",
	"unicode-and-tabs": "apiVersion: v1\nkind: Config\ncurrent-context: \"ctx-é\\t\"\ncontexts:\n- name: \"ctx-é\\t\"\n  context: {cluster: \"ü\", user: \"ß\"}\n",
	"internal-version": "apiVersion: __internal\nkind: Config\ncurrent-context: x\n",
	"internal-ext":     "apiVersion: __internal\nkind: Config\nclusters:\n  c: {server: https://x, extensions: {e: {a: 1}}}\n",
	"grouped-version":  "apiVersion: example.com/v1\nkind: Config\n",
	"group-no-version": "apiVersion: example.com/\n",
	"bad-api-version":  "apiVersion: a/b/c\nkind: Config\n",
	"kind-only":        "kind: Config\n",
	"kind-not-string":  "apiVersion: v1\nkind: 7\n",
	"bad-bool":         "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {server: https://x, insecure-skip-tls-verify: \"yes\"}\n",
	"case-mismatch":    "apiVersion: v1\nkind: Config\nCurrent-Context: x\nClusters:\n- name: c\n  cluster: {Server: https://x}\n",
	"duplicate-keys":   "apiVersion: v1\nkind: Config\ncurrent-context: a\ncurrent-context: b\n",
	"tab-indent":       "apiVersion: v1\nkind: Config\nclusters:\n\t- name: c\n",
	"multi-document":   "apiVersion: v1\nkind: Config\ncurrent-context: a\n---\napiVersion: v1\nkind: Config\ncurrent-context: b\n",
	"exec-defaulting":  "apiVersion: v1\nkind: Config\nusers:\n- name: a\n  user: {exec: {apiVersion: client.authentication.k8s.io/v1alpha1, command: x}}\n- name: b\n  user: {exec: {apiVersion: client.authentication.k8s.io/v1, command: x}}\n- name: c\n  user: {exec: {command: x, interactiveMode: Never}}\n",
	"null-extension":   "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://x\n    extensions:\n    - name: nul\n      extension: null\n    - name: m\n",
	"big-numbers":      "apiVersion: v1\nkind: Config\npreferences:\n  extensions:\n  - name: num\n    extension: {i: 12345678901234567890, f: 1.5e300, h: 0x1F}\n",
	"yaml-anchors":     "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: &c {server: https://x}\n- name: d\n  cluster: *c\n",
	"binary-base64":    "apiVersion: v1\nkind: Config\nusers:\n- name: u\n  user: {client-key-data: AAEC/w==, token: \"\"}\n",
	"top-level-null":   "null\n",
	"only-comment":     "# nothing\n",
}

func TestLoadConfigMatchesClientcmd(t *testing.T) {
	for name, text := range kubeconfigCorpus {
		t.Run(name, func(t *testing.T) {
			want, wantErr := clientcmd.Load([]byte(text))
			got, gotErr := loadConfig([]byte(text))
			if fmt.Sprint(gotErr) != fmt.Sprint(wantErr) {
				t.Fatalf("error %v, clientcmd.Load says %v", gotErr, wantErr)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("loaded\n%#v\nclientcmd.Load\n%#v", got, want)
			}
		})
	}
}

// TestWriteConfigMatchesClientcmd: for every config, parsed or built, the
// bytes are clientcmd.Write's, and writing does not touch the config.
func TestWriteConfigMatchesClientcmd(t *testing.T) {
	configs := map[string]*clientcmdapi.Config{
		"new":          clientcmdapi.NewConfig(),
		"zero":         {},
		"200 contexts": mustLoad(t, userKubeconfig(t, 200)),
		"k3s source":   mustLoad(t, k3sConfig(t, "https://127.0.0.1:7443", "token-1")),
	}
	for name, text := range kubeconfigCorpus {
		if cfg, err := clientcmd.Load([]byte(text)); err == nil {
			configs["corpus "+name] = cfg
		}
	}
	// What Publish and Remove do to a user's config.
	edited := mustLoad(t, []byte(kubeconfigCorpus["everything"]))
	src := mustLoad(t, k3sConfig(t, "https://127.0.0.1:7443", "token-1"))
	upsert(edited, testName, src.Clusters["default"], src.AuthInfos["default"])
	configs["upserted"] = edited
	dropped := edited.DeepCopy()
	drop(dropped, "z-ctx")
	configs["dropped"] = dropped
	// Built in code, with fields a file cannot hold (LocationOfOrigin),
	// nil maps and an extension that is a typed object.
	built := clientcmdapi.NewConfig()
	c := clientcmdapi.NewCluster()
	c.LocationOfOrigin, c.Server, c.CertificateAuthorityData = "/somewhere", "https://b:1", []byte{0, 1, 2, 255}
	c.Extensions["typed"] = &clientcmdapi.Config{CurrentContext: "inner"}
	c.Extensions["unknown"] = &runtime.Unknown{Raw: []byte(`{"x":1}`), ContentType: runtime.ContentTypeJSON}
	built.Clusters["b"] = c
	built.AuthInfos["b"] = &clientcmdapi.AuthInfo{Token: "t", ImpersonateGroups: []string{}}
	built.Contexts["b"] = &clientcmdapi.Context{Cluster: "b", AuthInfo: "b"}
	built.CurrentContext = "b"
	configs["built"] = built
	badExt := clientcmdapi.NewConfig()
	badExt.Preferences.Extensions = map[string]runtime.Object{"bad": &runtime.Unknown{Raw: []byte(`{x`)}}
	configs["unmarshalable extension"] = badExt
	nilExt := clientcmdapi.NewConfig()
	nilExt.Preferences.Extensions = map[string]runtime.Object{"nil": nil, "empty": &runtime.Unknown{}}
	configs["nil extensions"] = nilExt
	standalone := clientcmdapi.NewConfig()
	upsert(standalone, testName, src.Clusters["default"], src.AuthInfos["default"])
	standalone.CurrentContext = testName
	configs["standalone"] = standalone

	for name, cfg := range configs {
		t.Run(name, func(t *testing.T) {
			before := cfg.DeepCopy()
			want, wantErr := clientcmd.Write(*cfg.DeepCopy())
			got, gotErr := writeConfig(*cfg)
			if fmt.Sprint(gotErr) != fmt.Sprint(wantErr) {
				t.Fatalf("error %v, clientcmd.Write says %v", gotErr, wantErr)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("wrote\n%s\nclientcmd.Write\n%s", got, want)
			}
			if !reflect.DeepEqual(cfg, before) {
				t.Fatal("writeConfig changed the config it wrote")
			}
			// And the round trip is clientcmd's too.
			back, err := loadConfig(got)
			if err != nil {
				t.Fatal(err)
			}
			wantBack, err := clientcmd.Load(want)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(back, wantBack) {
				t.Fatalf("reloaded\n%#v\nclientcmd.Load\n%#v", back, wantBack)
			}
		})
	}
}

// TestPublishWritesClientcmdBytes: the files Publish, SwitchCurrentContext
// and Remove leave behind are byte for byte what clientcmd.Write makes of
// the same edit, so kubectl and rdd produce identical files.
func TestPublishWritesClientcmdBytes(t *testing.T) {
	e := newEnv(t)
	// No current-context, so SwitchCurrentContext switches without a probe.
	user := []byte(strings.Replace(kubeconfigCorpus["everything"], "current-context: z-ctx", `current-context: ""`, 1))
	writeFile(t, e.userConfig(), user)

	expect := mustLoad(t, user)
	src := load(t, e.pub.Source)
	upsert(expect, testName, src.Clusters["default"], src.AuthInfos["default"])
	if _, err := Publish(context.Background(), e.pub); err != nil {
		t.Fatal(err)
	}
	assertBytes(t, e.userConfig(), mustWrite(t, expect))
	standalone := clientcmdapi.NewConfig()
	upsert(standalone, testName, src.Clusters["default"], src.AuthInfos["default"])
	standalone.CurrentContext = testName
	assertBytes(t, e.pub.Standalone, mustWrite(t, standalone))

	if _, changed, err := SwitchCurrentContext(context.Background(), e.pub, 0); err != nil || !changed {
		t.Fatalf("switch: changed=%v err=%v", changed, err)
	}
	expect.CurrentContext = testName
	assertBytes(t, e.userConfig(), mustWrite(t, expect))

	if _, err := Remove(context.Background(), e.pub); err != nil {
		t.Fatal(err)
	}
	drop(expect, testName)
	assertBytes(t, e.userConfig(), mustWrite(t, expect))
}

func TestResolveLocalPathsMatchesClientcmd(t *testing.T) {
	dir := t.TempDir()
	cfg := mustLoad(t, []byte(kubeconfigCorpus["everything"]))
	origins := []string{filepath.Join(dir, "a", "config"), "relative/dir/config", "", "config"}
	i := 0
	for _, c := range cfg.Clusters {
		c.LocationOfOrigin = origins[i%len(origins)]
		c.CertificateAuthority = "ca/" + fmt.Sprint(i)
		i++
	}
	for _, u := range cfg.AuthInfos {
		u.LocationOfOrigin = origins[i%len(origins)]
		u.ClientCertificate, u.ClientKey, u.TokenFile = "c.crt", "../k.key", "/abs/token"
		i++
	}
	cfg.AuthInfos["path-exec"] = &clientcmdapi.AuthInfo{LocationOfOrigin: origins[0], Exec: &clientcmdapi.ExecConfig{Command: "bin/helper"}}
	cfg.AuthInfos["plain-exec"] = &clientcmdapi.AuthInfo{LocationOfOrigin: origins[0], Exec: &clientcmdapi.ExecConfig{Command: "helper"}}
	want, got := cfg.DeepCopy(), cfg.DeepCopy()
	wantErr := clientcmd.ResolveLocalPaths(want)
	gotErr := resolveLocalPaths(got)
	if fmt.Sprint(gotErr) != fmt.Sprint(wantErr) {
		t.Fatalf("error %v, clientcmd says %v", gotErr, wantErr)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("resolved\n%#v\nclientcmd\n%#v", got, want)
	}
	if got.AuthInfos["path-exec"].Exec.Command != filepath.Join(dir, "a", "bin/helper") || got.AuthInfos["plain-exec"].Exec.Command != "helper" {
		t.Fatalf("exec commands: %q %q", got.AuthInfos["path-exec"].Exec.Command, got.AuthInfos["plain-exec"].Exec.Command)
	}
}

// TestEndpointMatchesRESTConfig builds, for each cluster and user, the
// rest.Config clientcmd would and the Endpoint rdd does, and holds them
// equal: the same error (message included), the same server, TLS material,
// credentials and proxy, the same request URL, the same TLS settings and
// the same Authorization header on the wire.
func TestEndpointMatchesRESTConfig(t *testing.T) {
	dir := t.TempDir()
	ca, err := kubetest.NewAuthority("compat-ca")
	if err != nil {
		t.Fatal(err)
	}
	kp, err := ca.ClientCert("compat-user")
	if err != nil {
		t.Fatal(err)
	}
	file := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		writeFile(t, p, data)
		return p
	}
	caFile := file("ca.crt", ca.CertPEM)
	certFile, keyFile := file("user.crt", kp.CertPEM), file("user.key", kp.KeyPEM)
	tokenFile := file("token", []byte("  file-token\n"))
	emptyTokenFile := file("empty-token", []byte(" \n"))
	missing := filepath.Join(dir, "missing")

	type tc struct {
		cluster clientcmdapi.Cluster
		user    *clientcmdapi.AuthInfo
	}
	srv := "https://127.0.0.1:6443"
	cases := map[string]tc{
		"ca data and token":          {clientcmdapi.Cluster{Server: srv, CertificateAuthorityData: ca.CertPEM}, &clientcmdapi.AuthInfo{Token: "tok"}},
		"ca file and cert data":      {clientcmdapi.Cluster{Server: srv, CertificateAuthority: caFile}, &clientcmdapi.AuthInfo{ClientCertificateData: kp.CertPEM, ClientKeyData: kp.KeyPEM}},
		"cert and key files":         {clientcmdapi.Cluster{Server: srv, CertificateAuthority: caFile}, &clientcmdapi.AuthInfo{ClientCertificate: certFile, ClientKey: keyFile}},
		"cert file and key data":     {clientcmdapi.Cluster{Server: srv}, &clientcmdapi.AuthInfo{ClientCertificate: certFile, ClientKeyData: kp.KeyPEM}},
		"cert without key":           {clientcmdapi.Cluster{Server: srv}, &clientcmdapi.AuthInfo{ClientCertificateData: kp.CertPEM}},
		"cert data and file":         {clientcmdapi.Cluster{Server: srv}, &clientcmdapi.AuthInfo{ClientCertificate: certFile, ClientCertificateData: kp.CertPEM, ClientKeyData: kp.KeyPEM}},
		"cert file missing":          {clientcmdapi.Cluster{Server: srv}, &clientcmdapi.AuthInfo{ClientCertificate: missing, ClientKey: keyFile}},
		"mismatched key":             {clientcmdapi.Cluster{Server: srv}, &clientcmdapi.AuthInfo{ClientCertificateData: kp.CertPEM, ClientKeyData: []byte("junk")}},
		"mismatched key files":       {clientcmdapi.Cluster{Server: srv}, &clientcmdapi.AuthInfo{ClientCertificate: certFile, ClientKey: caFile}},
		"ca file missing":            {clientcmdapi.Cluster{Server: srv, CertificateAuthority: missing}, nil},
		"ca data and file":           {clientcmdapi.Cluster{Server: srv, CertificateAuthority: caFile, CertificateAuthorityData: ca.CertPEM}, nil},
		"bad ca data":                {clientcmdapi.Cluster{Server: srv, CertificateAuthorityData: []byte("not pem")}, nil},
		"bad ca certificate":         {clientcmdapi.Cluster{Server: srv, CertificateAuthorityData: []byte("-----BEGIN CERTIFICATE-----\nZmFrZQ==\n-----END CERTIFICATE-----\n")}, nil},
		"insecure":                   {clientcmdapi.Cluster{Server: srv, InsecureSkipTLSVerify: true}, &clientcmdapi.AuthInfo{Token: "tok"}},
		"insecure with ca":           {clientcmdapi.Cluster{Server: srv, InsecureSkipTLSVerify: true, CertificateAuthorityData: ca.CertPEM}, nil},
		"tls server name":            {clientcmdapi.Cluster{Server: srv, TLSServerName: "kube.internal"}, nil},
		"system roots":               {clientcmdapi.Cluster{Server: "https://kube.example.com"}, &clientcmdapi.AuthInfo{Token: "tok"}},
		"token file":                 {clientcmdapi.Cluster{Server: srv}, &clientcmdapi.AuthInfo{TokenFile: tokenFile}},
		"token and token file":       {clientcmdapi.Cluster{Server: srv}, &clientcmdapi.AuthInfo{Token: "inline", TokenFile: tokenFile}},
		"token and empty token file": {clientcmdapi.Cluster{Server: srv}, &clientcmdapi.AuthInfo{Token: "inline", TokenFile: emptyTokenFile}},
		"empty token file":           {clientcmdapi.Cluster{Server: srv}, &clientcmdapi.AuthInfo{TokenFile: emptyTokenFile}},
		"token file missing":         {clientcmdapi.Cluster{Server: srv}, &clientcmdapi.AuthInfo{TokenFile: missing}},
		"basic auth":                 {clientcmdapi.Cluster{Server: srv}, &clientcmdapi.AuthInfo{Username: "admin", Password: "pw"}},
		"password only":              {clientcmdapi.Cluster{Server: srv}, &clientcmdapi.AuthInfo{Password: "pw"}},
		"token and basic auth":       {clientcmdapi.Cluster{Server: srv}, &clientcmdapi.AuthInfo{Token: "tok", Username: "admin"}},
		"token file and basic auth":  {clientcmdapi.Cluster{Server: srv}, &clientcmdapi.AuthInfo{TokenFile: tokenFile, Username: "admin"}},
		"no user":                    {clientcmdapi.Cluster{Server: srv}, nil},
		"empty user":                 {clientcmdapi.Cluster{Server: srv}, &clientcmdapi.AuthInfo{}},
		"impersonation without user": {clientcmdapi.Cluster{Server: srv}, &clientcmdapi.AuthInfo{Token: "tok", ImpersonateGroups: []string{"g"}}},
		"http server":                {clientcmdapi.Cluster{Server: "http://127.0.0.1:8080"}, &clientcmdapi.AuthInfo{Token: "tok", TokenFile: missing}},
		"host and port":              {clientcmdapi.Cluster{Server: "127.0.0.1:6443", CertificateAuthorityData: ca.CertPEM}, &clientcmdapi.AuthInfo{Token: "tok"}},
		"bare host":                  {clientcmdapi.Cluster{Server: "kube.example.com"}, nil},
		"host with path, no scheme":  {clientcmdapi.Cluster{Server: "kube.example.com/prefix"}, nil},
		"path prefix and query":      {clientcmdapi.Cluster{Server: srv + "/prefix/?a=b#frag"}, &clientcmdapi.AuthInfo{Token: "tok"}},
		"query without path":         {clientcmdapi.Cluster{Server: srv + "?a=b"}, &clientcmdapi.AuthInfo{Token: "tok"}},
		"root path and query":        {clientcmdapi.Cluster{Server: srv + "/?a=b"}, &clientcmdapi.AuthInfo{Token: "tok"}},
		"escaped path":               {clientcmdapi.Cluster{Server: srv + "/a%2Fb/c"}, nil},
		"ipv6":                       {clientcmdapi.Cluster{Server: "https://[::1]:6443"}, nil},
		"http proxy":                 {clientcmdapi.Cluster{Server: srv, ProxyURL: "http://proxy.example.com:3128"}, nil},
		"socks5 proxy":               {clientcmdapi.Cluster{Server: srv, ProxyURL: "socks5://user:pw@proxy.example.com:1080"}, nil},
		"bad proxy scheme":           {clientcmdapi.Cluster{Server: srv, ProxyURL: "ftp://proxy"}, nil},
		"unparsable proxy":           {clientcmdapi.Cluster{Server: srv, ProxyURL: "http://[::1"}, nil},
		"no server":                  {clientcmdapi.Cluster{CertificateAuthorityData: ca.CertPEM}, nil},
		"empty cluster":              {clientcmdapi.Cluster{}, nil},
		"empty cluster, bad user":    {clientcmdapi.Cluster{}, &clientcmdapi.AuthInfo{ClientCertificateData: kp.CertPEM}},
		"several problems":           {clientcmdapi.Cluster{CertificateAuthority: missing, ProxyURL: "ftp://x"}, &clientcmdapi.AuthInfo{Token: "t", Username: "u", ClientCertificate: missing}},
		"disable compression":        {clientcmdapi.Cluster{Server: srv, DisableCompression: true}, nil},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			cfg := clientcmdapi.NewConfig()
			cluster := c.cluster.DeepCopy()
			if cluster.Extensions == nil {
				cluster.Extensions = map[string]runtime.Object{}
			}
			cfg.Clusters["cl"] = cluster
			if c.user != nil {
				cfg.AuthInfos["us"] = c.user.DeepCopy()
			}
			cfg.Contexts["cx"] = &clientcmdapi.Context{Cluster: "cl", AuthInfo: "us"}
			cfg.CurrentContext = "cx"
			rc, wantErr := clientcmd.NewNonInteractiveClientConfig(*cfg, "cx", &clientcmd.ConfigOverrides{}, nil).ClientConfig()
			ep, gotErr := endpointFor("cl", cfg.Clusters["cl"], "us", cfg.AuthInfos["us"])
			if fmt.Sprint(gotErr) != fmt.Sprint(wantErr) {
				t.Fatalf("error %v\nclientcmd says %v", gotErr, wantErr)
			}
			if wantErr != nil {
				return
			}
			compareEndpoint(t, ep, rc)
		})
	}
}

func compareEndpoint(t *testing.T, ep *Endpoint, rc *rest.Config) {
	t.Helper()
	want := Endpoint{
		Host:   rc.Host,
		CAFile: rc.CAFile, CAData: rc.CAData,
		CertFile: rc.CertFile, CertData: rc.CertData,
		KeyFile: rc.KeyFile, KeyData: rc.KeyData,
		Insecure: rc.Insecure, ServerName: rc.ServerName,
		BearerToken: rc.BearerToken, BearerTokenFile: rc.BearerTokenFile,
		Username: rc.Username, Password: rc.Password,
	}
	got := *ep
	got.Proxy = nil
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("endpoint\n%+v\nrest.Config\n%+v", got, want)
	}
	probe, _ := http.NewRequest(http.MethodGet, "https://127.0.0.1:6443/healthz", nil)
	if (ep.Proxy == nil) != (rc.Proxy == nil) {
		t.Fatalf("proxy set: %v, rest.Config: %v", ep.Proxy != nil, rc.Proxy != nil)
	}
	if ep.Proxy != nil {
		gu, gerr := ep.Proxy(probe)
		wu, werr := rc.Proxy(probe)
		if fmt.Sprint(gu, gerr) != fmt.Sprint(wu, werr) {
			t.Fatalf("proxy %v %v, rest.Config %v %v", gu, gerr, wu, werr)
		}
	}

	// The request URL.
	for _, p := range []string{"healthz", "api/v1/nodes"} {
		gu, gerr := ep.resourceURL(p)
		base, _, werr := rest.DefaultServerUrlFor(rc)
		var wu *url.URL
		if werr == nil {
			u := *base
			u.Path = path.Join("/", base.Path, p)
			wu = &u
		} else {
			werr = fmt.Errorf("server URL %q: %w", rc.Host, werr)
		}
		if fmt.Sprint(gu, gerr) != fmt.Sprint(wu, werr) {
			t.Fatalf("%s: URL %v %v, rest %v %v", p, gu, gerr, wu, werr)
		}
	}

	// TLS.
	gtls, gerr := ep.tlsConfig()
	wtls, werr := rest.TLSConfigFor(rc)
	if fmt.Sprint(gerr) != fmt.Sprint(werr) {
		t.Fatalf("TLS error %v, rest %v", gerr, werr)
	}
	if (gtls == nil) != (wtls == nil) {
		t.Fatalf("TLS config %v, rest %v", gtls != nil, wtls != nil)
	}
	if gtls != nil {
		if gtls.MinVersion != wtls.MinVersion || gtls.InsecureSkipVerify != wtls.InsecureSkipVerify || gtls.ServerName != wtls.ServerName {
			t.Fatalf("TLS %+v, rest %+v", gtls, wtls)
		}
		if (gtls.RootCAs == nil) != (wtls.RootCAs == nil) || (gtls.RootCAs != nil && !gtls.RootCAs.Equal(wtls.RootCAs)) {
			t.Fatal("root CAs differ")
		}
		if (gtls.GetClientCertificate == nil) != (wtls.GetClientCertificate == nil) {
			t.Fatal("client certificate callback differs")
		}
		if gtls.GetClientCertificate != nil {
			gc, gerr := gtls.GetClientCertificate(&tls.CertificateRequestInfo{})
			wc, werr := wtls.GetClientCertificate(&tls.CertificateRequestInfo{})
			if fmt.Sprint(gerr) != fmt.Sprint(werr) || !reflect.DeepEqual(gc.Certificate, wc.Certificate) {
				t.Fatalf("client certificate %v, rest %v", gerr, werr)
			}
		}
	}

	// Credentials on the wire.
	grec, wrec := &recorder{}, &recorder{}
	grt, gerr := ep.authenticate(grec)
	wrt, werr := rest.HTTPWrappersForConfig(rc, wrec)
	if fmt.Sprint(gerr) != fmt.Sprint(werr) {
		t.Fatalf("credentials error %v, rest %v", gerr, werr)
	}
	if gerr != nil {
		return
	}
	if _, err := grt.RoundTrip(probe.Clone(context.Background())); err != nil {
		t.Fatal(err)
	}
	if _, err := wrt.RoundTrip(probe.Clone(context.Background())); err != nil {
		t.Fatal(err)
	}
	if g, w := grec.auth, wrec.auth; g != w {
		t.Fatalf("Authorization %q, rest %q", g, w)
	}
	if probe.Header.Get("Authorization") != "" {
		t.Fatal("the caller's request was modified")
	}
}

// recorder is a RoundTripper that keeps the Authorization header it saw.
type recorder struct{ auth string }

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.auth = req.Header.Get("Authorization")
	return &http.Response{StatusCode: http.StatusOK, Body: http.NoBody, Request: req}, nil
}

// TestEndpointFromFileMatchesClientcmd: the Endpoint of a kubeconfig file,
// relative references included, is what clientcmd builds from that file.
func TestEndpointFromFileMatchesClientcmd(t *testing.T) {
	dir := t.TempDir()
	ca, err := kubetest.NewAuthority("compat-ca")
	if err != nil {
		t.Fatal(err)
	}
	kp, err := ca.ClientCert("compat-user")
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "pki", "ca.crt"), ca.CertPEM)
	writeFile(t, filepath.Join(dir, "pki", "user.crt"), kp.CertPEM)
	writeFile(t, filepath.Join(dir, "pki", "user.key"), kp.KeyPEM)
	kubeconfig := filepath.Join(dir, "k3s.yaml")
	writeFile(t, kubeconfig, []byte(`apiVersion: v1
kind: Config
clusters:
- name: default
  cluster:
    server: https://127.0.0.1:6443
    certificate-authority: pki/ca.crt
users:
- name: default
  user:
    client-certificate: pki/user.crt
    client-key: ./pki/user.key
contexts:
- name: default
  context: {cluster: default, user: default}
current-context: default
`))
	ep, err := EndpointFromFile(kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	if ep.CAFile != filepath.Join(dir, "pki", "ca.crt") || ep.KeyFile != filepath.Join(dir, "pki", "user.key") {
		t.Fatalf("relative references not resolved against the file: %+v", ep)
	}
	compareEndpoint(t, ep, rc)
}

// TestNoRESTOrClientcmdLinked keeps client-go's rest and clientcmd packages,
// clientcmd/api/latest's codec (and what they drag in) out of the package's
// non-test dependencies, which every rdd command pays for at init.
func TestNoRESTOrClientcmdLinked(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go not in PATH")
	}
	out, err := exec.Command(goBin, "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		switch {
		case dep == "k8s.io/client-go/rest",
			dep == "k8s.io/client-go/tools/clientcmd",
			strings.HasPrefix(dep, "k8s.io/client-go/plugin/"),
			strings.HasPrefix(dep, "github.com/davecgh/go-spew"),
			dep == "k8s.io/api/core/v1",
			// clientcmd/api/latest's codec, and what its JSON serializer and
			// versioning codec bring: meta/v1 and its validation, quantities
			// and inf.v0. (json-iterator stays: apimachinery's runtime, which
			// clientcmdapi's types need, links it.)
			dep == "k8s.io/client-go/tools/clientcmd/api/latest",
			strings.HasPrefix(dep, "k8s.io/apimachinery/pkg/runtime/serializer/json"),
			strings.HasPrefix(dep, "k8s.io/apimachinery/pkg/runtime/serializer/versioning"),
			strings.HasPrefix(dep, "k8s.io/apimachinery/pkg/apis/meta/"),
			dep == "k8s.io/apimachinery/pkg/api/meta",
			dep == "k8s.io/apimachinery/pkg/api/resource",
			dep == "k8s.io/apimachinery/pkg/util/validation",
			dep == "gopkg.in/inf.v0":
			t.Errorf("internal/kube links %s", dep)
		}
	}
}

func mustLoad(t testing.TB, data []byte) *clientcmdapi.Config {
	t.Helper()
	cfg, err := clientcmd.Load(data)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}
