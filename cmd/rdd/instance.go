package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/rdd-project/rdd/internal/cli/exit"
)

// splitInstance picks the instance suffix (behavior.md §1.1): `--instance X`
// or `--instance=X` as the first argument, else $RDD_INSTANCE, else "" (the
// default instance). An empty value is ignored. It returns the remaining
// arguments; `--instance` anywhere else is left for cobra's persistent flag
// (selectInstance).
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

// selectInstance switches e to instance s, given as --instance after the
// command name; an empty s is ignored, as in splitInstance.
func (e *env) selectInstance(s string) error {
	if s == "" {
		return nil
	}
	if e.resolve == nil {
		return exit.Usagef("--instance is not supported here")
	}
	e.paths, e.pathsErr = e.resolve(s)
	return nil
}

// instanceNames lists the instances whose service directory exists, for
// completion.
func (e *env) instanceNames() []string {
	if e.resolve == nil {
		return nil
	}
	p, err := e.resolve("")
	if err != nil {
		return nil
	}
	prefix := strings.TrimSuffix(p.Name, p.Instance)
	entries, err := os.ReadDir(filepath.Dir(p.ServiceDir))
	if err != nil {
		return nil
	}
	var names []string
	for _, d := range entries {
		if s, ok := strings.CutPrefix(d.Name(), prefix); ok && s != "" && d.IsDir() {
			names = append(names, s)
		}
	}
	slices.Sort(names)
	return names
}

// cutInstance takes a leading --instance X or --instance=X off the arguments
// of a command that parses no flags (rdd run), so `rdd run --instance X CMD`
// means what it says instead of running a command named --instance.
func cutInstance(args []string) (instance string, rest []string, found bool, err error) {
	switch {
	case len(args) > 0 && args[0] == "--instance":
		if len(args) < 2 {
			return "", nil, true, exit.Usagef("flag needs an argument: --instance")
		}
		return args[1], args[2:], true, nil
	case len(args) > 0 && strings.HasPrefix(args[0], "--instance="):
		return strings.TrimPrefix(args[0], "--instance="), args[1:], true, nil
	}
	return "", args, false, nil
}
