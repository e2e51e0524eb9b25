package lima

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/rdd-project/rdd/internal/paths"
	"github.com/rdd-project/rdd/internal/vm"
)

// The driver tests run rdd-lima, built from this module, against the real
// Lima library and qemu-img: create, adopt, inspect and delete with a
// local image. Nothing boots (that is `make e2e`). Lima refuses root, so
// under root rdd-lima runs as nobody.

var (
	helperOnce sync.Once
	helperDir  string
	helperErr  error
)

// buildHelper builds rdd-lima once per test binary, into a directory every
// user can read, with a guest agent next to it (where rdd-lima looks, as
// in the extracted bundle).
func buildHelper(t *testing.T) string {
	t.Helper()
	helperOnce.Do(func() {
		helperDir, helperErr = os.MkdirTemp("", "rdd-lima-test-")
		if helperErr != nil {
			return
		}
		_ = os.Chmod(helperDir, 0o755)
		cmd := exec.Command("go", "build", "-o", filepath.Join(helperDir, "rdd-lima"), "github.com/rdd-project/rdd/cmd/rdd-lima")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			helperErr = errors.New(string(out))
			return
		}
		// Creating needs the guest agent to exist, not to work: it only
		// runs in a booted guest, which these tests never boot.
		agent := filepath.Join(helperDir, "lima-guestagent.Linux-"+NativeArch(runtime.GOARCH))
		helperErr = os.WriteFile(agent, []byte("not booted in these tests"), 0o644)
	})
	if helperErr != nil {
		t.Fatalf("build rdd-lima: %v", helperErr)
	}
	return filepath.Join(helperDir, "rdd-lima")
}

type limaEnv struct {
	drv   *Driver
	home  string // LIMA_HOME
	image string
}

// newLimaEnv makes a driver on a fresh LIMA_HOME with a local 64 MiB image.
func newLimaEnv(t *testing.T, mods ...func(*Params)) *limaEnv {
	t.Helper()
	for _, bin := range []string{"qemu-img", "qemu-system-" + NativeArch(runtime.GOARCH)} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("%s is missing: make test-deps installs qemu-utils and qemu-system", bin)
		}
	}
	helper := buildHelper(t)
	root, err := os.MkdirTemp("", "rdd-lima-home-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(root) })
	_ = os.Chmod(root, 0o755)
	image := filepath.Join(root, "guest.qcow2")
	if out, err := exec.Command("qemu-img", "create", "-f", "qcow2", image, "64M").CombinedOutput(); err != nil {
		t.Fatalf("qemu-img create: %v: %s", err, out)
	}
	pp := paths.Paths{Home: root, ShortDir: filepath.Join(root, "h"), ServiceDir: filepath.Join(root, "d"), LogDir: filepath.Join(root, "l")}
	p := Defaults(pp)
	p.Image = Image{Location: image}
	p.DNS = []string{"10.0.2.3"}
	p.Accel = "tcg"
	p.RestrictNetwork = true
	for _, m := range mods {
		m(&p)
	}
	home := filepath.Join(root, "h", "lima")
	if err := os.MkdirAll(home, 0o755); err != nil {
		t.Fatal(err)
	}
	o := Options{Helper: helper, LimaHome: home, Base: p, Logger: zaptest.NewLogger(t)}
	if os.Geteuid() == 0 {
		o.RunAs = &syscall.Credential{Uid: 65534, Gid: 65534}
		if err := os.Chown(image, 65534, 65534); err != nil {
			t.Fatal(err)
		}
	}
	drv, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return &limaEnv{drv: drv, home: home, image: image}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

func (e *limaEnv) phase(t *testing.T) vm.Info {
	t.Helper()
	info, err := e.drv.Inspect(ctx(t))
	if err != nil {
		t.Fatalf("inspect: %v", err)
	}
	return info
}

// Create makes the instance from a local image (disks prepared by qemu-img),
// a second Create adopts it, and Delete removes it.
func TestCreateAdoptInspectDelete(t *testing.T) {
	e := newLimaEnv(t)
	if info := e.phase(t); info.Phase != vm.PhaseAbsent {
		t.Fatalf("fresh LIMA_HOME: phase %s, want absent", info.Phase)
	}
	adopted, err := e.drv.Create(ctx(t))
	if err != nil || adopted {
		t.Fatalf("create: adopted=%v err=%v, want a new instance", adopted, err)
	}
	for _, f := range []string{"lima.yaml", "basedisk", "diffdisk"} {
		if _, err := os.Stat(filepath.Join(e.drv.Dir(), f)); err != nil {
			t.Errorf("created instance lacks %s: %v", f, err)
		}
	}
	if _, err := os.Stat(filepath.Join(e.drv.Dir(), PreparingSentinel)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the %s sentinel outlived a successful create", PreparingSentinel)
	}
	if info := e.phase(t); info.Phase != vm.PhaseStopped {
		t.Fatalf("after create: phase %s (%s), want stopped", info.Phase, info.Message)
	}
	if adopted, err := e.drv.Create(ctx(t)); err != nil || !adopted {
		t.Fatalf("second create: adopted=%v err=%v, want the instance adopted", adopted, err)
	}
	if err := e.drv.Delete(ctx(t)); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if _, err := os.Stat(e.drv.Dir()); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("delete left %s", e.drv.Dir())
	}
	if info := e.phase(t); info.Phase != vm.PhaseAbsent {
		t.Fatalf("after delete: phase %s, want absent", info.Phase)
	}
	if err := e.drv.Delete(ctx(t)); err != nil {
		t.Fatalf("deleting nothing is not an error: %v", err)
	}
}

