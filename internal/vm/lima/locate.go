package lima

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/rdd-project/rdd/internal/vm/lima/bundle"
)

// EnvHelper names an rdd-lima to use instead of the one rdd carries.
const EnvHelper = "RDD_LIMA_HELPER"

// Locate finds rdd-lima: RDD_LIMA_HELPER, else the copy rdd carries
// (extracted once into cacheDir/lima/<digest>/ with the guest agent beside
// it, where Lima looks for it), else rdd-lima next to rdd's executable
// (the bin/ layout of `make build`).
func Locate(getenv func(string) string, cacheDir, arch string) (string, error) {
	if p := getenv(EnvHelper); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%s=%s: %w", EnvHelper, p, err)
		}
		return p, nil
	}
	if len(bundle.Helper) > 0 {
		return extract(cacheDir, arch, strings.TrimSpace(bundle.Digest), bundle.Helper, bundle.GuestAgent)
	}
	exe, err := os.Executable()
	if err == nil {
		p := filepath.Join(filepath.Dir(exe), "rdd-lima")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", errors.New("this rdd carries no lima driver (built without `make build`) and no rdd-lima is next to it: build with `make build`, or set RDD_LIMA_HELPER")
}

func extract(cacheDir, arch, digest string, helperGz, agentGz []byte) (string, error) {
	dir := filepath.Join(cacheDir, "lima", digest)
	helper := filepath.Join(dir, "rdd-lima")
	if _, err := os.Stat(helper); err == nil {
		return helper, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("extract rdd-lima into %s: %w", dir, err)
	}
	// The guest agent first: a helper that exists means both do.
	if err := writeAtomic(filepath.Join(dir, "lima-guestagent.Linux-"+arch+".gz"), bytes.NewReader(agentGz), 0o644); err != nil {
		return "", err
	}
	zr, err := gzip.NewReader(bytes.NewReader(helperGz))
	if err != nil {
		return "", fmt.Errorf("the rdd-lima rdd carries is damaged: %w", err)
	}
	if err := writeAtomic(helper, zr, 0o755); err != nil {
		return "", err
	}
	return helper, nil
}

func writeAtomic(path string, r io.Reader, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".extract-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, r); err != nil {
		tmp.Close()
		return fmt.Errorf("extract %s: %w", path, err)
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
