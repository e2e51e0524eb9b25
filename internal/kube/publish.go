package kube

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"reflect"
	"time"

	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/rdd-project/rdd/internal/userfile"
)

// Publication names what rdd publishes and where. It is plain data, built once
// from paths.Paths and the frozen environment.
type Publication struct {
	// Name is N: the context, cluster and user name (rancher-desktop-S).
	Name string
	// Source is the cluster kubeconfig, D/k3s.yaml.
	Source string
	// Standalone is H/kube.config, which holds only N.
	Standalone string
	// Target locates the user's kubeconfig.
	Target Target
	// LockWait bounds the wait for a held kubeconfig lock; 0 means DefaultLockWait.
	LockWait time.Duration
}

func (p Publication) validate() error {
	if p.Name == "" {
		return errors.New("kube: publication has no context name")
	}
	return nil
}

// PublishResult reports what Publish did.
type PublishResult struct {
	// File is the kubeconfig that holds context Name.
	File string
	// Changed is true when File was rewritten (false: it already matched).
	Changed bool
	// StandaloneChanged is true when the standalone kubeconfig was rewritten.
	StandaloneChanged bool
}

// Publish upserts cluster, user and context Name, taken from the cluster
// kubeconfig, into the user's kubeconfig (§8.3 steps 1–5 with F1, F4, F5): into
// the first listed file that already holds one of them, else the first listed
// file. Other entries and current-context are kept; the context's namespace,
// if the user set one, is kept too. The file is written only when an entry
// changes. On success the standalone kubeconfig is brought up to date; after a
// failure it is not touched. Current-context is SwitchCurrentContext's job.
func Publish(ctx context.Context, p Publication) (PublishResult, error) {
	if err := p.validate(); err != nil {
		return PublishResult{}, err
	}
	cluster, user, err := readSource(p.Source)
	if err != nil {
		return PublishResult{}, err
	}
	files, err := p.Target.Files()
	if err != nil {
		return PublishResult{}, err
	}
	dest, err := publishDestination(files, p.Name)
	if err != nil {
		return PublishResult{}, err
	}
	res := PublishResult{File: dest.Path}
	res.Changed, err = editFile(ctx, &dest, p.LockWait, true, func(cfg *clientcmdapi.Config) bool {
		return upsert(cfg, p.Name, cluster, user)
	})
	if err != nil {
		return res, err
	}
	if p.Standalone != "" {
		res.StandaloneChanged, err = writeStandalone(ctx, p, cluster, user)
	}
	return res, err
}

// publishDestination applies kubectl's rule for where an entry goes: the first
// file that already holds it, else the first listed file. Every existing file
// must parse, because kubectl refuses to load a list with a broken member and
// publishing into it would help nobody.
func publishDestination(files []string, name string) (loadedFile, error) {
	var first loadedFile
	for i, f := range files {
		lf, err := readKubeconfig(f)
		if err != nil {
			return loadedFile{}, err
		}
		if holds(lf.Config, name) {
			return lf, nil
		}
		if i == 0 {
			first = lf
		}
	}
	return first, nil
}

// holds reports whether cfg has any entry named name.
func holds(cfg *clientcmdapi.Config, name string) bool {
	return cfg.Contexts[name] != nil || cfg.Clusters[name] != nil || cfg.AuthInfos[name] != nil
}

// upsert sets clusters[name], users[name] and contexts[name] and reports
// whether anything differs from what cfg held.
func upsert(cfg *clientcmdapi.Config, name string, cluster *clientcmdapi.Cluster, user *clientcmdapi.AuthInfo) bool {
	changed := false
	if !reflect.DeepEqual(cfg.Clusters[name], cluster) {
		cfg.Clusters[name] = cluster.DeepCopy()
		changed = true
	}
	if !reflect.DeepEqual(cfg.AuthInfos[name], user) {
		cfg.AuthInfos[name] = user.DeepCopy()
		changed = true
	}
	old := cfg.Contexts[name]
	if old == nil || old.Cluster != name || old.AuthInfo != name {
		c := clientcmdapi.NewContext()
		c.Cluster, c.AuthInfo = name, name
		if old != nil {
			// `kubectl config set-context --namespace` on our context survives.
			c.Namespace = old.Namespace
		}
		cfg.Contexts[name] = c
		changed = true
	}
	return changed
}