// A directory without metadata (a failed delete) and an interrupted create
// (its sentinel is still there) are replaced, not adopted.
func TestCreateReplacesLeftovers(t *testing.T) {
	e := newLimaEnv(t)
	if err := os.MkdirAll(e.drv.Dir(), 0o755); err != nil {
		t.Fatal(err)
	}
	junk := filepath.Join(e.drv.Dir(), "junk")
	if err := os.WriteFile(junk, []byte("left by a failed delete"), 0o644); err != nil {
		t.Fatal(err)
	}
	_ = chownTree(e.home, 65534, 65534)
	if adopted, err := e.drv.Create(ctx(t)); err != nil || adopted {
		t.Fatalf("create over a leftover directory: adopted=%v err=%v", adopted, err)
	}
	if _, err := os.Stat(junk); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("the leftover directory was not replaced")
	}

	sentinel := filepath.Join(e.drv.Dir(), PreparingSentinel)
	if err := os.WriteFile(sentinel, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if info := e.phase(t); info.Phase != vm.PhaseAbsent || !strings.Contains(info.Message, "interrupted create") {
		t.Fatalf("interrupted create: phase %s %q, want absent naming it", info.Phase, info.Message)
	}
	if adopted, err := e.drv.Create(ctx(t)); err != nil || adopted {
		t.Fatalf("create after an interrupted one: adopted=%v err=%v", adopted, err)
	}
	if _, err := os.Stat(sentinel); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("the interrupted create's sentinel is still there")
	}
}

// An image that cannot be fetched fails the create with its location in
// the message and leaves nothing behind.
func TestCreateFailedNamesTheImage(t *testing.T) {
	const location = "http://127.0.0.1:1/no-such-image.qcow2"
	e := newLimaEnv(t, func(p *Params) { p.Image = Image{Location: location} })
	_, err := e.drv.Create(ctx(t))
	if err == nil || !strings.Contains(err.Error(), location) {
		t.Fatalf("create with an unreachable image: %v, want an error naming %s", err, location)
	}
	if info := e.phase(t); info.Phase != vm.PhaseAbsent {
		t.Fatalf("after a failed create: phase %s, want absent (nothing left)", info.Phase)
	}
}

