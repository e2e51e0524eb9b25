// Package spec defines the App spec (the desired state users edit with
// `rdd set`), its defaults, the property schema behind `set`, and the bundled
// k3s version list.
//
// The package is a leaf: it imports nothing from rdd, so the projector, the
// daemon and the CLI can all use it.
package spec

import "strconv"

// EngineName selects the container engine that runs in the VM.
type EngineName string

// Engine names. They are persisted in the event log: never rename one.
const (
	EngineMoby       EngineName = "moby"
	EngineContainerd EngineName = "containerd"
)

// DefaultNamespace is the immutable namespace label of every App.
const DefaultNamespace = "default"

// ContainerEngine is the `containerEngine` object of the spec.
type ContainerEngine struct {
	Name EngineName `json:"name"`
}

// Kubernetes is the `kubernetes` object of the spec.
type Kubernetes struct {
	Enabled bool   `json:"enabled"`
	Version string `json:"version,omitempty"`
}

// Spec is the desired state of the App. Its JSON form is the one printed by
// `rdd status -o json` and stored in SpecChanged events.
type Spec struct {
	Running         bool            `json:"running"`
	ContainerEngine ContainerEngine `json:"containerEngine"`
	Kubernetes      Kubernetes      `json:"kubernetes"`
	Namespace       string          `json:"namespace"`
}

// Default returns the spec of a newly created App before any property is set.
func Default() Spec {
	return Spec{
		ContainerEngine: ContainerEngine{Name: EngineMoby},
		Namespace:       DefaultNamespace,
	}
}

// TemplateHash identifies the VM configuration that spec fields produce; the
// projector compares it with the hash the VM was last started with to decide
// whether a template change is still being applied (Settled=ApplyingTemplate).
func TemplateHash(engine EngineName, k8sEnabled bool, k8sVersion string, kubernetesPort int) string {
	// Same text as fmt.Sprintf("engine=%s;k8s=%t;version=%s;port=%d", …),
	// built without fmt: the projector computes it on every spec change.
	return "engine=" + string(engine) + ";k8s=" + strconv.FormatBool(k8sEnabled) +
		";version=" + k8sVersion + ";port=" + strconv.Itoa(kubernetesPort)
}

// TemplateHash is TemplateHash of s with the given resolved port.
func (s Spec) TemplateHash(kubernetesPort int) string {
	return TemplateHash(s.ContainerEngine.Name, s.Kubernetes.Enabled, s.Kubernetes.Version, kubernetesPort)
}
