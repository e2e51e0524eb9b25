package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rdd-project/rdd/internal/api/client"
	"github.com/rdd-project/rdd/internal/cli/render"
	"github.com/rdd-project/rdd/internal/spec"
)

// settable lists the properties `set` accepts: the schema's, minus the
// namespace, which is immutable.
func settable() []spec.Property {
	var out []spec.Property
	for _, p := range spec.Properties() {
		if p.Name != "namespace" {
			out = append(out, p)
		}
	}
	return out
}

// propertyValues lists the values p accepts, for completion and `set
// --list`: an enum's values, true and false, or the bundled Kubernetes
// versions (newest first) and channels. nil means any string.
func propertyValues(p spec.Property) []string {
	switch {
	case len(p.Enum) > 0:
		return p.Enum
	case p.Type == spec.TypeBoolean:
		return []string{"true", "false"}
	case p.Name == "kubernetes.version":
		v, err := spec.Bundled()
		if err != nil {
			return nil
		}
		list := v.List()
		slices.Reverse(list)
		return append(list, v.Channels()...)
	}
	return nil
}

// completeSet completes PROPERTY=VALUE arguments of set: the property
// names with their "=", then that property's values.
func completeSet(_ *cobra.Command, _ []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	name, _, hasValue := strings.Cut(toComplete, "=")
	var out []cobra.Completion
	for _, p := range settable() {
		if !hasValue {
			out = append(out, cobra.CompletionWithDesc(p.Name+"=", firstSentence(p.Description)))
			continue
		}
		if p.Name == name {
			for _, v := range propertyValues(p) {
				out = append(out, p.Name+"="+v)
			}
		}
	}
	if !hasValue {
		// The value follows the "=" without a space.
		return out, cobra.ShellCompDirectiveNoSpace | cobra.ShellCompDirectiveNoFileComp
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

// writeValues prints what `set --list` shows: the values of one property
// one per line (for scripts), or every property with its values.
func (e *env) writeValues(args []string) error {
	props := settable()
	if len(args) == 0 {
		rows := [][]string{{"PROPERTY", "VALUES"}}
		for _, p := range props {
			vals := propertyValues(p)
			text := strings.Join(vals, " ")
			if vals == nil {
				text = "(any " + p.Type + ")"
			}
			rows = append(rows, []string{p.Name, text})
		}
		return render.Table(e.stdout, rows)
	}
	var b strings.Builder
	for _, name := range args {
		i := slices.IndexFunc(props, func(p spec.Property) bool { return strings.EqualFold(p.Name, name) })
		if i < 0 {
			names := make([]string, len(props))
			for j, p := range props {
				names[j] = p.Name
			}
			return usageErrf("unknown property %q; properties: %s", name, strings.Join(names, ", "))
		}
		vals := propertyValues(props[i])
		if vals == nil {
			vals = []string{"(any " + props[i].Type + ")"}
		}
		for _, v := range vals {
			b.WriteString(v + "\n")
		}
	}
	_, err := fmt.Fprint(e.stdout, b.String())
	return err
}

// explainRejection adds the valid Kubernetes versions to the daemon's
// rejection of one, which only points at the bundled file (behavior.md §2.1
// fixes its wording).
func explainRejection(err error, props map[string]string) error {
	if _, ok := props["kubernetes.version"]; !ok || !client.IsRejected(err) || !strings.Contains(err.Error(), "kubernetes.version") {
		return err
	}
	v, verr := spec.Bundled()
	if verr != nil {
		return err
	}
	return fmt.Errorf("%w\nvalid versions: %s\nchannels: %s\n(rdd set --list kubernetes.version prints them one per line)",
		err, strings.Join(v.List(), ", "), strings.Join(v.Channels(), ", "))
}
