package daemon

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// keepLogs is how many rotated daemon logs are kept (behavior.md §1.2).
const keepLogs = 5

// newFileLogger rotates path (X.log → X.1.log …) and returns a JSON-lines
// zap logger writing to a fresh file.
func newFileLogger(path, level string, keepAll bool) (*zap.Logger, func(), error) {
	lvl := zapcore.InfoLevel
	if level != "" {
		if err := lvl.UnmarshalText([]byte(strings.ToLower(level))); err != nil {
			return nil, nil, fmt.Errorf("invalid log level %q: valid levels: debug, info, warn, error", level)
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, nil, fmt.Errorf("create log directory %s: %w", filepath.Dir(path), err)
	}
	rotate(path, keepAll)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("open daemon log %s: %w", path, err)
	}
	enc := zap.NewProductionEncoderConfig()
	enc.EncodeTime = zapcore.RFC3339NanoTimeEncoder
	core := zapcore.NewCore(zapcore.NewJSONEncoder(enc), zapcore.AddSync(f), lvl)
	return zap.New(core), func() { _ = f.Close() }, nil
}

func rotate(path string, keepAll bool) {
	if _, err := os.Stat(path); err != nil {
		return
	}
	ext := filepath.Ext(path)
	base := strings.TrimSuffix(path, ext)
	name := func(n int) string { return fmt.Sprintf("%s.%d%s", base, n, ext) }
	n := 1
	for {
		if _, err := os.Stat(name(n)); err != nil {
			break
		}
		n++
	}
	for i := n; i > 1; i-- {
		_ = os.Rename(name(i-1), name(i))
	}
	_ = os.Rename(path, name(1))
	if !keepAll {
		for i := keepLogs + 1; i <= n; i++ {
			_ = os.Remove(name(i))
		}
	}
}
