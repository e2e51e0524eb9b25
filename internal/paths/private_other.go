//go:build !unix

package paths

import (
	"fmt"
	"os"
)

// EnsurePrivateDir creates dir (mode 0700) if it is missing and refuses a
// path that is not a real directory. Ownership is not checked here: rdd's
// socket security relies on Unix permissions and peer credentials.
func EnsurePrivateDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create directory %s: %w", dir, err)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("inspect %s: %w", dir, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a real directory: move it away and start again", dir)
	}
	return nil
}
