package kube

import (
	"sync"

	"go.uber.org/zap"
)

// errorLogMemory bounds how many distinct errors an ErrorLogger remembers;
// past it the oldest is forgotten and could be logged at error level again.
const errorLogMemory = 16

// ErrorLogger logs a recurring failure at error level once per distinct error
// text and at debug level on repeats, so a MergeFailed retried every 5 s does
// not flood the log (F7). Reset forgets everything, typically after a success,
// so the next failure is reported again. Safe for concurrent use.
type ErrorLogger struct {
	log  *zap.Logger
	mu   sync.Mutex
	seen []string // guarded by mu, oldest first
}

// NewErrorLogger returns an ErrorLogger writing to log (nil means no logging).
func NewErrorLogger(log *zap.Logger) *ErrorLogger {
	if log == nil {
		log = zap.NewNop()
	}
	return &ErrorLogger{log: log}
}

// Log logs msg with err and fields: at error level when err's text is new
// since the last Reset, else at debug. It reports whether it logged at error
// level. A nil err logs nothing.
func (l *ErrorLogger) Log(msg string, err error, fields ...zap.Field) bool {
	if err == nil {
		return false
	}
	text := err.Error()
	fields = append(fields, zap.Error(err))
	l.mu.Lock()
	fresh := true
	for _, s := range l.seen {
		if s == text {
			fresh = false
			break
		}
	}
	if fresh {
		if len(l.seen) == errorLogMemory {
			l.seen = l.seen[1:]
		}
		l.seen = append(l.seen, text)
	}
	l.mu.Unlock()
	if fresh {
		l.log.Error(msg, fields...)
	} else {
		l.log.Debug(msg, fields...)
	}
	return fresh
}

// Reset forgets the errors seen so far.
func (l *ErrorLogger) Reset() {
	l.mu.Lock()
	l.seen = nil
	l.mu.Unlock()
}
