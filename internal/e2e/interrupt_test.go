package e2e

import (
	"bufio"
	"bytes"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// A command that waits catches Ctrl-C: for status --watch it is the normal
// end (exit 0, the stream's last line complete), not death by signal.
// (Commands that only read and print leave SIGINT to its default action;
// see endsByItself.)
func TestWatchEndsCleanlyOnInterrupt(t *testing.T) {
	in := newInstance(t)
	in.must("svc", "start")
	cmd := exec.Command(rddBin, "status", "--watch", "-o", "json")
	cmd.Env = in.env
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	firstLine := make(chan error, 1)
	go func() {
		_, err := bufio.NewReader(stdout).ReadString('\n')
		firstLine <- err
	}()
	select {
	case err := <-firstLine:
		if err != nil {
			t.Fatalf("reading the first snapshot: %v (stderr: %s)", err, stderr.String())
		}
	case <-time.After(time.Minute):
		_ = cmd.Process.Kill()
		t.Fatal("status --watch printed no snapshot within a minute")
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-time.After(time.Minute):
		_ = cmd.Process.Kill()
		t.Fatal("status --watch did not end within a minute of SIGINT")
	}
	if err != nil || stderr.Len() != 0 {
		t.Fatalf("status --watch after SIGINT: %v, stderr %q; want exit 0 and nothing on stderr", err, stderr.String())
	}
}
