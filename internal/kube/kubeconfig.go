package kube

import (
	"fmt"
	"path/filepath"
	"strings"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/client-go/tools/clientcmd/api/latest"
)

// The functions in this file are client-go's tools/clientcmd Load, Write and
// ResolveLocalPaths (loader.go, v0.34), reproduced on the same codec so that
// rdd does not link the clientcmd package itself: it imports rest, and with
// it exec credential plugins, go-spew and more, whose package init every rdd
// command would pay. compat_test.go pins them to clientcmd's.

// loadConfig is clientcmd.Load: it decodes a kubeconfig with
// clientcmdapi/latest's codec (YAML or JSON, v1 defaulting and conversion to
// the internal type). Empty data is an empty config.
func loadConfig(data []byte) (*clientcmdapi.Config, error) {
	config := clientcmdapi.NewConfig()
	// The codec rejects empty input; clientcmd treats it as an empty config.
	if len(data) == 0 {
		return config, nil
	}
	decoded, _, err := latest.Codec.Decode(data, &schema.GroupVersionKind{Version: latest.Version, Kind: "Config"}, config)
	if err != nil {
		return nil, err
	}
	return decoded.(*clientcmdapi.Config), nil
}

// writeConfig is clientcmd.Write: the config converted to v1 and encoded as
// YAML by clientcmdapi/latest's codec. It takes config by value, as Write
// does, so encoding never touches the caller's copy.
func writeConfig(config clientcmdapi.Config) ([]byte, error) {
	return runtime.Encode(latest.Codec, &config)
}

// resolveLocalPaths is clientcmd.ResolveLocalPaths: every relative file
// reference of a cluster or user (certificate-authority, client-certificate,
// client-key, tokenFile, and an exec command that contains a path separator)
// becomes absolute against the directory of the stanza's LocationOfOrigin.
// Stanzas without a LocationOfOrigin are left alone.
func resolveLocalPaths(config *clientcmdapi.Config) error {
	for _, cluster := range config.Clusters {
		if len(cluster.LocationOfOrigin) == 0 {
			continue
		}
		base, err := filepath.Abs(filepath.Dir(cluster.LocationOfOrigin))
		if err != nil {
			return fmt.Errorf("could not determine the absolute path of config file %s: %v", cluster.LocationOfOrigin, err)
		}
		resolvePaths([]*string{&cluster.CertificateAuthority}, base)
	}
	for _, authInfo := range config.AuthInfos {
		if len(authInfo.LocationOfOrigin) == 0 {
			continue
		}
		base, err := filepath.Abs(filepath.Dir(authInfo.LocationOfOrigin))
		if err != nil {
			return fmt.Errorf("could not determine the absolute path of config file %s: %v", authInfo.LocationOfOrigin, err)
		}
		refs := []*string{&authInfo.ClientCertificate, &authInfo.ClientKey, &authInfo.TokenFile}
		// Only an exec command given as a path is resolved, not one looked up in PATH.
		if authInfo.Exec != nil && strings.ContainsRune(authInfo.Exec.Command, filepath.Separator) {
			refs = append(refs, &authInfo.Exec.Command)
		}
		resolvePaths(refs, base)
	}
	return nil
}

// resolvePaths makes each non-empty relative path in refs absolute against base.
func resolvePaths(refs []*string, base string) {
	for _, ref := range refs {
		if len(*ref) > 0 && !filepath.IsAbs(*ref) {
			*ref = filepath.Join(base, *ref)
		}
	}
}
