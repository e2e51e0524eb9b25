package kube

import (
	"errors"
	"fmt"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

func TestErrorLoggerOncePerDistinctError(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	l := NewErrorLogger(zap.New(core))
	a, b := errors.New("merge failed: a"), errors.New("merge failed: b")
	steps := []struct {
		err       error
		wantError bool
	}{
		{a, true}, {a, false}, {b, true}, {a, false}, {b, false},
	}
	for i, s := range steps {
		if got := l.Log("publish kube context", s.err); got != s.wantError {
			t.Fatalf("step %d: logged at error = %v, want %v", i, got, s.wantError)
		}
	}
	l.Reset()
	if !l.Log("publish kube context", a) {
		t.Fatal("after Reset the error is new again")
	}
	var levels []zapcore.Level
	for _, e := range logs.All() {
		levels = append(levels, e.Level)
	}
	want := fmt.Sprint([]zapcore.Level{zapcore.ErrorLevel, zapcore.DebugLevel, zapcore.ErrorLevel, zapcore.DebugLevel, zapcore.DebugLevel, zapcore.ErrorLevel})
	if fmt.Sprint(levels) != want {
		t.Fatalf("levels %v, want %s", levels, want)
	}
	if l.Log("x", nil) {
		t.Fatal("nil error logged")
	}
	NewErrorLogger(nil).Log("no logger", a) // must not panic
}
