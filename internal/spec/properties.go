package spec

import (
	"slices"
	"strings"
)

// Property types, as printed by `rdd set --help`.
const (
	TypeBoolean = "boolean"
	TypeString  = "string"
)

// Property describes one settable leaf of the spec: its dotted name, its
// type, its allowed values when it is an enum, and a one-sentence
// description. The namespace is not a property: it is immutable.
type Property struct {
	Name        string
	Type        string
	Enum        []string
	Description string
}

// Label is what `rdd set --help` prints in parentheses after the name: the
// enum values joined by "|" (e.g. "moby|containerd"), else the type.
func (p Property) Label() string {
	if len(p.Enum) > 0 {
		return strings.Join(p.Enum, "|")
	}
	return p.Type
}

// schemaNode is one node of the property tree that `set` paths walk.
// A node with children is an object; otherwise it is a leaf property.
type schemaNode struct {
	name     string
	children []*schemaNode // sorted by name
	prop     Property      // leaves only
}

// schema is the spec minus namespace (behavior.md §9.2 step 2).
var schema = &schemaNode{children: []*schemaNode{
	{name: "containerEngine", children: []*schemaNode{
		{name: "name", prop: Property{
			Name: "containerEngine.name", Type: TypeString,
			Enum:        []string{string(EngineMoby), string(EngineContainerd)},
			Description: "The container engine that runs in the VM; switching it restarts a running VM.",
		}},
	}},
	{name: "kubernetes", children: []*schemaNode{
		{name: "enabled", prop: Property{
			Name: "kubernetes.enabled", Type: TypeBoolean,
			Description: "Whether k3s runs in the VM and its context is merged into your kubeconfig.",
		}},
		{name: "version", prop: Property{
			Name: "kubernetes.version", Type: TypeString,
			Description: "The Kubernetes version, such as 1.34.6, or a channel (stable, latest, v1.33); empty means the stable channel when Kubernetes is enabled.",
		}},
	}},
	{name: "running", prop: Property{
		Name: "running", Type: TypeBoolean,
		Description: "Whether the VM and its container engine should be running.",
	}},
}}

// Properties returns every settable property, sorted by name.
func Properties() []Property {
	var out []Property
	schema.walk(func(p Property) {
		p.Enum = slices.Clone(p.Enum)
		out = append(out, p)
	})
	return out
}

// PropertyNames returns the dotted names of Properties, sorted.
func PropertyNames() []string {
	var out []string
	schema.walk(func(p Property) { out = append(out, p.Name) })
	return out
}

func (n *schemaNode) isObject() bool { return len(n.children) > 0 }

func (n *schemaNode) child(name string) *schemaNode {
	for _, c := range n.children {
		if c.name == name {
			return c
		}
	}
	return nil
}

// walk calls fn for every leaf under n, in sorted order.
func (n *schemaNode) walk(fn func(Property)) {
	if !n.isObject() {
		fn(n.prop)
		return
	}
	for _, c := range n.children {
		c.walk(fn)
	}
}

// leafNames lists the leaves under n relative to n ("enabled", "version").
func (n *schemaNode) leafNames() []string {
	var out []string
	for _, c := range n.children {
		if !c.isObject() {
			out = append(out, c.name)
			continue
		}
		for _, sub := range c.leafNames() {
			out = append(out, c.name+"."+sub)
		}
	}
	return out
}
