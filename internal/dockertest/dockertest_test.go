package dockertest

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/rdd-project/rdd/internal/mounts"

	"github.com/docker/docker/api/types/container"
)

func TestRunBusyboxNoNetwork(t *testing.T) {
	d := Start(t)
	ref := ImportBusybox(t, d)
	cli := Client(t, d)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	cases := []struct {
		name string
		cmd  []string
		want int64
	}{
		{"true", []string{"true"}, 0},
		{"exit code", []string{"sh", "-c", "exit 3"}, 3},
		// --network none: the only interface is loopback.
		{"loopback only", []string{"sh", "-c", `test "$(ls /sys/class/net)" = lo`}, 0},
		{"applets", []string{"sh", "-c", "echo hi | cat >/tmp/x && test -s /tmp/x && sleep 0 && /usr/bin/env true"}, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := RunContainer(ctx, cli, ref, tc.cmd...)
			if err != nil {
				t.Fatalf("run %v: %v\n%s", tc.cmd, err, d.LogTail(20))
			}
			if got != tc.want {
				t.Fatalf("run %v: exit %d, want %d", tc.cmd, got, tc.want)
			}
		})
	}

	insp, err := cli.ImageInspect(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(insp.Config.Cmd, []string{"/bin/sh"}) {
		t.Errorf("image Cmd = %v, want [/bin/sh]", insp.Config.Cmd)
	}
}

func TestDaemonLayout(t *testing.T) {
	d := Start(t)
	if d.Host != "unix://"+d.Socket || filepath.Dir(d.Socket) != d.Dir {
		t.Fatalf("Host %q, Socket %q, Dir %q", d.Host, d.Socket, d.Dir)
	}
	if d.PID <= 0 || !d.Running() {
		t.Fatalf("PID %d, running %v", d.PID, d.Running())
	}
	pgid, err := syscall.Getpgid(d.PID)
	if err != nil || pgid != d.PID {
		t.Fatalf("dockerd pgid = %d (%v), want its own group %d", pgid, err, d.PID)
	}
	for _, want := range []string{"--bridge=none", "--iptables=false", "--ip6tables=false", "--ip-forward=false"} {
		if !slices.Contains(d.Args(), want) {
			t.Errorf("dockerd args lack %s: %v", want, d.Args())
		}
	}
	info, err := Client(t, d).Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if info.DockerRootDir != d.DataRoot {
		t.Errorf("DockerRootDir = %q, want %q", info.DockerRootDir, d.DataRoot)
	}
}

// TestKillRestartClose kills dockerd with a running container, restarts it
// on the same socket (the data survives), and checks that Close leaves no
// process, mount or file behind.
func TestKillRestartClose(t *testing.T) {
	dir, err := os.MkdirTemp("/tmp", "rdd-d-")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	d, err := StartDaemon(ctx, dir)
	if err != nil {
		_ = cleanupDir(dir)
		t.Fatal(err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			_ = d.Close()
		}
	})
	cli, err := d.NewClient()
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	if _, err := ImportBusyboxImage(ctx, cli, BusyboxRef); err != nil {
		t.Fatal(err)
	}
	id, err := CreateContainer(ctx, cli, BusyboxRef, "sleeper", "sleep", "1000")
	if err != nil {
		t.Fatal(err)
	}
	if err := cli.ContainerStart(ctx, id, container.StartOptions{}); err != nil {
		t.Fatal(err)
	}

	oldPID := d.PID
	if err := d.Kill(); err != nil {
		t.Fatal(err)
	}
	if d.Running() || d.PID != 0 {
		t.Fatalf("after Kill: running %v, PID %d", d.Running(), d.PID)
	}
	if err := Ping(ctx, d.Socket); err == nil {
		t.Fatal("ping succeeded after Kill")
	}
	if err := d.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if d.PID == 0 || d.PID == oldPID {
		t.Fatalf("after Restart: PID %d (old %d)", d.PID, oldPID)
	}
	if _, err := cli.ContainerInspect(ctx, id); err != nil {
		t.Fatalf("container lost across restart: %v", err)
	}
	// Kill again with the container possibly running, then Close must clean up.
	if err := cli.ContainerStart(ctx, id, container.StartOptions{}); err != nil {
		t.Logf("restart container: %v", err)
	}
	if err := d.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	closed = true
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("dir %s still exists: %v", dir, err)
	}
	if pids := pidsReferring(dir); len(pids) > 0 {
		t.Errorf("processes still refer to %s: %v", dir, pids)
	}
	if err := mounts.UnmountUnder(dir); err != nil {
		t.Error(err)
	}
	if cg := cgroupDirs(id); len(cg) > 0 {
		t.Errorf("container cgroups left: %v", cg)
	}
}

func TestStartDaemonNotInstalled(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := StartDaemon(context.Background(), t.TempDir())
	if !errors.Is(err, ErrNotInstalled) {
		t.Fatalf("err = %v, want ErrNotInstalled", err)
	}
	if !bytes.Contains([]byte(err.Error()), []byte("apt-get install docker.io")) {
		t.Fatalf("message lacks the install hint: %v", err)
	}
}

func TestReapStale(t *testing.T) {
	mk := func(owner string) string {
		dir, err := os.MkdirTemp("/tmp", "rdd-d-")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = os.RemoveAll(dir) })
		if owner != "" {
			if err := os.WriteFile(filepath.Join(dir, "owner"), []byte(owner), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	dead := mk("2147483646 1\n")
	noOwner := mk("")
	if err := writeOwner(noOwner); err != nil { // now owned by this live process
		t.Fatal(err)
	}
	foreign := mk("")

	reaped, err := ReapStale()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(reaped, dead) {
		t.Errorf("reaped %v, want it to include %s", reaped, dead)
	}
	for _, keep := range []string{noOwner, foreign} {
		if slices.Contains(reaped, keep) {
			t.Errorf("reaped %s, which is alive or not ours", keep)
		}
		if _, err := os.Stat(keep); err != nil {
			t.Errorf("%s: %v", keep, err)
		}
	}
}

func TestWriteBusyboxRootfsDeterministic(t *testing.T) {
	var a, b bytes.Buffer
	if err := WriteBusyboxRootfs(&a, BusyboxPath); err != nil {
		t.Fatal(err)
	}
	if err := WriteBusyboxRootfs(&b, BusyboxPath); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("two builds differ")
	}
	entries := map[string]*tar.Header{}
	tr := tar.NewReader(&a)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		entries[h.Name] = h
	}
	if h := entries["bin/busybox"]; h == nil || h.Typeflag != tar.TypeReg || h.Mode&0o111 == 0 {
		t.Fatalf("bin/busybox missing or not executable: %+v", h)
	}
	for _, a := range []string{"sh", "true", "sleep", "echo", "cat"} {
		if h := entries["bin/"+a]; h == nil || h.Typeflag != tar.TypeSymlink || h.Linkname != "busybox" {
			t.Errorf("bin/%s: %+v", a, h)
		}
	}
	if h := entries["usr/bin/env"]; h == nil || h.Typeflag != tar.TypeLink {
		t.Errorf("usr/bin/env: %+v", h)
	}
	if err := WriteBusyboxRootfs(io.Discard, "/nonexistent/busybox"); err == nil {
		t.Error("missing busybox: no error")
	}
}
