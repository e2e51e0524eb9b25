package exit

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/rdd-project/rdd/internal/api"
	"github.com/rdd-project/rdd/internal/api/client"
)

func TestClassify(t *testing.T) {
	rejected := &client.APIError{Status: 422, Code: api.CodeRejected, Message: `spec.kubernetes.version "1.31.99" is not supported`}
	tests := []struct {
		name string
		err  error
		want int
	}{
		{"nil", nil, CodeOK},
		{"plain", errors.New("boom"), CodeError},
		{"usage", Usagef("unknown flag: --x"), CodeUsage},
		{"deadline", context.DeadlineExceeded, CodeTimeout},
		{"wrapped deadline", fmt.Errorf("timed out waiting for App state: %w", context.DeadlineExceeded), CodeTimeout},
		{"rejected", rejected, CodeRejected},
		{"wrapped rejected", fmt.Errorf("set: %w", rejected), CodeRejected},
		{"other API error", &client.APIError{Status: 500, Code: api.CodeInternal, Message: "x"}, CodeError},
		{"daemon not running", fmt.Errorf("x: %w", client.ErrDaemonNotRunning), CodeError},
		{"explicit code wins", &Error{Code: 7, Err: context.DeadlineExceeded}, 7},
		{"wrapped explicit code", fmt.Errorf("run: %w", Silent(42)), 42},
		{"canceled", context.Canceled, CodeError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Classify(tt.err); got != tt.want {
				t.Errorf("Classify(%v) = %d, want %d", tt.err, got, tt.want)
			}
		})
	}
}

func TestErrorFormsAndPredicates(t *testing.T) {
	s := Silent(3)
	if !IsSilent(s) || s.Error() != "exit status 3" {
		t.Errorf("Silent(3): IsSilent=%t Error=%q", IsSilent(s), s.Error())
	}
	u := Usagef("bad %s", "flag")
	if IsSilent(u) || !IsUsage(u) || u.Error() != "bad flag" {
		t.Errorf("Usagef: IsSilent=%t IsUsage=%t Error=%q", IsSilent(u), IsUsage(u), u.Error())
	}
	inner := errors.New("inner")
	if !errors.Is(&Error{Code: 1, Err: inner}, inner) {
		t.Error("Error does not unwrap")
	}
	if IsUsage(errors.New("x")) || IsSilent(nil) {
		t.Error("plain errors are neither usage nor silent")
	}
}
