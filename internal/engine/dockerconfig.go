package engine

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/rdd-project/rdd/internal/userfile"
)

// configFileName is the Docker CLI's config file inside the config dir.
const configFileName = "config.json"

// ErrMalformedConfig wraps every reason a Docker config.json is refused.
// Nothing is ever written over a malformed file.
var ErrMalformedConfig = errors.New("engine: malformed docker config")

// dockerConfig is a Docker CLI config.json loaded for editing. Every
// top-level key is kept as raw JSON, so keys rdd does not know survive a
// rewrite (F6).
type dockerConfig struct {
	path   string // the file written (symlinks resolved)
	dir    string // the config dir, whose owner a new file gets
	exists bool
	mode   os.FileMode
	raw    map[string]json.RawMessage
}

// readDockerConfig loads <cfgDir>/config.json. A missing file is an empty
// config. An unreadable file, one that is not a JSON object, a non-string
// currentContext, or auths entries the Docker CLI would reject give an
// error (wrapping ErrMalformedConfig for content problems).
func readDockerConfig(cfgDir string) (*dockerConfig, error) {
	c := &dockerConfig{path: filepath.Join(cfgDir, configFileName), dir: cfgDir, mode: 0o600, raw: map[string]json.RawMessage{}}
	if p, err := filepath.EvalSymlinks(c.path); err == nil {
		c.path = p // rewrite the link's target, keep the link
	}
	// Never a blocking open: a FIFO here hung `rdd stop` (issue 10).
	b, err := userfile.Read(c.path)
	if errors.Is(err, os.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read docker config: %w", err)
	}
	c.exists = true
	if st, err := os.Stat(c.path); err == nil {
		c.mode = st.Mode().Perm()
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return c, nil
	}
	if err := json.Unmarshal(b, &c.raw); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrMalformedConfig, c.path, err)
	}
	if c.raw == nil { // the file was "null"
		c.raw = map[string]json.RawMessage{}
	}
	if v, ok := c.raw["currentContext"]; ok {
		var s *string
		if err := json.Unmarshal(v, &s); err != nil {
			return nil, fmt.Errorf("%w: %s: currentContext: %w", ErrMalformedConfig, c.path, err)
		}
	}
	if err := validateAuths(c.raw["auths"]); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrMalformedConfig, c.path, err)
	}
	return c, nil
}

// validateAuths applies the Docker CLI's checks to the auths object: it is
// an object of objects, and each non-empty "auth" is base64 of "user:secret"
// with a non-empty user.
func validateAuths(raw json.RawMessage) error {
	if len(raw) == 0 {
		return nil
	}
	var auths map[string]struct {
		Auth string `json:"auth"`
	}
	if err := json.Unmarshal(raw, &auths); err != nil {
		return fmt.Errorf("auths: %w", err)
	}
	for reg, a := range auths {
		if a.Auth == "" {
			continue
		}
		dec, err := base64.StdEncoding.DecodeString(a.Auth)
		if err != nil {
			return fmt.Errorf("auths[%q].auth: %w", reg, err)
		}
		user, _, ok := strings.Cut(string(dec), ":")
		if !ok || user == "" {
			return fmt.Errorf("auths[%q].auth: invalid auth configuration (want base64 of user:password)", reg)
		}
	}
	return nil
}

// currentContext returns the currentContext key ("" when absent or null).
func (c *dockerConfig) currentContext() string {
	var s string
	_ = json.Unmarshal(c.raw["currentContext"], &s) // validated at read
	return s
}

// setCurrentContext sets currentContext; "" removes the key.
func (c *dockerConfig) setCurrentContext(name string) {
	if name == "" {
		delete(c.raw, "currentContext")
		return
	}
	b, _ := json.Marshal(name)
	c.raw["currentContext"] = b
}

// write saves the config atomically (temp file, fsync, rename), keeping the
// file's mode and owner (0600 and the config dir's owner for a new file).
func (c *dockerConfig) write() error {
	b, err := json.MarshalIndent(c.raw, "", "\t")
	if err != nil {
		return fmt.Errorf("encode %s: %w", c.path, err)
	}
	ownerOf := c.dir
	if c.exists {
		ownerOf = c.path
	}
	if err := os.MkdirAll(filepath.Dir(c.path), 0o700); err != nil {
		return err
	}
	return writeFileAtomic(c.path, append(b, '\n'), c.mode, ownerOf)
}

// writeFileAtomic writes data to path through a temp file in the same
// directory and a rename, so readers see the old or the new file, never a
// part. The file gets mode and the owner of ownerOf (when that exists and
// this process may chown, i.e. when rdd runs as root for another user).
func writeFileAtomic(path string, data []byte, mode os.FileMode, ownerOf string) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = os.Remove(tmp)
		}
	}()
	if _, err = f.Write(data); err != nil {
		_ = f.Close()
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err = f.Chmod(mode); err != nil {
		_ = f.Close()
		return fmt.Errorf("chmod %s: %w", tmp, err)
	}
	matchOwner(f, ownerOf)
	if err = f.Sync(); err != nil {
		_ = f.Close()
		return fmt.Errorf("sync %s: %w", tmp, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp, err)
	}
	if err = os.Rename(tmp, path); err != nil {
		return fmt.Errorf("rename %s: %w", tmp, err)
	}
	return nil
}

// matchOwner gives f the owner of ref when they differ; failures are
// ignored (only root may chown, and then it matters).
func matchOwner(f *os.File, ref string) {
	st, err := os.Stat(ref)
	if err != nil {
		return
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok && (int(sys.Uid) != os.Getuid() || int(sys.Gid) != os.Getgid()) {
		_ = f.Chown(int(sys.Uid), int(sys.Gid))
	}
}
