package lima

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNoLimaInRDD keeps Lima's packages out of the rdd CLI, whose every
// command would pay their 8-10 ms of package initialisation: this package
// is linked into it, so its non-test files must not import Lima either
// (Lima belongs in cmd/rdd-lima).
func TestNoLimaInRDD(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go not in PATH")
	}
	for _, pkg := range []string{".", "github.com/rdd-project/rdd/cmd/rdd"} {
		out, err := exec.Command(goBin, "list", "-deps", pkg).Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", pkg, err)
		}
		for _, dep := range strings.Fields(string(out)) {
			if strings.HasPrefix(dep, "github.com/lima-vm/") {
				t.Errorf("%s links %s", pkg, dep)
			}
		}
	}
}
