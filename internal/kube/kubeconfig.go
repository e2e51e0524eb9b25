package kube

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	clientcmdv1 "k8s.io/client-go/tools/clientcmd/api/v1"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// The functions in this file are client-go's tools/clientcmd Load, Write and
// ResolveLocalPaths (loader.go, v0.34), reproduced so that rdd links neither
// the clientcmd package (it imports rest, and with it exec credential
// plugins, go-spew and more) nor clientcmd/api/latest: its codec is built
// from apimachinery's JSON serializer and versioning codec, which import
// apis/meta/v1 and with it util/validation, api/resource and gopkg.in/inf.v0,
// whose package init every rdd command would pay. loadConfig and writeConfig
// instead take, step by step, the path latest.Codec takes for a Config: the
// same YAML and JSON libraries, the same v1 types, defaulting and generated
// conversions, and the same errors. compat_test.go pins them to clientcmd's.

var (
	// v1ConfigKind and internalConfigKind are the two kinds latest.Scheme
	// registers (clientcmdapi/v1's and clientcmdapi's AddToScheme).
	v1ConfigKind       = schema.GroupVersionKind{Version: clientcmdv1.SchemeGroupVersion.Version, Kind: "Config"}
	internalConfigKind = schema.GroupVersionKind{Version: runtime.APIVersionInternal, Kind: "Config"}
)

// loadConfig is clientcmd.Load: it decodes a kubeconfig (YAML or JSON) as
// latest.Codec does: YAML to JSON, the apiVersion and kind defaulted to
// v1 Config, the JSON decoded case-sensitively into the v1 type, v1
// defaulting, and conversion to the internal type. Empty data is an empty
// config.
func loadConfig(data []byte) (*clientcmdapi.Config, error) {
	config := clientcmdapi.NewConfig()
	// The codec rejects empty input; clientcmd treats it as an empty config.
	if len(data) == 0 {
		return config, nil
	}
	// The YAML serializer (apimachinery runtime/serializer/json).
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		return nil, err
	}
	// json.DefaultMetaFactory.Interpret.
	findKind := struct {
		// +optional
		APIVersion string `json:"apiVersion,omitempty"`
		// +optional
		Kind string `json:"kind,omitempty"`
	}{}
	if err := json.Unmarshal(js, &findKind); err != nil {
		return nil, fmt.Errorf("couldn't get version/kind; json parse error: %v", err)
	}
	gv, err := schema.ParseGroupVersion(findKind.APIVersion)
	if err != nil {
		return nil, err
	}
	actual := schema.GroupVersionKind{Group: gv.Group, Version: gv.Version, Kind: findKind.Kind}
	// Defaulted first from the default kind Load passes (v1 Config), then
	// from the kind of the object decoded into (the internal Config).
	actual = gvkWithDefaults(actual, v1ConfigKind)
	actual = gvkWithDefaults(actual, internalConfigKind)
	if len(actual.Kind) == 0 {
		return nil, runtime.NewMissingKindErr(string(data))
	}
	if len(actual.Version) == 0 {
		return nil, runtime.NewMissingVersionErr(string(data))
	}
	switch actual {
	case internalConfigKind:
		// runtime.UseOrCreateObject: the data names the internal type, so
		// it is decoded into config itself, with neither defaulting nor
		// conversion.
		if err := kjson.UnmarshalCaseSensitivePreserveInts(js, config); err != nil {
			return nil, err
		}
		return config, nil
	case v1ConfigKind:
		external := &clientcmdv1.Config{}
		if err := kjson.UnmarshalCaseSensitivePreserveInts(js, external); err != nil {
			return nil, err
		}
		clientcmdv1.SetObjectDefaults_Config(external)
		if err := clientcmdv1.Convert_v1_Config_To_api_Config(external, config, nil); err != nil {
			return nil, err
		}
		return config, nil
	default:
		// latest.Scheme.New's error. It quotes the scheme's name, which
		// runtime.NewScheme takes from its call site: in a module build,
		// its own line in apimachinery's scheme.go ("pkg/runtime/scheme.go:110"
		// in v0.34), the same for any scheme, so a fresh one, made only on
		// this path, carries it.
		return nil, runtime.NewNotRegisteredErrForKind(runtime.NewScheme().Name(), actual)
	}
}

// gvkWithDefaults is the JSON serializer's: the kind, and the version if
// the group allows, taken from defaultGVK where actual has none.
func gvkWithDefaults(actual, defaultGVK schema.GroupVersionKind) schema.GroupVersionKind {
	if len(actual.Kind) == 0 {
		actual.Kind = defaultGVK.Kind
	}
	if len(actual.Version) == 0 && len(actual.Group) == 0 {
		actual.Group = defaultGVK.Group
		actual.Version = defaultGVK.Version
	}
	if len(actual.Version) == 0 && actual.Group == defaultGVK.Group {
		actual.Version = defaultGVK.Version
	}
	return actual
}

// writeConfig is clientcmd.Write: the config deep-copied, converted to v1
// with its apiVersion and kind set, marshalled with encoding/json and turned
// into YAML, as latest.Codec encodes it. It takes config by value, as Write
// does, and encoding never touches the caller's copy.
func writeConfig(config clientcmdapi.Config) ([]byte, error) {
	external := &clientcmdv1.Config{}
	if err := clientcmdv1.Convert_api_Config_To_v1_Config(config.DeepCopy(), external, nil); err != nil {
		return nil, err
	}
	external.SetGroupVersionKind(v1ConfigKind)
	js, err := json.Marshal(external)
	if err != nil {
		return nil, err
	}
	return yaml.JSONToYAML(js)
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
