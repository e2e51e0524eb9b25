package main

import (
	"slices"
	"testing"

	"github.com/rdd-project/rdd/internal/cli/exit"
)

func TestSplitInstance(t *testing.T) {
	tests := []struct {
		name      string
		args      []string
		env       string
		want      string
		wantRest  []string
		wantUsage bool
	}{
		{name: "default", args: []string{"status"}, want: "", wantRest: []string{"status"}},
		{name: "env", args: []string{"status"}, env: "bats", want: "bats", wantRest: []string{"status"}},
		{name: "flag wins over env", args: []string{"--instance", "x", "status"}, env: "bats", want: "x", wantRest: []string{"status"}},
		{name: "flag=value", args: []string{"--instance=x", "status", "-o", "json"}, want: "x", wantRest: []string{"status", "-o", "json"}},
		{name: "empty flag=value ignored", args: []string{"--instance=", "status"}, env: "bats", want: "bats", wantRest: []string{"status"}},
		{name: "empty value ignored", args: []string{"--instance", "", "status"}, want: "", wantRest: []string{"status"}},
		{name: "not first: left for cobra", args: []string{"status", "--instance", "x"}, want: "", wantRest: []string{"status", "--instance", "x"}},
		{name: "no args", args: nil, env: "3", want: "3", wantRest: nil},
		{name: "missing value", args: []string{"--instance"}, wantUsage: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			getenv := func(k string) string {
				if k == "RDD_INSTANCE" {
					return tt.env
				}
				return ""
			}
			got, rest, err := splitInstance(tt.args, getenv)
			if tt.wantUsage {
				if exit.Classify(err) != exit.CodeUsage {
					t.Fatalf("splitInstance(%q) error = %v, want a usage error", tt.args, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("splitInstance(%q): %v", tt.args, err)
			}
			if got != tt.want || !slices.Equal(rest, tt.wantRest) {
				t.Errorf("splitInstance(%q) = %q, %q; want %q, %q", tt.args, got, rest, tt.want, tt.wantRest)
			}
		})
	}
}