// Under root, without another user to run the VM as, the driver refuses
// at once and says what to do.
func TestRootIsRefused(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	_, err := New(Options{Helper: "/nonexistent", LimaHome: t.TempDir(), Base: Params{Arch: "x86_64"}})
	if !errors.Is(err, vm.ErrLimaAsRoot) || !strings.Contains(err.Error(), "RDD_VM_DRIVER=host") {
		t.Fatalf("lima driver as root: %v, want the refusal pointing at RDD_VM_DRIVER=host", err)
	}
}

// The restart key is the rendered template: any configuration change that
// changes it restarts the VM, and only those.
func TestRestartKeyFollowsTheTemplate(t *testing.T) {
	d := &Driver{o: Options{Base: base()}}
	moby := vm.Config{Engine: "moby"}
	if d.RestartKey(moby) == "" || d.RestartKey(moby) != d.RestartKey(moby) {
		t.Fatal("the restart key is empty or unstable")
	}
	for _, c := range []vm.Config{
		{Engine: "containerd"},
		{Engine: "moby", KubernetesEnabled: true, KubernetesVersion: "v1.32.0", KubernetesPort: 6443},
	} {
		if d.RestartKey(c) == d.RestartKey(moby) {
			t.Errorf("%+v has the restart key of %+v", c, moby)
		}
	}
}

// The boot's end comes from the host agent's event stream: the first
// running event ends it well, an exiting one badly, whatever the order in
// which lines arrive (a partial line is read again once complete).
func TestWatchBootFollowsTheEventStream(t *testing.T) {
	for _, c := range []struct {
		name    string
		lines   []string
		wantErr string
	}{
		{"running", []string{`{"time":"2026-01-01T00:00:00Z","status":{"sshLocalPort":60022}}`, `{"time":"2026-01-01T00:01:00Z","status":{"running":true,"sshLocalPort":60022}}`}, ""},
		{"degraded is still a boot that ended", []string{`{"status":{"running":true,"degraded":true,"errors":["guest agent does not seem to be running"]}}`}, ""},
		{"exiting", []string{`{"status":{"sshLocalPort":60022}}`, `{"status":{"exiting":true,"errors":["qemu exited"]}}`}, "qemu exited"},
		{"damaged lines are skipped", []string{"not json", strings.Repeat("x", 70<<10), `{"status":{"running":true}}`}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			d := &Driver{o: Options{LimaHome: dir, BootTimeout: time.Minute}}
			events := filepath.Join(dir, HostAgentStdout)
			f, err := os.Create(events)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			alive := make(chan struct{}) // the host agent runs throughout
			booted := d.watchBoot(events, os.Getpid(), alive)
			for _, l := range c.lines {
				half := len(l) / 2
				if _, err := f.WriteString(l[:half]); err != nil {
					t.Fatal(err)
				}
				if _, err := f.WriteString(l[half:] + "\n"); err != nil {
					t.Fatal(err)
				}
			}
			select {
			case err := <-booted:
				if c.wantErr == "" && err != nil || c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)) {
					t.Fatalf("boot ended with %v, want %q", err, c.wantErr)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("the boot's end was not seen within 30 s")
			}
		})
	}
}

// A host agent that dies during the boot ends it with its last words.
func TestWatchBootSeesTheHostAgentDie(t *testing.T) {
	dir := t.TempDir()
	inst := filepath.Join(dir, InstanceName)
	if err := os.MkdirAll(inst, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(inst, HostAgentStderr), []byte("{\"level\":\"fatal\",\"msg\":\"qemu: could not open kernel\"}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d := &Driver{o: Options{LimaHome: dir, BootTimeout: time.Minute}}
	exited := make(chan struct{})
	close(exited)
	select {
	case err := <-d.watchBoot(filepath.Join(inst, HostAgentStdout), 4242, exited):
		if err == nil || !strings.Contains(err.Error(), "could not open kernel") {
			t.Fatalf("boot ended with %v, want the host agent's last log line", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the host agent's death was not seen within 30 s")
	}
}