// writeStandalone writes the kubeconfig that holds only Name and selects it.
// The file is rdd's own, so it is compared byte for byte and replaced whole.
func writeStandalone(ctx context.Context, p Publication, cluster *clientcmdapi.Cluster, user *clientcmdapi.AuthInfo) (bool, error) {
	cfg := clientcmdapi.NewConfig()
	upsert(cfg, p.Name, cluster, user)
	cfg.CurrentContext = p.Name
	want, err := writeConfig(*cfg)
	if err != nil {
		return false, fmt.Errorf("serialise standalone kubeconfig %s: %w", p.Standalone, err)
	}
	if err := ensureDir(p.Standalone, p.Standalone); err != nil {
		return false, err
	}
	release, err := acquireLock(ctx, p.Standalone, p.LockWait)
	if err != nil {
		return false, err
	}
	defer release()
	have, err := userfile.Read(p.Standalone)
	if err == nil && bytes.Equal(have, want) {
		return false, nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return false, &FileError{Op: OpRead, Path: p.Standalone, Err: err}
	}
	if err := writeAtomic(p.Standalone, want); err != nil {
		return false, err
	}
	return true, nil
}

// RemoveResult reports what Remove did.
type RemoveResult struct {
	// Changed lists the kubeconfig files that were rewritten.
	Changed []string
	// StandaloneRemoved is true when the standalone kubeconfig existed and was deleted.
	StandaloneRemoved bool
}

// Remove deletes cluster, user and context Name from every listed kubeconfig
// that holds them, clears current-context where it is Name (§8.4), and
// deletes the standalone kubeconfig. It never creates a file and rewrites only
// files that change (F1). It carries on past a failing file and returns all
// failures joined, so one broken file does not keep rdd's entries in another.
func Remove(ctx context.Context, p Publication) (RemoveResult, error) {
	if err := p.validate(); err != nil {
		return RemoveResult{}, err
	}
	files, err := p.Target.Files()
	if err != nil {
		return RemoveResult{}, err
	}
	var res RemoveResult
	var errs []error
	for _, f := range files {
		lf, err := readKubeconfig(f)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !lf.Exists || (!holds(lf.Config, p.Name) && lf.Config.CurrentContext != p.Name) {
			continue
		}
		changed, err := editFile(ctx, &lf, p.LockWait, false, func(cfg *clientcmdapi.Config) bool {
			return drop(cfg, p.Name)
		})
		if err != nil {
			errs = append(errs, err)
		}
		if changed {
			res.Changed = append(res.Changed, f)
		}
	}
	if p.Standalone != "" {
		if _, err := os.Lstat(p.Standalone); err == nil {
			if err := removeFile(p.Standalone); err != nil {
				errs = append(errs, err)
			} else {
				res.StandaloneRemoved = true
			}
		}
	}
	return res, errors.Join(errs...)
}

// drop removes name's entries and a current-context that selects it.
func drop(cfg *clientcmdapi.Config, name string) bool {
	changed := holds(cfg, name) || cfg.CurrentContext == name
	delete(cfg.Clusters, name)
	delete(cfg.AuthInfos, name)
	delete(cfg.Contexts, name)
	if cfg.CurrentContext == name {
		cfg.CurrentContext = ""
	}
	return changed
}

// editFile runs a read-modify-write of the kubeconfig prev.Path under
// kubectl's lock: it re-reads the file once the lock is held (reusing prev's
// parse if the bytes did not change), lets edit change the parsed config, and
// writes it atomically only if edit reports a change. With create false a
// missing file is left missing (and no lock is taken).
func editFile(ctx context.Context, prev *loadedFile, wait time.Duration, create bool, edit func(*clientcmdapi.Config) bool) (bool, error) {
	path := prev.Path
	if !create {
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			return false, nil
		}
	}
	if err := ensureDir(path, path); err != nil {
		return false, err
	}
	release, err := acquireLock(ctx, path, wait)
	if err != nil {
		return false, err
	}
	defer release()
	lf, err := rereadKubeconfig(path, prev)
	if err != nil {
		return false, err
	}
	if !lf.Exists && !create {
		return false, nil
	}
	if !edit(lf.Config) {
		return false, nil
	}
	data, err := writeConfig(*lf.Config)
	if err != nil {
		return false, fmt.Errorf("serialise kubeconfig %s: %w", path, err)
	}
	if err := writeAtomic(path, data); err != nil {
		return false, err
	}
	return true, nil
}
