package client_test

import (
	"bufio"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rdd-project/rdd/internal/api/client"
)

// Issue 10 (3): the client must not send a request to a socket another user
// serves. The listener here counts what reaches it: nothing may.
func TestClientRefusesSocketOfAnotherUser(t *testing.T) {
	sock := tempSocket(t)
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan int, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- -1
			return
		}
		defer c.Close()
		b, _ := io.ReadAll(c) // returns once the client hangs up
		got <- len(b)
	}()
	c := client.New(sock)
	client.SetTrustForTest(c, func(uid int) bool { return false })
	_, err = c.Healthz(testCtx(t))
	var ue *client.UntrustedSocketError
	if !errors.As(err, &ue) || client.IsDaemonNotRunning(err) {
		t.Fatalf("Healthz = %#v, want an UntrustedSocketError that is not 'not running'", err)
	}
	for _, want := range []string{"refusing to talk to " + sock, "nothing was sent", "rm " + sock} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message %q lacks %q", err, want)
		}
	}
	if n := <-got; n != 0 {
		t.Fatalf("the untrusted listener received %d bytes, want none", n)
	}
}

// The same with a real second user: a process of uid 1001 listening in
// root's directory is refused to root.
func TestClientRefusesListenerOfOtherUID(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a listener as another uid")
	}
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 is not installed: it runs the other uid's listener")
	}
	dir := filepath.Dir(tempSocket(t))
	if err := os.Chmod(dir, 0o777); err != nil { // uid 1001 binds in it
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "rdd.sock")
	const script = `import os, socket, sys
os.setgid(1001); os.setuid(1001)
s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(1)
print("listening", flush=True)
c, _ = s.accept(); c.settimeout(10)
print(len(c.recv(1)), flush=True)`
	cmd := exec.CommandContext(testCtx(t), py, "-c", script, sock)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	lines := bufio.NewScanner(out)
	if !lines.Scan() || lines.Text() != "listening" {
		t.Fatalf("listener did not start: %q", lines.Text())
	}
	_, err = client.New(sock).Healthz(testCtx(t))
	var ue *client.UntrustedSocketError
	if !errors.As(err, &ue) || ue.UID != 1001 || !strings.Contains(err.Error(), "served by uid 1001") {
		t.Fatalf("Healthz = %v, want a refusal naming uid 1001", err)
	}
	if !lines.Scan() || lines.Text() != "0" {
		t.Fatalf("the other uid's listener received %q bytes, want 0", lines.Text())
	}
}
