package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
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
	fmt.Fprintf(&b, "evidence at %s (uptime %s):\n", time.Now().Format(time.RFC3339Nano), uptime())
	b.WriteString("processes of the instance (pid ppid pgid state start-ticks age cmdline):\n")
	for _, p := range in.processDetails() {
		b.WriteString("  " + p + "\n")
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

// processDetails describes each live process whose command line names the
// instance's HOME.
func (in *instance) processDetails() []string {
	var out []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !bytes.Contains(cmdline, []byte(in.home)) {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		st, err := proc.ParseStat(string(stat))
		if err != nil {
			continue
		}
		ppid := "?"
		if i := bytes.LastIndexByte(stat, ')'); i >= 0 {
			if f := strings.Fields(string(stat[i+1:])); len(f) > 1 {
				ppid = f[1]
			}
		}
		age := "?"
		if up := uptime(); up > 0 {
			age = (up - time.Duration(st.StartTicks)*10*time.Millisecond).Round(10 * time.Millisecond).String()
		}
		args := strings.Join(strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00"), " ")
		out = append(out, fmt.Sprintf("%d %s %d %c %d %s %s", pid, ppid, st.PGID, st.State, st.StartTicks, age, args))
	}
	return out
}

// uptime is the system uptime (0 when unknown); start ticks count from boot
// in USER_HZ (100 on Linux).
func uptime() time.Duration {
	b, err := os.ReadFile("/proc/uptime")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	s, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return 0
	}
	return time.Duration(s * float64(time.Second))
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
