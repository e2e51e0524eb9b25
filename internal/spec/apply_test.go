package spec

import (
	"errors"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

const validList = "valid properties: containerEngine.name, kubernetes.enabled, kubernetes.version, running"

func ptr(s Spec) *Spec { return &s }

func withEngine(e EngineName) Spec {
	s := Default()
	s.ContainerEngine.Name = e
	return s
}

func withK8s(enabled bool, version string) Spec {
	s := Default()
	s.Kubernetes = Kubernetes{Enabled: enabled, Version: version}
	return s
}

// TestApplyRejects covers every message of behavior.md §9.2 steps 2–3 and
// §2.1 validation, verbatim.
func TestApplyRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		current  *Spec
		set      map[string]string
		property string
		want     string
	}{
		{"unknown top-level", nil, map[string]string{"nonexistent": "1"}, "nonexistent",
			`unknown property "nonexistent"; ` + validList},
		{"namespace is not settable (scenario 6)", ptr(Default()), map[string]string{"namespace": "test"}, "namespace",
			`unknown property "namespace"; ` + validList},
		{"unknown under object", nil, map[string]string{"kubernetes.foo": "1"}, "kubernetes.foo",
			`unknown property "foo" under "kubernetes"; valid properties: enabled, version`},
		{"unknown under object, trailing dot", nil, map[string]string{"containerEngine.": "x"}, "containerEngine.",
			`unknown property "" under "containerEngine"; valid properties: name`},
		{"empty leading segment", nil, map[string]string{".running": "true"}, ".running",
			`unknown property ""; ` + validList},
		{"through a non-object", nil, map[string]string{"running.x": "true"}, "running.x",
			`"running" is not an object and has no sub-properties`},
		{"through a nested non-object", nil, map[string]string{"kubernetes.version.major": "1"}, "kubernetes.version.major",
			`"kubernetes.version" is not an object and has no sub-properties`},
		{"object as leaf (scenario 7)", nil, map[string]string{"containerEngine": "moby"}, "containerEngine",
			`"containerEngine" is an object; set its fields, e.g. "containerEngine.name"`},
		{"kubernetes object as leaf", nil, map[string]string{"kubernetes": "true"}, "kubernetes",
			`"kubernetes" is an object; set its fields, e.g. "kubernetes.enabled"`},
		{"enum (scenario 3)", ptr(Default()), map[string]string{"containerEngine.name": "docker"}, "containerEngine.name",
			`invalid value "docker" for "containerEngine.name": valid values: moby, containerd`},
		{"enum is case-sensitive", nil, map[string]string{"containerEngine.name": "Moby"}, "containerEngine.name",
			`invalid value "Moby" for "containerEngine.name": valid values: moby, containerd`},
		{"empty enum fails the enum check", nil, map[string]string{"containerEngine.name": ""}, "containerEngine.name",
			`invalid value "" for "containerEngine.name": valid values: moby, containerd`},
		{"boolean yes (scenario 4)", nil, map[string]string{"running": "yes"}, "running",
			`invalid value "yes" for "running": expected boolean; use "true" or "false"`},
		{"boolean empty (scenario 4)", nil, map[string]string{"running": ""}, "running",
			`invalid value "" for "running": expected boolean; use "true" or "false"`},
		{"kubernetes.enabled boolean", nil, map[string]string{"kubernetes.enabled": "on"}, "kubernetes.enabled",
			`invalid value "on" for "kubernetes.enabled": expected boolean; use "true" or "false"`},
		{"unsupported version on create (scenario 8)", nil,
			map[string]string{"running": "false", "kubernetes.enabled": "true", "kubernetes.version": "1.31.99"}, "kubernetes.version",
			`spec.kubernetes.version "1.31.99" is not supported; see the bundled k3s-versions.json for valid versions`},
		{"unsupported version while disabled", ptr(Default()), map[string]string{"kubernetes.version": "banana"}, "kubernetes.version",
			`spec.kubernetes.version "banana" is not supported; see the bundled k3s-versions.json for valid versions`},
		{"unsupported channel-like", ptr(Default()), map[string]string{"kubernetes.version": "v1.31"}, "kubernetes.version",
			`spec.kubernetes.version "1.31" is not supported; see the bundled k3s-versions.json for valid versions`},
		{"first error in sorted order wins", nil, map[string]string{"running": "maybe", "containerEngine.name": "docker"}, "containerEngine.name",
			`invalid value "docker" for "containerEngine.name": valid values: moby, containerd`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			next, changed, err := Apply(tt.current, tt.set)
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Apply = %+v, %v, %v; want a *ValidationError", next, changed, err)
			}
			if ve.Message != tt.want || err.Error() != tt.want {
				t.Errorf("message\n got %q\nwant %q", err.Error(), tt.want)
			}
			if ve.Property != tt.property {
				t.Errorf("Property = %q, want %q", ve.Property, tt.property)
			}
			if changed != nil || next != (Spec{}) {
				t.Errorf("a rejection returned data: %+v %v", next, changed)
			}
		})
	}
}

