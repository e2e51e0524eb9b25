package main

import (
	"strings"

	"github.com/rdd-project/rdd/internal/cli/exit"
)

// splitInstance picks the instance suffix (behavior.md §1.1): `--instance X`
// or `--instance=X` as the first argument, else $RDD_INSTANCE, else "" (the
// default instance). An empty value is ignored. It returns the remaining
// arguments; `--instance` anywhere else is left for cobra, which rejects it
// as an unknown flag.
func splitInstance(args []string, getenv func(string) string) (instance string, rest []string, err error) {
	instance = getenv("RDD_INSTANCE")
	if len(args) == 0 {
		return instance, args, nil
	}
	switch a := args[0]; {
	case a == "--instance":
		if len(args) < 2 {
			return "", nil, exit.Usagef("flag needs an argument: --instance")
		}
		if args[1] != "" {
			instance = args[1]
		}
		return instance, args[2:], nil
	case strings.HasPrefix(a, "--instance="):
		if v := strings.TrimPrefix(a, "--instance="); v != "" {
			instance = v
		}
		return instance, args[1:], nil
	}
	return instance, args, nil
}
