package daemon

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/rdd-project/rdd/internal/logfile"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

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
	// No title line: the daemon log is JSON lines.
	f, err := logfile.Create(path, keepAll, "")
	if err != nil {
		return nil, nil, fmt.Errorf("open daemon log %s: %w", path, err)
	}
	enc := zap.NewProductionEncoderConfig()
	enc.EncodeTime = zapcore.RFC3339NanoTimeEncoder
	core := zapcore.NewCore(zapcore.NewJSONEncoder(enc), zapcore.AddSync(f), lvl)
	return zap.New(core), func() { _ = f.Close() }, nil
}
