package engine

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/rdd-project/rdd/internal/userfile"
)

// DefaultDockerHost is the endpoint of the "default" Docker context when
// DOCKER_HOST is not set.
const DefaultDockerHost = "unix:///var/run/docker.sock"

// ContextPingTimeout bounds the probe of the user's current context.
const ContextPingTimeout = 3 * time.Second

// DockerConfigDir returns the Docker CLI config dir: $DOCKER_CONFIG if set,
// else <home>/.docker. getenv is the daemon's environment, frozen when it
// started (F20).
func DockerConfigDir(getenv func(string) string, home string) string {
	if d := getenv("DOCKER_CONFIG"); d != "" {
		return d
	}
	return filepath.Join(home, ".docker")
}

// contextDirName is the Docker CLI's directory name for context name.
func contextDirName(name string) string {
	sum := sha256.Sum256([]byte(name))
	return hex.EncodeToString(sum[:])
}

// ContextMetaDir returns <cfgDir>/contexts/meta/<sha256(name)>, the
// directory that holds the context's meta.json.
func ContextMetaDir(cfgDir, name string) string {
	return filepath.Join(cfgDir, "contexts", "meta", contextDirName(name))
}

func contextTLSDir(cfgDir, name string) string {
	return filepath.Join(cfgDir, "contexts", "tls", contextDirName(name))
}

// contextMeta is the Docker CLI's meta.json. Field order gives the exact
// bytes of behavior.md §7.4.
type contextMeta struct {
	Name      string                     `json:"Name"`
	Metadata  contextMetadata            `json:"Metadata"`
	Endpoints map[string]json.RawMessage `json:"Endpoints"`
}

type contextMetadata struct {
	Description string `json:"Description"`
}

type dockerEndpoint struct {
	Host          string `json:"Host"`
	SkipTLSVerify bool   `json:"SkipTLSVerify"`
}

// ContextMetaJSON returns the meta.json that EnsureContext writes:
// {"Name":"N","Metadata":{"Description":"Rancher Desktop N"},
// "Endpoints":{"docker":{"Host":"<host>","SkipTLSVerify":false}}}.
func ContextMetaJSON(name, host string) []byte {
	ep, _ := json.Marshal(dockerEndpoint{Host: host})
	b, _ := json.Marshal(contextMeta{
		Name:      name,
		Metadata:  contextMetadata{Description: "Rancher Desktop " + name},
		Endpoints: map[string]json.RawMessage{"docker": ep},
	})
	return b
}

// EnsureContext creates or replaces the Docker context name, pointing at
// host, in the Docker-CLI-compatible store under cfgDir. An identical
// meta.json is left untouched; a different one is replaced atomically.
func EnsureContext(cfgDir, name, host string) error {
	dir := ContextMetaDir(cfgDir, name)
	path := filepath.Join(dir, "meta.json")
	want := ContextMetaJSON(name, host)
	if have, err := userfile.Read(path); err == nil && bytes.Equal(have, want) {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create docker context %s: %w", name, err)
	}
	if err := writeFileAtomic(path, want, 0o644, cfgDir); err != nil {
		return fmt.Errorf("write docker context %s: %w", name, err)
	}
	return nil
}

