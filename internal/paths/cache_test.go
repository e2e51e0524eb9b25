package paths

import (
	"runtime"
	"testing"
)

// The cache is shared: two instances must get the same directory, outside
// both of their own.
func TestCacheDirShared(t *testing.T) {
	a, err := Resolve("2", "/home/u", noEnv)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Resolve("bats", "/home/u", noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if a.CacheDir == "" || a.CacheDir != b.CacheDir {
		t.Fatalf("cache dirs %q and %q, want one shared directory", a.CacheDir, b.CacheDir)
	}
	if runtime.GOOS == "linux" && a.CacheDir != "/home/u/.cache/rdd" {
		t.Fatalf("CacheDir = %s, want /home/u/.cache/rdd", a.CacheDir)
	}
}
