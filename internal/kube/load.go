package kube

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/rdd-project/rdd/internal/userfile"
)

// k3sEntryName is the name k3s gives its one cluster, user and context.
const k3sEntryName = "default"

// loadedFile is one kubeconfig as read from disk.
type loadedFile struct {
	Path   string
	Exists bool
	Raw    []byte
	Config *clientcmdapi.Config
}

// readKubeconfig reads and parses the kubeconfig at path. A missing file is an
// empty config with Exists false; anything else that cannot be read is a
// *FileError, and bytes that do not parse are a *ParseError.
func readKubeconfig(path string) (loadedFile, error) {
	return rereadKubeconfig(path, nil)
}

// rereadKubeconfig is readKubeconfig that reuses prev's parsed config when
// the file still holds prev's bytes: parsing dominates the cost of a merge
// into a large kubeconfig, and the file is read once more under the lock.
// The reused config is prev's, not a copy.
func rereadKubeconfig(path string, prev *loadedFile) (loadedFile, error) {
	raw, err := userfile.Read(path) // never a blocking open of a FIFO
	if errors.Is(err, os.ErrNotExist) {
		return loadedFile{Path: path, Config: clientcmdapi.NewConfig()}, nil
	}
	if err != nil {
		return loadedFile{}, &FileError{Op: OpRead, Path: path, Err: err}
	}
	if prev != nil && prev.Exists && prev.Path == path && bytes.Equal(prev.Raw, raw) {
		return *prev, nil
	}
	cfg, err := loadConfig(raw)
	if err != nil {
		return loadedFile{}, &ParseError{Path: path, Err: err}
	}
	return loadedFile{Path: path, Exists: true, Raw: raw, Config: cfg}, nil
}

// readSource loads the cluster kubeconfig and returns its cluster and user
// with file references made absolute (relative paths are relative to the
// file, as kubectl resolves them), so they stay valid when copied elsewhere.
func readSource(path string) (*clientcmdapi.Cluster, *clientcmdapi.AuthInfo, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, nil, &FileError{Op: OpRead, Path: path, Err: err}
	}
	lf, err := readKubeconfig(abs)
	if err != nil {
		return nil, nil, err
	}
	if !lf.Exists {
		return nil, nil, &FileError{Op: OpRead, Path: path, Err: os.ErrNotExist}
	}
	cfg := lf.Config
	for _, c := range cfg.Clusters {
		c.LocationOfOrigin = abs
	}
	for _, u := range cfg.AuthInfos {
		u.LocationOfOrigin = abs
	}
	if err := resolveLocalPaths(cfg); err != nil {
		return nil, nil, &ParseError{Path: path, Err: fmt.Errorf("resolve file references: %w", err)}
	}
	clusterName, userName := pickSourceEntries(cfg)
	cluster := cfg.Clusters[clusterName]
	if cluster == nil {
		return nil, nil, &SourceError{Path: path, Err: ErrNoCluster}
	}
	user := cfg.AuthInfos[userName]
	if user == nil {
		return nil, nil, &SourceError{Path: path, Err: ErrNoUser}
	}
	c, u := cluster.DeepCopy(), user.DeepCopy()
	c.LocationOfOrigin, u.LocationOfOrigin = "", ""
	return c, u, nil
}

// pickSourceEntries chooses the cluster and user to publish: those of the
// file's current context when it resolves, else the entries k3s names
// "default", else the only entry of its kind. An empty name means none fits.
func pickSourceEntries(cfg *clientcmdapi.Config) (cluster, user string) {
	if c := cfg.Contexts[cfg.CurrentContext]; c != nil {
		if cfg.Clusters[c.Cluster] != nil && cfg.AuthInfos[c.AuthInfo] != nil {
			return c.Cluster, c.AuthInfo
		}
	}
	return pickName(keys(cfg.Clusters)), pickName(keys(cfg.AuthInfos))
}

func pickName(names []string) string {
	for _, n := range names {
		if n == k3sEntryName {
			return n
		}
	}
	if len(names) == 1 {
		return names[0]
	}
	return ""
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