// RemoveContext removes the Docker context name: it clears currentContext
// in config.json when (and only when) it equals name, then deletes the
// context's directories. A malformed config.json is never written; the
// directories are removed anyway and the config error is returned.
func RemoveContext(ctx context.Context, cfgDir, name string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var errs []error
	if cfg, err := readDockerConfig(cfgDir); err != nil {
		errs = append(errs, fmt.Errorf("clear docker current context: %w", err))
	} else if cfg.currentContext() == name {
		cfg.setCurrentContext("")
		if err := cfg.write(); err != nil {
			errs = append(errs, fmt.Errorf("clear docker current context: %w", err))
		}
	}
	for _, dir := range []string{ContextMetaDir(cfgDir, name), contextTLSDir(cfgDir, name)} {
		if err := os.RemoveAll(dir); err != nil {
			errs = append(errs, fmt.Errorf("remove docker context %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

// SwitchCurrentContextIfUnhealthy makes name the Docker CLI's current
// context when the user's current one does not work (behavior.md §7.4):
//
//   - DOCKER_HOST or DOCKER_CONTEXT set in env: nothing is done (F20).
//   - config.json unreadable or malformed (bad auths too): error, no write.
//   - current context "" or "default": DefaultDockerHost is pinged.
//   - a named context that does not exist is unhealthy; one that cannot be
//     judged (unreadable metadata or TLS files, a scheme other than unix
//     or tcp, e.g. ssh or npipe) is healthy; otherwise its endpoint is pinged.
//
// Pings time out after ContextPingTimeout. When ctx ends during the probe,
// nothing is written and ctx's error is returned. The write is skipped when
// currentContext is already name or changed while probing.
func SwitchCurrentContextIfUnhealthy(ctx context.Context, cfgDir, name string, env func(string) string) (switched bool, err error) {
	return switchCurrentContext(ctx, cfgDir, name, env, DefaultDockerHost)
}

func switchCurrentContext(ctx context.Context, cfgDir, name string, env func(string) string, defaultHost string) (bool, error) {
	if env("DOCKER_HOST") != "" || env("DOCKER_CONTEXT") != "" {
		return false, nil
	}
	cfg, err := readDockerConfig(cfgDir)
	if err != nil {
		return false, err
	}
	cur := cfg.currentContext()
	if cur == name {
		return false, nil
	}
	healthy := contextHealthy(ctx, cfgDir, cur, defaultHost)
	if err := ctx.Err(); err != nil {
		return false, err
	}
	if healthy {
		return false, nil
	}
	// Read again: the user may have switched while we probed.
	cfg, err = readDockerConfig(cfgDir)
	if err != nil {
		return false, err
	}
	if cfg.currentContext() != cur {
		return false, nil
	}
	cfg.setCurrentContext(name)
	if err := cfg.write(); err != nil {
		return false, fmt.Errorf("set docker current context: %w", err)
	}
	return true, nil
}

// contextHealthy judges the Docker context cur ("" or "default" is the
// default endpoint). Unknown means healthy.
func contextHealthy(ctx context.Context, cfgDir, cur, defaultHost string) bool {
	if cur == "" || cur == "default" {
		return pingEndpoint(ctx, defaultHost, nil) == nil
	}
	b, err := userfile.Read(filepath.Join(ContextMetaDir(cfgDir, cur), "meta.json"))
	if errors.Is(err, os.ErrNotExist) {
		return false // the context does not exist
	}
	if err != nil {
		return true // undecidable
	}
	var meta contextMeta
	var ep dockerEndpoint
	if json.Unmarshal(b, &meta) != nil || json.Unmarshal(meta.Endpoints["docker"], &ep) != nil || ep.Host == "" {
		return true
	}
	u, err := url.Parse(ep.Host)
	if err != nil {
		return true
	}
	switch u.Scheme {
	case "unix":
		return pingEndpoint(ctx, ep.Host, nil) == nil
	case "tcp":
		tlsCfg, ok := contextTLS(cfgDir, cur, ep.SkipTLSVerify)
		if !ok {
			return true
		}
		return pingEndpoint(ctx, ep.Host, tlsCfg) == nil
	default: // ssh, npipe and anything else: cannot be judged here
		return true
	}
}

// contextTLS loads the TLS material the Docker CLI keeps for a context's
// docker endpoint. No TLS directory means plain TCP (nil config). ok is
// false when the material exists but cannot be read or parsed.
func contextTLS(cfgDir, name string, skipVerify bool) (cfg *tls.Config, ok bool) {
	dir := filepath.Join(contextTLSDir(cfgDir, name), "docker")
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, true
	}
	if err != nil || len(ents) == 0 {
		return nil, err == nil
	}
	read := func(f string) ([]byte, bool, bool) { // data, present, ok
		b, err := userfile.Read(filepath.Join(dir, f))
		if errors.Is(err, os.ErrNotExist) {
			return nil, false, true
		}
		return b, err == nil, err == nil
	}
	cfg = &tls.Config{InsecureSkipVerify: skipVerify, MinVersion: tls.VersionTLS12} //nolint:gosec // the user's choice, as the Docker CLI honours it
	ca, hasCA, ok1 := read("ca.pem")
	cert, hasCert, ok2 := read("cert.pem")
	key, hasKey, ok3 := read("key.pem")
	if !ok1 || !ok2 || !ok3 {
		return nil, false
	}
	if hasCA {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(ca) {
			return nil, false
		}
		cfg.RootCAs = pool
	}
	if hasCert || hasKey {
		kp, err := tls.X509KeyPair(cert, key)
		if err != nil {
			return nil, false
		}
		cfg.Certificates = []tls.Certificate{kp}
	}
	return cfg, true
}

// pingEndpoint pings the Docker API at host within ContextPingTimeout.
func pingEndpoint(ctx context.Context, host string, tlsCfg *tls.Config) error {
	ctx, cancel := context.WithTimeout(ctx, ContextPingTimeout)
	defer cancel()
	return ping(ctx, host, tlsCfg)
}

// Ping sends GET /_ping to the Docker API at host ("unix:///path" or
// "tcp://127.0.0.1:port") and succeeds on a 2xx answer. It keeps no
// connection open afterwards; ctx bounds it.
func Ping(ctx context.Context, host string) error {
	return ping(ctx, host, nil)
}

func ping(ctx context.Context, host string, tlsCfg *tls.Config) error {
	cli, err := newDockerClient(host, tlsCfg)
	if err != nil {
		return err
	}
	defer cli.Close()
	_, err = cli.Ping(ctx)
	return err
}