// TestApplyScenarios covers behavior.md §14 scenarios 1–14 at the level of
// the spec (the CLI and daemon add exit codes and persistence).
func TestApplyScenarios(t *testing.T) {
	t.Parallel()
	all := PropertyNames()
	tests := []struct {
		name        string
		current     *Spec
		set         map[string]string
		want        Spec
		wantChanged []string
	}{
		{"1: create with running=false", nil, map[string]string{"running": "false"}, Default(), all},
		{"2: containerd keeps engine and running", ptr(withEngine(EngineContainerd)),
			map[string]string{"kubernetes.enabled": "true", "kubernetes.version": "1.32.2"},
			Spec{ContainerEngine: ContainerEngine{Name: EngineContainerd}, Kubernetes: Kubernetes{Enabled: true, Version: "1.32.2"}, Namespace: "default"},
			[]string{"kubernetes.enabled", "kubernetes.version"}},
		{"9: stable resolves", ptr(Default()), map[string]string{"kubernetes.enabled": "true", "kubernetes.version": "stable"},
			withK8s(true, "1.34.6"), []string{"kubernetes.enabled", "kubernetes.version"}},
		{"9: no version means stable", ptr(Default()), map[string]string{"kubernetes.enabled": "true"},
			withK8s(true, "1.34.6"), []string{"kubernetes.enabled", "kubernetes.version"}},
		{"10: v1.33 channel", ptr(Default()), map[string]string{"kubernetes.enabled": "true", "kubernetes.version": "v1.33"},
			withK8s(true, "1.33.10"), []string{"kubernetes.enabled", "kubernetes.version"}},
		{"10: 1.33 channel", ptr(Default()), map[string]string{"kubernetes.enabled": "true", "kubernetes.version": "1.33"},
			withK8s(true, "1.33.10"), []string{"kubernetes.enabled", "kubernetes.version"}},
		{"channel resolves even when disabled", ptr(Default()), map[string]string{"kubernetes.version": "latest"},
			withK8s(false, "1.35.3"), []string{"kubernetes.version"}},
		{"F23: concrete v-prefixed version", ptr(Default()), map[string]string{"kubernetes.enabled": "1", "kubernetes.version": "v1.34.6"},
			withK8s(true, "1.34.6"), []string{"kubernetes.enabled", "kubernetes.version"}},
		{"11: disable and clear", ptr(withK8s(true, "1.32.2")), map[string]string{"kubernetes.enabled": "false", "kubernetes.version": ""},
			withK8s(false, ""), []string{"kubernetes.enabled", "kubernetes.version"}},
		{"11: clearing while enabled resolves to stable", ptr(withK8s(true, "1.32.2")), map[string]string{"kubernetes.version": ""},
			withK8s(true, "1.34.6"), []string{"kubernetes.version"}},
		{"12: dry-run value is computed, caller does not persist", ptr(withEngine(EngineContainerd)), map[string]string{"containerEngine.name": "moby"},
			Default(), []string{"containerEngine.name"}},
		{"13/16: create with running=true", nil, map[string]string{"running": "true"},
			Spec{Running: true, ContainerEngine: ContainerEngine{Name: EngineMoby}, Namespace: "default"}, all},
		{"create with an empty set", nil, nil, Default(), all},
		{"F25/23: no-op set", ptr(Default()), map[string]string{"running": "false"}, Default(), nil},
		{"ParseBool forms", ptr(Default()), map[string]string{"running": "TRUE"},
			Spec{Running: true, ContainerEngine: ContainerEngine{Name: EngineMoby}, Namespace: "default"}, []string{"running"}},
		{"ParseBool t", ptr(Default()), map[string]string{"running": "t", "kubernetes.enabled": "F"},
			Spec{Running: true, ContainerEngine: ContainerEngine{Name: EngineMoby}, Namespace: "default"}, []string{"running"}},
		{"same version is no change", ptr(withK8s(true, "1.34.6")), map[string]string{"kubernetes.version": "stable"},
			withK8s(true, "1.34.6"), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var before Spec
			if tt.current != nil {
				before = *tt.current
			}
			got, changed, err := Apply(tt.current, tt.set)
			if err != nil {
				t.Fatalf("Apply: %v", err)
			}
			if got != tt.want {
				t.Errorf("spec\n got %+v\nwant %+v", got, tt.want)
			}
			if !reflect.DeepEqual(changed, tt.wantChanged) {
				t.Errorf("changed = %#v, want %#v", changed, tt.wantChanged)
			}
			if tt.current != nil && *tt.current != before {
				t.Errorf("Apply modified current: %+v", *tt.current)
			}
		})
	}
}

