package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/rdd-project/rdd/internal/proc"
)

// Bounds of what dumpEvidence logs, so a failed run's output stays readable.
const (
	evidenceEventLines  = 400
	evidenceDaemonLines = 200
	evidenceEngineLines = 30
)

// dumpEvidence logs what the next failure needs to be diagnosed, while the
// instance is still as the failed check found it: every process of the
// instance (cmdline, parent, process group, start time), the host driver's
// state and pid files, the whole event log as text (its tail when longer
// than evidenceEventLines) and the tails of the daemon's and the engine's
// current and previous logs (each start rotates them).
func (in *instance) dumpEvidence() {
	in.t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "evidence at %s (uptime %s):\n", time.Now().Format(time.RFC3339Nano), proc.Uptime())
	b.WriteString("processes of the instance (pid ppid pgid state start-ticks age cmdline):\n")
	for _, p := range scanProcs(in.home) {
		b.WriteString("  " + p.String() + "\n")
	}
	for _, f := range []string{
		in.path(".rd2", "run", "engine.json"),
		in.path(".rd2", "run", "dockerd.pid"),
	} {
		c, err := os.ReadFile(f)
		if err != nil {
			fmt.Fprintf(&b, "%s: %v\n", f, err)
			continue
		}
		fmt.Fprintf(&b, "%s:\n%s\n", f, strings.TrimSpace(string(c)))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, errOut, code := in.rdd(ctx, "events")
	fmt.Fprintf(&b, "rdd events (exit %d%s):\n%s\n", code, oneLine(errOut), tailLines(out, evidenceEventLines))
	logDir := in.path(".local", "state", "rancher-desktop-2")
	for _, l := range []struct {
		name string
		n    int
	}{
		{"rdd.log", evidenceDaemonLines}, {"rdd.1.log", evidenceDaemonLines / 2}, // this daemon's, the one before's
		{"dockerd.log", evidenceEngineLines}, {"dockerd.1.log", evidenceEngineLines}, {"containerd.log", evidenceEngineLines},
	} {
		c, err := os.ReadFile(filepath.Join(logDir, l.name))
		if err != nil {
			fmt.Fprintf(&b, "%s: %v\n", l.name, err)
			continue
		}
		fmt.Fprintf(&b, "%s (tail):\n%s\n", l.name, tailLines(string(c), l.n))
	}
	in.t.Log(b.String())
}

// tailLines returns the last n lines of s, saying how many it left out.
func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) <= n {
		return strings.Join(lines, "\n")
	}
	return fmt.Sprintf("[%d earlier lines left out]\n%s", len(lines)-n, strings.Join(lines[len(lines)-n:], "\n"))
}

func oneLine(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return ""
	}
	return "; stderr: " + strings.ReplaceAll(s, "\n", " | ")
}
