package spec

import (
	"errors"
	"fmt"
	"testing"
)

func TestBundledVersions(t *testing.T) {
	t.Parallel()
	v, err := Bundled()
	if err != nil {
		t.Fatalf("the embedded k3s-versions.json does not load: %v", err)
	}
	var want []string
	for _, r := range []struct{ minor, lo, hi int }{{32, 0, 13}, {33, 0, 10}, {34, 1, 6}, {35, 0, 3}} {
		for p := r.lo; p <= r.hi; p++ {
			want = append(want, fmt.Sprintf("1.%d.%d", r.minor, p))
		}
	}
	if got := v.List(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("List =\n%v\nwant\n%v", got, want)
	}
	for _, c := range []struct{ name, want string }{
		{"latest", "1.35.3"}, {"stable", "1.34.6"}, {"v1.32", "1.32.13"}, {"1.32", "1.32.13"},
		{"v1.33", "1.33.10"}, {"v1.34", "1.34.6"}, {"v1.35", "1.35.3"},
	} {
		if got, ok := v.Channel(c.name); !ok || got != c.want {
			t.Errorf("Channel(%q) = %q, %v; want %q", c.name, got, ok, c.want)
		}
	}
	// behavior.md §10 F8: these exist only as +k3s3.
	for ver, tag := range map[string]string{
		"1.32.11": "v1.32.11+k3s3", "1.33.7": "v1.33.7+k3s3", "1.34.3": "v1.34.3+k3s3", "1.35.0": "v1.35.0+k3s3",
		"1.32.0": "v1.32.0+k3s1", "v1.34.6": "v1.34.6+k3s1", "1.31.99": "", "stable": "",
	} {
		if got := v.Tag(ver); got != tag {
			t.Errorf("Tag(%q) = %q, want %q", ver, got, tag)
		}
	}
}

func TestResolve(t *testing.T) {
	t.Parallel()
	v, _ := Bundled()
	for _, c := range []struct {
		in      string
		enabled bool
		want    string
	}{
		{"", false, ""}, {"", true, "1.34.6"}, {"stable", false, "1.34.6"}, {"vstable", true, "1.34.6"},
		{"v1.33", false, "1.33.10"}, {"1.35", true, "1.35.3"}, {"v1.32.2", true, "1.32.2"},
		{"vv1.32.2", true, "v1.32.2"}, {"1.31.99", true, "1.31.99"}, {"V1.33", true, "V1.33"},
	} {
		if got := v.Resolve(c.in, c.enabled); got != c.want {
			t.Errorf("Resolve(%q, %v) = %q, want %q", c.in, c.enabled, got, c.want)
		}
	}
}

func TestLoadVersionsRejectsMalformed(t *testing.T) {
	t.Parallel()
	for name, doc := range map[string]string{
		"not JSON":          `{"versions": [`,
		"trailing data":     `{"versions": ["v1.32.0+k3s1"], "channels": {"stable": "v1.32.0+k3s1"}} {}`,
		"wrong type":        `{"versions": "v1.32.0+k3s1"}`,
		"no versions":       `{"versions": [], "channels": {"stable": "1.32.0"}}`,
		"not a tag":         `{"versions": ["1.32.0"], "channels": {"stable": "1.32.0"}}`,
		"bad build":         `{"versions": ["v1.32.0+rke2"], "channels": {"stable": "1.32.0"}}`,
		"two parts":         `{"versions": ["v1.32+k3s1"], "channels": {"stable": "1.32"}}`,
		"duplicate version": `{"versions": ["v1.32.0+k3s1", "v1.32.0+k3s2"], "channels": {"stable": "1.32.0"}}`,
		"dangling channel":  `{"versions": ["v1.32.0+k3s1"], "channels": {"stable": "v1.33.0+k3s1"}}`,
		"no stable":         `{"versions": ["v1.32.0+k3s1"], "channels": {"latest": "v1.32.0+k3s1"}}`,
		"empty channel":     `{"versions": ["v1.32.0+k3s1"], "channels": {"stable": "1.32.0", "v": "1.32.0"}}`,
	} {
		if v, err := LoadVersions([]byte(doc)); !errors.Is(err, ErrMalformedVersions) {
			t.Errorf("%s: LoadVersions = %v, %v; want ErrMalformedVersions", name, v, err)
		}
	}
}

func TestLoadVersionsCustom(t *testing.T) {
	t.Parallel()
	v, err := LoadVersions([]byte(`{"cacheVersion": 2, "versions": ["v1.30.10+k3s2", "v1.30.9+k3s1"], "channels": {"stable": "1.30.9"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(v.List()); got != "[1.30.9 1.30.10]" {
		t.Errorf("List = %s (want numeric order)", got)
	}
	next, _, err := v.Apply(nil, map[string]string{"kubernetes.enabled": "true"})
	if err != nil || next.Kubernetes.Version != "1.30.9" {
		t.Errorf("Apply with custom versions = %+v, %v", next, err)
	}
	if _, _, err := v.Apply(nil, map[string]string{"kubernetes.version": "1.34.6"}); err == nil {
		t.Error("a version missing from the custom list was accepted")
	}
}

func TestTemplateHashFormat(t *testing.T) {
	t.Parallel()
	s := Default()
	s.Kubernetes = Kubernetes{Enabled: true, Version: "1.34.6"}
	want := fmt.Sprintf("engine=%s;k8s=%t;version=%s;port=%d", s.ContainerEngine.Name, true, "1.34.6", 7443)
	if got := s.TemplateHash(7443); got != want {
		t.Errorf("TemplateHash = %q, want %q", got, want)
	}
}