func TestScenario9StableIsConcrete(t *testing.T) {
	t.Parallel()
	got, _, err := Apply(nil, map[string]string{"kubernetes.enabled": "true", "kubernetes.version": "stable"})
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^\d+\.\d+\.\d+$`).MatchString(got.Kubernetes.Version) {
		t.Errorf("version %q is not concrete", got.Kubernetes.Version)
	}
	fresh, _, err := Apply(nil, map[string]string{"kubernetes.enabled": "true"})
	if err != nil {
		t.Fatal(err)
	}
	if fresh.Kubernetes.Version != got.Kubernetes.Version {
		t.Errorf("stable %q != default %q", got.Kubernetes.Version, fresh.Kubernetes.Version)
	}
}

func TestValidateUpdateNamespaceImmutable(t *testing.T) {
	t.Parallel()
	prev := Default()
	next := prev
	next.Namespace = "test"
	err := ValidateUpdate(prev, next)
	var ve *ValidationError
	if !errors.As(err, &ve) || ve.Message != "spec.namespace is immutable" || ve.Property != "namespace" {
		t.Fatalf("ValidateUpdate = %v", err)
	}
	if err := ValidateUpdate(prev, prev); err != nil {
		t.Fatalf("unchanged namespace rejected: %v", err)
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	bad := Default()
	bad.ContainerEngine.Name = "docker"
	if err := Validate(bad); err == nil || !strings.Contains(err.Error(), "valid values: moby, containerd") {
		t.Errorf("Validate(engine docker) = %v", err)
	}
	if err := Validate(withK8s(true, "")); err == nil ||
		err.Error() != "spec.kubernetes.version must not be empty when spec.kubernetes.enabled is true" {
		t.Errorf("Validate(enabled, empty) = %v", err)
	}
	if err := Validate(withK8s(true, "1.32.11")); err != nil {
		t.Errorf("Validate(1.32.11) = %v", err)
	}
}

func TestParseAssignments(t *testing.T) {
	t.Parallel()
	got, err := ParseAssignments([]string{"running=true", "kubernetes.version=a=b", "running=false", "kubernetes.version="})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"running": "false", "kubernetes.version": ""}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	for arg, msg := range map[string]string{
		"running": `invalid argument "running": expected PROPERTY=VALUE format`,
		"=x":      `invalid argument "=x": property name must not be empty`,
	} {
		if _, err := ParseAssignments([]string{arg}); err == nil || err.Error() != msg {
			t.Errorf("ParseAssignments(%q) = %v, want %q", arg, err, msg)
		}
	}
}

func TestProperties(t *testing.T) {
	t.Parallel()
	props := Properties()
	var names []string
	for _, p := range props {
		names = append(names, p.Name)
		if p.Description == "" || !strings.HasSuffix(p.Description, ".") {
			t.Errorf("%s: description %q is not a sentence", p.Name, p.Description)
		}
	}
	if want := []string{"containerEngine.name", "kubernetes.enabled", "kubernetes.version", "running"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("names = %v, want %v", names, want)
	}
	labels := map[string]string{}
	for _, p := range props {
		labels[p.Name] = p.Label()
	}
	want := map[string]string{"containerEngine.name": "moby|containerd", "kubernetes.enabled": "boolean", "kubernetes.version": "string", "running": "boolean"}
	if !reflect.DeepEqual(labels, want) {
		t.Errorf("labels = %v, want %v", labels, want)
	}
	props[0].Enum[0] = "mutated"
	if Properties()[0].Enum[0] != "moby" {
		t.Error("Properties shares its Enum slice")
	}
}

// FuzzApply checks that Apply never panics, that every error is a
// *ValidationError, and that a successful result re-validates and is a
// fixed point: applying nothing, or the same set again, changes nothing.
func FuzzApply(f *testing.F) {
	f.Add(false, "moby", false, "", "running", "true", "kubernetes.version", "stable")
	f.Add(true, "containerd", true, "1.32.2", "kubernetes.enabled", "false", "kubernetes.version", "")
	f.Add(true, "moby", false, "", "containerEngine", "x", "namespace", "y")
	f.Add(false, "docker", true, "v1.33", "containerEngine.name", "containerd", "a.b.c", "")
	f.Add(false, "", false, "", "", "", "kubernetes.version", "v1.34.6")
	f.Fuzz(func(t *testing.T, hasCurrent bool, engine string, enabled bool, version, k1, v1, k2, v2 string) {
		var current *Spec
		if hasCurrent {
			current = &Spec{ContainerEngine: ContainerEngine{Name: EngineName(engine)},
				Kubernetes: Kubernetes{Enabled: enabled, Version: version}, Namespace: DefaultNamespace}
		}
		set := map[string]string{k1: v1, k2: v2}
		next, changed, err := Apply(current, set)
		if err != nil {
			var ve *ValidationError
			if !errors.As(err, &ve) || ve.Message == "" {
				t.Fatalf("error %v is not a *ValidationError with a message", err)
			}
			return
		}
		if err := Validate(next); err != nil {
			t.Fatalf("result %+v does not validate: %v", next, err)
		}
		if current != nil && !reflect.DeepEqual(changed, Diff(*current, next)) {
			t.Fatalf("changed %v != Diff %v", changed, Diff(*current, next))
		}
		if current == nil && len(changed) != len(PropertyNames()) {
			t.Fatalf("create changed = %v", changed)
		}
		again, changed2, err := Apply(&next, set)
		if err != nil || again != next || changed2 != nil {
			t.Fatalf("re-applying %v to %+v = %+v, %v, %v", set, next, again, changed2, err)
		}
		if same, changed3, err := Apply(&next, nil); err != nil || same != next || changed3 != nil {
			t.Fatalf("empty set on %+v = %+v, %v, %v", next, same, changed3, err)
		}
	})
}
