package spec

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// ValidationError is a rejected property or value. Property is the dotted
// name it concerns (the raw name when the name itself is unknown); Message is
// the full user-facing text, which Error returns unchanged. The daemon maps
// it to HTTP 422 and the CLI to exit code 3.
type ValidationError struct {
	Property string
	Message  string
}

func (e *ValidationError) Error() string { return e.Message }

func reject(property, format string, args ...any) *ValidationError {
	return &ValidationError{Property: property, Message: fmt.Sprintf(format, args...)}
}

// Apply is Versions.Apply with the bundled versions. It returns the bundled
// file's load error (not a *ValidationError) if that file is malformed.
func Apply(current *Spec, set map[string]string) (Spec, []string, error) {
	v, err := Bundled()
	if err != nil {
		return Spec{}, nil, err
	}
	return v.Apply(current, set)
}

// Validate is Versions.Validate with the bundled versions.
func Validate(s Spec) error {
	v, err := Bundled()
	if err != nil {
		return err
	}
	return v.Validate(s)
}

// Apply computes the spec that `rdd set` writes (behavior.md §9.2 steps 2–3,
// then the defaulting and validation of §2.1). current is the stored spec,
// or nil when the App does not exist yet: the result then starts from
// Default(). set maps dotted property names to raw values; names are
// resolved and values coerced in sorted name order, so the first error
// reported is deterministic.
//
// changed lists, sorted, the properties whose value differs from current.
// When current is nil the App is being created and every property counts as
// changed. An update that changes nothing returns changed == nil: the caller
// must not bump the generation (§10 F25).
//
// Every rejection is a *ValidationError; nothing is returned half-applied.
func (v *Versions) Apply(current *Spec, set map[string]string) (next Spec, changed []string, err error) {
	if current != nil {
		next = *current
	} else {
		next = Default()
	}
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		p, err := resolve(k)
		if err != nil {
			return Spec{}, nil, err
		}
		if err := assign(&next, p, set[k]); err != nil {
			return Spec{}, nil, err
		}
	}
	v.Default(&next)
	if err := v.Validate(next); err != nil {
		return Spec{}, nil, err
	}
	if current == nil {
		return next, PropertyNames(), nil
	}
	return next, Diff(*current, next), nil
}

// Default applies the defaulting step of behavior.md §2.1: an empty engine
// becomes moby and the Kubernetes version is resolved (see
// Versions.Resolve). It is idempotent. The namespace is left alone: it is
// fixed by Default() when the App is created and immutable afterwards.
func (v *Versions) Default(s *Spec) {
	if s.ContainerEngine.Name == "" {
		s.ContainerEngine.Name = EngineMoby
	}
	s.Kubernetes.Version = v.Resolve(s.Kubernetes.Version, s.Kubernetes.Enabled)
}

// Validate checks a defaulted spec (behavior.md §2, §2.1).
func (v *Versions) Validate(s Spec) error {
	switch s.ContainerEngine.Name {
	case EngineMoby, EngineContainerd:
	default:
		return reject("containerEngine.name", "invalid value %q for %q: valid values: %s",
			s.ContainerEngine.Name, "containerEngine.name", strings.Join(engineNames(), ", "))
	}
	k := s.Kubernetes
	if k.Enabled && k.Version == "" {
		return reject("kubernetes.version", "spec.kubernetes.version must not be empty when spec.kubernetes.enabled is true")
	}
	if k.Version != "" && !v.Supported(k.Version) {
		return reject("kubernetes.version", "spec.kubernetes.version %q is not supported; see the bundled k3s-versions.json for valid versions", k.Version)
	}
	return nil
}

// ValidateUpdate checks that an update from prev to next keeps what is
// immutable: the namespace ("spec.namespace is immutable", behavior.md §2).
// Apply cannot change the namespace; this guards any other write path.
func ValidateUpdate(prev, next Spec) error {
	if prev.Namespace != next.Namespace {
		return reject("namespace", "spec.namespace is immutable")
	}
	return nil
}

