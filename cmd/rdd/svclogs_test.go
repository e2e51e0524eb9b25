package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// daemonLogLines is a daemon log as zap writes it, with a line of another
// kind (a panic's output) in the middle.
var daemonLogLines = []string{
	`{"level":"info","ts":"2026-11-26T12:25:00.000000000Z","msg":"opened event log","subsystem":"store","last-seq":0,"created":true}`,
	`{"level":"debug","ts":"2026-11-26T12:28:00.500000000Z","msg":"request","method":"GET","uri":"/v1/status?watch=true"}`,
	`goroutine 1 [running]:`,
	`{"level":"warn","ts":"2026-11-26T12:29:30.000000000Z","msg":"engine not ready","error":"dial unix /x/docker.sock: connect refused"}`,
}

func writeLogLines(t *testing.T, path string, lines ...string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestSvcLogsFormatsTailAndSince(t *testing.T) {
	h := newHarness(t)
	writeLogLines(t, h.e.paths.DaemonLog, daemonLogLines...)

	if code := h.run("svc", "logs"); code != 0 {
		t.Fatalf("svc logs = %d: %s", code, h.stderr)
	}
	want := strings.Join([]string{
		`2026-11-26T12:25:00.000Z INFO  opened event log subsystem=store last-seq=0 created=true`,
		`2026-11-26T12:28:00.500Z DEBUG request method=GET uri="/v1/status?watch=true"`,
		`goroutine 1 [running]:`,
		`2026-11-26T12:29:30.000Z WARN  engine not ready error="dial unix /x/docker.sock: connect refused"`,
	}, "\n") + "\n"
	if got := h.stdout.String(); got != want {
		t.Errorf("svc logs =\n%s\nwant\n%s", got, want)
	}

	h.reset()
	if code := h.run("svc", "logs", "-n", "2", "-o", "json"); code != 0 {
		t.Fatalf("svc logs -n 2 -o json = %d: %s", code, h.stderr)
	}
	want = `{"msg":"goroutine 1 [running]:"}` + "\n" + daemonLogLines[3] + "\n"
	if got := h.stdout.String(); got != want {
		t.Errorf("svc logs -n 2 -o json =\n%s\nwant\n%s", got, want)
	}

	// testNow is 12:30: 2m back is 12:28, so the 12:25 line goes; the line
	// without a time goes with the request before it.
	h.reset()
	if code := h.run("svc", "logs", "--since", "2m", "--tail", "2"); code != 0 {
		t.Fatalf("svc logs --since 2m = %d: %s", code, h.stderr)
	}
	if got := h.stdout.String(); !strings.HasPrefix(got, "goroutine 1") || strings.Count(got, "\n") != 2 {
		t.Errorf("svc logs --since 2m --tail 2 =\n%s", got)
	}
	h.reset()
	if code := h.run("svc", "logs", "--since", "2026-11-26T12:28:00Z"); code != 0 {
		t.Fatalf("svc logs --since TIME = %d: %s", code, h.stderr)
	}
	if got := h.stdout.String(); strings.Contains(got, "opened event log") || strings.Count(got, "\n") != 3 {
		t.Errorf("svc logs --since TIME =\n%s", got)
	}

	for _, args := range [][]string{
		{"svc", "logs", "--since", "yesterday"},
		{"svc", "logs", "-n", "-2"},
		{"svc", "logs", "--engine", "--stderr"},
	} {
		h.reset()
		if code := h.run(args...); code != 2 {
			t.Errorf("%v = %d, want 2 (usage): %s", args, code, h.stderr)
		}
	}
}

func TestSvcLogsEngine(t *testing.T) {
	h := newHarness(t)
	if code := h.run("svc", "logs", "--engine"); code != 1 || !strings.Contains(h.stderr.String(), "dockerd.log") ||
		!strings.Contains(h.stderr.String(), "RDD_VM_DRIVER=host") {
		t.Errorf("svc logs --engine without a log = %d: %s", code, h.stderr)
	}
	writeLogLines(t, filepath.Join(h.e.paths.LogDir, "dockerd.log"),
		`time="2026-11-26T12:29:00.100000000Z" level=info msg="Starting up"`,
		`time="2026-11-26T12:29:01.000000000Z" level=warning msg="failed to load plugin" error="no such file" module=grpc`)
	h.reset()
	if code := h.run("svc", "logs", "--engine", "-n", "1"); code != 0 {
		t.Fatalf("svc logs --engine = %d: %s", code, h.stderr)
	}
	if got, want := h.stdout.String(), "2026-11-26T12:29:01.000Z WARNING failed to load plugin error=\"no such file\" module=grpc\n"; got != want {
		t.Errorf("svc logs --engine -n 1 = %q, want %q", got, want)
	}
	h.reset()
	if code := h.run("svc", "logs", "--engine", "-n", "1", "-o", "json"); code != 0 {
		t.Fatalf("svc logs --engine -o json = %d: %s", code, h.stderr)
	}
	if got, want := h.stdout.String(), `{"time":"2026-11-26T12:29:01Z","level":"warning","msg":"failed to load plugin","error":"no such file","module":"grpc"}`+"\n"; got != want {
		t.Errorf("svc logs --engine -o json = %s, want %s", got, want)
	}
}

func TestSvcLogsFollow(t *testing.T) {
	h := newHarness(t)
	path := h.e.paths.DaemonLog
	writeLogLines(t, path, daemonLogLines...)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int, 1)
	go func() { done <- execute(ctx, h.e, []string{"svc", "logs", "-f", "-n", "1"}, nil) }()
	h.stdout.waitFor(t, "engine not ready")
	if strings.Contains(h.stdout.String(), "opened event log") {
		t.Errorf("-n 1 printed more than the last line:\n%s", h.stdout)
	}

	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Half a line is not printed until its newline arrives.
	f.WriteString(`{"level":"info","ts":"2026-11-26T12:31:00Z","msg":"daemon`)
	h.ticks <- testNow
	f.WriteString(` stopped"}` + "\n")
	f.Close()
	h.ticks <- testNow
	h.stdout.waitFor(t, "2026-11-26T12:31:00.000Z INFO  daemon stopped\n")

	// A rotation: the new file is read from its start.
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	writeLogLines(t, path, `{"level":"info","ts":"2026-11-26T12:32:00Z","msg":"opened again"}`)
	h.ticks <- testNow
	h.stdout.waitFor(t, "opened again")

	// Interrupting (main cancels the context on SIGINT) ends it cleanly.
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("svc logs -f after interrupt = %d: %s", code, h.stderr)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("svc logs -f did not stop when interrupted")
	}
}
