package spec

import (
	"bytes"
	_ "embed" // for the bundled k3s-versions.json
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
)

//go:embed k3s-versions.json
var bundledVersionsJSON []byte

// ErrMalformedVersions is wrapped by every LoadVersions failure.
var ErrMalformedVersions = errors.New("spec: malformed k3s-versions.json")

// bundled is parsed on first use, not at package initialisation: every CLI
// command pays for package init, and most never need the versions. The
// daemon calls Bundled before it serves, so a malformed embedded file still
// stops it at start-up (behavior.md §2.1).
var bundled = sync.OnceValues(func() (*Versions, error) { return LoadVersions(bundledVersionsJSON) })

// Bundled returns the k3s versions embedded in the binary. The daemon calls it
// at start-up and refuses to start on an error; Apply and Validate return the
// same error (never a panic) if it is ignored.
func Bundled() (*Versions, error) { return bundled() }

// Versions is a parsed k3s-versions.json: the supported Kubernetes versions
// and the channels that alias them. A *Versions is immutable and safe for
// concurrent use.
type Versions struct {
	// tags maps a bare version ("1.32.11") to its full k3s tag ("v1.32.11+k3s3").
	tags map[string]string
	// channels maps a channel name without its leading "v" ("1.33", "stable")
	// to a bare version.
	channels map[string]string
	// sorted holds the bare versions in ascending semantic-version order.
	sorted []string
}

// versionsFile is the on-disk shape; unknown top-level keys are ignored.
type versionsFile struct {
	Versions []string          `json:"versions"`
	Channels map[string]string `json:"channels"`
}

// LoadVersions parses and checks a k3s-versions.json document: every entry
// of "versions" must be a k3s tag vMAJOR.MINOR.PATCH+k3sN naming a distinct
// version, and every channel must point at one of them (as a tag or a bare
// version). A "stable" channel is required, because defaulting uses it.
func LoadVersions(data []byte) (*Versions, error) {
	var f versionsFile
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformedVersions, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: trailing data after the JSON object", ErrMalformedVersions)
	}
	if len(f.Versions) == 0 {
		return nil, fmt.Errorf("%w: no versions", ErrMalformedVersions)
	}
	v := &Versions{tags: make(map[string]string, len(f.Versions)), channels: make(map[string]string, len(f.Channels))}
	for _, tag := range f.Versions {
		bare, ok := bareFromTag(tag)
		if !ok {
			return nil, fmt.Errorf("%w: version %q is not a k3s tag like v1.32.0+k3s1", ErrMalformedVersions, tag)
		}
		if prev, dup := v.tags[bare]; dup {
			return nil, fmt.Errorf("%w: versions %q and %q both name %s", ErrMalformedVersions, prev, tag, bare)
		}
		v.tags[bare] = tag
		v.sorted = append(v.sorted, bare)
	}
	slices.SortFunc(v.sorted, compareVersions)
	for name, target := range f.Channels {
		bare := target
		if b, ok := bareFromTag(target); ok {
			bare = b
		}
		if _, ok := v.tags[bare]; !ok {
			return nil, fmt.Errorf("%w: channel %q points at %q, which is not in versions", ErrMalformedVersions, name, target)
		}
		key := strings.TrimPrefix(name, "v")
		if key == "" {
			return nil, fmt.Errorf("%w: empty channel name", ErrMalformedVersions)
		}
		if prev, dup := v.channels[key]; dup && prev != bare {
			return nil, fmt.Errorf("%w: channel %q is declared twice", ErrMalformedVersions, name)
		}
		v.channels[key] = bare
	}
	if _, ok := v.channels["stable"]; !ok {
		return nil, fmt.Errorf("%w: no \"stable\" channel", ErrMalformedVersions)
	}
	return v, nil
}

// Supported reports whether the bare version (e.g. "1.34.6") is in the set.
func (v *Versions) Supported(version string) bool {
	_, ok := v.tags[version]
	return ok
}

// Tag returns the full k3s tag of a supported version, e.g. "1.32.11" →
// "v1.32.11+k3s3" (behavior.md §10 F8: the guest installs this tag, not an
// assumed +k3s1). A leading "v" is accepted. It returns "" for an
// unsupported version.
func (v *Versions) Tag(version string) string {
	return v.tags[strings.TrimPrefix(version, "v")]
}

// Channel returns the bare version a channel resolves to. Both "v1.33" and
// "1.33" name the same channel.
func (v *Versions) Channel(name string) (string, bool) {
	bare, ok := v.channels[strings.TrimPrefix(name, "v")]
	return bare, ok
}

// List returns the supported bare versions in ascending order.
func (v *Versions) List() []string { return slices.Clone(v.sorted) }

// Resolve applies the defaulting step of behavior.md §2.1 to a version:
// empty stays empty unless enabled (then the stable channel); one leading
// "v" is stripped, for channels and, per §10 F23, for concrete versions too;
// a channel name becomes its concrete version. Anything else is returned
// unchanged for validation to judge.
func (v *Versions) Resolve(version string, enabled bool) string {
	if version == "" {
		if !enabled {
			return ""
		}
		version = "stable"
	}
	version = strings.TrimPrefix(version, "v")
	if bare, ok := v.channels[version]; ok {
		return bare
	}
	return version
}

// bareFromTag turns "v1.32.0+k3s1" into "1.32.0", reporting whether tag has
// exactly that shape.
func bareFromTag(tag string) (string, bool) {
	rest, ok := strings.CutPrefix(tag, "v")
	if !ok {
		return "", false
	}
	bare, build, ok := strings.Cut(rest, "+")
	if !ok || !isDigits(strings.TrimPrefix(build, "k3s")) || !strings.HasPrefix(build, "k3s") {
		return "", false
	}
	parts := strings.Split(bare, ".")
	if len(parts) != 3 {
		return "", false
	}
	for _, p := range parts {
		if !isDigits(p) {
			return "", false
		}
	}
	return bare, true
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// compareVersions orders bare MAJOR.MINOR.PATCH versions numerically.
func compareVersions(a, b string) int {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	for i := range min(len(pa), len(pb)) {
		x, _ := strconv.Atoi(pa[i])
		y, _ := strconv.Atoi(pb[i])
		if x != y {
			if x < y {
				return -1
			}
			return 1
		}
	}
	return len(pa) - len(pb)
}

// Channels returns the channel names ("latest", "stable", "1.33", …), sorted.
func (v *Versions) Channels() []string {
	out := make([]string, 0, len(v.channels))
	for name := range v.channels {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}