// Diff returns, sorted, the dotted names of the properties whose values
// differ between a and b; nil when none does. The namespace is not compared.
func Diff(a, b Spec) []string {
	var out []string
	if a.ContainerEngine.Name != b.ContainerEngine.Name {
		out = append(out, "containerEngine.name")
	}
	if a.Kubernetes.Enabled != b.Kubernetes.Enabled {
		out = append(out, "kubernetes.enabled")
	}
	if a.Kubernetes.Version != b.Kubernetes.Version {
		out = append(out, "kubernetes.version")
	}
	if a.Running != b.Running {
		out = append(out, "running")
	}
	return out
}

// resolve walks a dotted name through the schema (behavior.md §9.2 step 2).
func resolve(name string) (Property, error) {
	segments := strings.Split(name, ".")
	cur := schema
	for i, seg := range segments {
		next := cur.child(seg)
		if next == nil {
			if i == 0 {
				return Property{}, reject(name, "unknown property %q; valid properties: %s",
					seg, strings.Join(PropertyNames(), ", "))
			}
			return Property{}, reject(name, "unknown property %q under %q; valid properties: %s",
				seg, strings.Join(segments[:i], "."), strings.Join(cur.leafNames(), ", "))
		}
		path := strings.Join(segments[:i+1], ".")
		if i < len(segments)-1 {
			if !next.isObject() {
				return Property{}, reject(name, "%q is not an object and has no sub-properties", path)
			}
			cur = next
			continue
		}
		if next.isObject() {
			return Property{}, reject(name, "%q is an object; set its fields, e.g. %q",
				path, path+"."+next.leafNames()[0])
		}
		return next.prop, nil
	}
	panic("unreachable: strings.Split returns at least one segment")
}

// assign coerces raw for p (behavior.md §9.2 step 3: enum first, then
// boolean, else verbatim string) and stores it in s.
func assign(s *Spec, p Property, raw string) error {
	if len(p.Enum) > 0 && !slices.Contains(p.Enum, raw) {
		return reject(p.Name, "invalid value %q for %q: valid values: %s", raw, p.Name, strings.Join(p.Enum, ", "))
	}
	var b bool
	if p.Type == TypeBoolean {
		var err error
		if b, err = strconv.ParseBool(raw); err != nil {
			return reject(p.Name, "invalid value %q for %q: expected boolean; use \"true\" or \"false\"", raw, p.Name)
		}
	}
	switch p.Name {
	case "running":
		s.Running = b
	case "containerEngine.name":
		s.ContainerEngine.Name = EngineName(raw)
	case "kubernetes.enabled":
		s.Kubernetes.Enabled = b
	case "kubernetes.version":
		s.Kubernetes.Version = raw
	default:
		panic(fmt.Sprintf("spec: schema property %q has no field", p.Name))
	}
	return nil
}

func engineNames() []string { return []string{string(EngineMoby), string(EngineContainerd)} }

// ParseAssignments turns `rdd set` arguments into the map Apply takes
// (behavior.md §9.2 step 1): each argument is split at its first "=", and a
// repeated property keeps its last value. Errors are usage errors (exit 1),
// not *ValidationError.
func ParseAssignments(args []string) (map[string]string, error) {
	out := make(map[string]string, len(args))
	for _, a := range args {
		name, value, ok := strings.Cut(a, "=")
		if !ok {
			return nil, fmt.Errorf("invalid argument %q: expected PROPERTY=VALUE format", a)
		}
		if name == "" {
			return nil, fmt.Errorf("invalid argument %q: property name must not be empty", a)
		}
		out[name] = value
	}
	return out, nil
}

// Value returns the value of property name in s as `rdd set` spells it
// ("true", "moby", "1.33.1"), "" for an unknown name.
func (s Spec) Value(name string) string {
	switch name {
	case "running":
		return strconv.FormatBool(s.Running)
	case "containerEngine.name":
		return string(s.ContainerEngine.Name)
	case "kubernetes.enabled":
		return strconv.FormatBool(s.Kubernetes.Enabled)
	case "kubernetes.version":
		return s.Kubernetes.Version
	}
	return ""
}
