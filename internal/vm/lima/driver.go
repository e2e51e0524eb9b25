package lima

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/rdd-project/rdd/internal/spec"
	"github.com/rdd-project/rdd/internal/vm"
)

// DefaultBootTimeout bounds a boot: under software emulation (TCG) a boot
// to READY took 144-235 s here, so the bound leaves room for a slow host.
const DefaultBootTimeout = 10 * time.Minute

// Options configure the lima driver.
type Options struct {
	// Helper is the rdd-lima program (Locate finds it).
	Helper string
	// LimaHome is LIMA_HOME: H/lima (behavior.md §1.2), owned by rdd so
	// that no user default.yaml/override.yaml changes the template.
	LimaHome string
	// Base are the template parameters before the spec's (engine,
	// Kubernetes) are applied: paths, size, image, accel, restriction.
	Base Params
	// RealQEMU is the QEMU that rdd's wrapper runs (default: the
	// qemu-system binary for Base.Arch on PATH).
	RealQEMU    string
	BootTimeout time.Duration
	// RunAs runs rdd-lima (and so the VM) as another user; nil runs it as
	// rdd's own. Lima refuses root, so New refuses root without it.
	RunAs  *syscall.Credential
	Logger *zap.Logger
}

// Driver is the lima VM driver: a Lima instance named InstanceName in
// LimaHome, driven through rdd-lima (see the package comment).
type Driver struct {
	o   Options
	env []string
	log *zap.Logger

	// keyMu guards the last restart key: the vm controller asks for it on
	// every decision, and rendering the template each time is waste.
	keyMu   sync.Mutex
	keyFor  vm.Config
	lastKey string
}

var (
	_ vm.Driver       = (*Driver)(nil)
	_ vm.RestartKeyer = (*Driver)(nil)
)

// New returns the driver; it fails at once when it cannot work (root,
// no QEMU, no rdd-lima) with a message that says what to do.
func New(o Options) (*Driver, error) {
	if os.Geteuid() == 0 && o.RunAs == nil {
		return nil, vm.ErrLimaAsRoot
	}
	if o.Helper == "" {
		return nil, errors.New("lima driver: rdd-lima was not found (build with `make build`, or set RDD_LIMA_HELPER)")
	}
	if o.BootTimeout <= 0 {
		o.BootTimeout = DefaultBootTimeout
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	qemuName := "qemu-system-" + o.Base.Arch
	if o.RealQEMU == "" {
		if v := os.Getenv("QEMU_SYSTEM_" + strings.ToUpper(o.Base.Arch)); v != "" {
			o.RealQEMU = v
		} else if p, err := exec.LookPath(qemuName); err == nil {
			o.RealQEMU = p
		} else {
			return nil, fmt.Errorf("lima driver: %s is not installed (apt-get install qemu-system-x86 qemu-utils, or set RDD_VM_DRIVER=host)", qemuName)
		}
	}
	// Lima runs QEMU_SYSTEM_<ARCH>: a link to rdd-lima that rewrites the
	// accelerator and the network restriction (agent.ExecQEMU).
	wrapDir := filepath.Join(o.LimaHome, "_rdd")
	if err := os.MkdirAll(wrapDir, 0o700); err != nil {
		return nil, fmt.Errorf("lima driver: %w", err)
	}
	wrapper := filepath.Join(wrapDir, qemuName)
	if target, err := os.Readlink(wrapper); err != nil || target != o.Helper {
		_ = os.Remove(wrapper)
		if err := os.Symlink(o.Helper, wrapper); err != nil {
			return nil, fmt.Errorf("lima driver: link the QEMU wrapper %s: %w", wrapper, err)
		}
	}
	if o.RunAs != nil {
		if err := chownTree(o.LimaHome, int(o.RunAs.Uid), int(o.RunAs.Gid)); err != nil {
			return nil, err
		}
	}
	restrict := "0"
	if o.Base.RestrictNetwork {
		restrict = "1"
	}
	env := append(os.Environ(),
		"LIMA_HOME="+o.LimaHome,
		"QEMU_SYSTEM_"+strings.ToUpper(o.Base.Arch)+"="+wrapper,
		"RDD_QEMU_REAL="+o.RealQEMU,
		"RDD_VM_ACCEL="+o.Base.Accel,
		"RDD_VM_RESTRICT_NETWORK="+restrict,
	)
	return &Driver{o: o, env: env, log: o.Logger.With(zap.String("driver", "lima"))}, nil
}

func chownTree(root string, uid, gid int) error {
	return filepath.Walk(root, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
}

// Name implements vm.Driver.
func (d *Driver) Name() string { return "lima" }

// KubeconfigPath is where the guest's k3s kubeconfig appears on the host.
func (d *Driver) KubeconfigPath() string { return d.o.Base.KubeconfigPath() }

// Dir is the Lima instance directory (H/lima/rd).
func (d *Driver) Dir() string { return filepath.Join(d.o.LimaHome, InstanceName) }

func (d *Driver) params(cfg vm.Config) Params {
	p := d.o.Base
	p.Engine = string(cfg.Engine)
	if p.Engine == "" {
		p.Engine = string(spec.EngineMoby)
	}
	p.KubernetesEnabled, p.KubernetesVersion, p.KubernetesPort = cfg.KubernetesEnabled, strings.TrimPrefix(cfg.KubernetesVersion, "v"), cfg.KubernetesPort
	if !p.KubernetesEnabled {
		p.KubernetesPort = 0
	}
	return p
}

// RestartKey implements vm.RestartKeyer: Lima's machine is the whole
// template, so any change of it restarts the VM (design.md §4).
func (d *Driver) RestartKey(cfg vm.Config) string {
	d.keyMu.Lock()
	defer d.keyMu.Unlock()
	if d.lastKey != "" && d.keyFor == cfg {
		return d.lastKey
	}
	b, err := Render(d.params(cfg))
	if err != nil {
		return ""
	}
	d.keyFor, d.lastKey = cfg, hashOf(b)
	return d.lastKey
}

func hashOf(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// call runs one rdd-lima command and decodes its JSON answer into out.
func (d *Driver) call(ctx context.Context, out any, stdin []byte, args ...string) error {
	cmd := exec.CommandContext(ctx, d.o.Helper, args...)
	cmd.Env = d.env
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// Its own process group: a daemon's ^C must not interrupt a create
	// half-way; the context still ends it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: d.o.RunAs}
	cmd.WaitDelay = 5 * time.Second
	runErr := cmd.Run()
	if stderr.Len() > 0 {
		d.log.Debug("rdd-lima", zap.Strings("args", args), zap.String("stderr", lastLines(stderr.String(), 20)))
	}
	var e Error
	if json.Unmarshal(stdout.Bytes(), &e) == nil && e.Error != "" {
		return errors.New(e.Error)
	}
	if runErr != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("rdd-lima %s: %w", args[0], ctx.Err())
		}
		return fmt.Errorf("rdd-lima %s failed (%v): %s", args[0], runErr, lastLines(stderr.String(), 3))
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(stdout.Bytes(), out); err != nil {
		return fmt.Errorf("rdd-lima %s answered %q: %w", args[0], lastLines(stdout.String(), 1), err)
	}
	return nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// LogTail is the last n lines of the log at path, and the path, for an
// error message that explains a failure without sending the user digging.
func LogTail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "no log at " + path
	}
	return lastLines(string(b), n) + " (log: " + path + ")"
}

// Create implements vm.Driver: the instance is made from the template of
// the base parameters (Start writes the spec's template before it boots).
func (d *Driver) Create(ctx context.Context) (bool, error) {
	tmpl, err := Render(d.params(vm.Config{}))
	if err != nil {
		return false, err
	}
	var c Created
	if err := d.call(ctx, &c, tmpl, "create"); err != nil {
		return false, err
	}
	if c.Replaced != "" {
		d.log.Warn("replaced what a failed create or delete left", zap.String("replaced", c.Replaced))
	}
	return c.Adopted, nil
}

// Start implements vm.Driver: it launches the host agent and returns at
// once; the boot goes on and Info.Booted reports its end from the host
// agent's event stream. A host agent that runs this template is adopted.
func (d *Driver) Start(ctx context.Context, cfg vm.Config) (vm.Info, error) {
	p := d.params(cfg)
	tmpl, err := Render(p)
	if err != nil {
		return vm.Info{}, err
	}
	if err := p.PrepareShareDir(); err != nil {
		return vm.Info{}, err
	}
	if d.o.RunAs != nil && p.KubernetesEnabled {
		_ = os.Chown(p.ShareDir(), int(d.o.RunAs.Uid), int(d.o.RunAs.Gid))
	}
	var s Started
	if err := d.call(ctx, &s, tmpl, "start"); err != nil {
		return vm.Info{}, err
	}
	info := vm.Info{Phase: vm.PhaseRunning, PID: s.HostAgentPID, TemplateHash: cfg.Hash(), RestartKey: hashOf(tmpl),
		Exited: watchPID(s.HostAgentPID)}
	events := filepath.Join(d.Dir(), HostAgentStdout)
	if s.Adopted {
		if st, _ := lastStatus(events); st.Running {
			info.Message = runningMessage(s.HostAgentPID, st)
			return info, nil
		}
	}
	info.Booted = d.watchBoot(events, s.HostAgentPID, info.Exited)
	info.Message = runningMessage(s.HostAgentPID, agentStatus{Running: true})
	return info, nil
}

func runningMessage(pid int, st agentStatus) string {
	msg := fmt.Sprintf("Lima VM is running (host agent pid %d)", pid)
	if st.Degraded {
		msg += "; degraded: " + strings.Join(st.Errors, "; ")
	}
	return msg
}

// watchBoot reports the end of the boot: nil at the first running event,
// else why the VM never got there (the host agent exited or said it is
// exiting, or the boot timed out).
func (d *Driver) watchBoot(events string, pid int, exited <-chan struct{}) <-chan error {
	booted := make(chan error, 1)
	go func() {
		deadline := time.NewTimer(d.o.BootTimeout)
		defer deadline.Stop()
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		var r eventReader
		for {
			st, err := r.next(events)
			switch {
			case err != nil:
				booted <- err
				return
			case st.Running:
				booted <- nil
				return
			case st.Exiting:
				booted <- fmt.Errorf("the Lima host agent (pid %d) is exiting before the VM became ready: %s", pid, strings.Join(st.Errors, "; "))
				return
			}
			select {
			case <-exited:
				if st, _ := r.next(events); st.Running {
					booted <- nil
					return
				}
				booted <- fmt.Errorf("the Lima host agent (pid %d) exited before the VM became ready: %s", pid, d.stderrTail())
				return
			case <-deadline.C:
				booted <- fmt.Errorf("the VM did not become ready within %s (last errors: %s; see %s and %s)", d.o.BootTimeout,
					strings.Join(r.last.Errors, "; "), filepath.Join(d.Dir(), HostAgentStderr), filepath.Join(d.Dir(), "serial.log"))
				return
			case <-tick.C:
			}
		}
	}()
	return booted
}

func (d *Driver) stderrTail() string {
	return LogTail(filepath.Join(d.Dir(), HostAgentStderr), 3)
}

// Stop implements vm.Driver: the graceful part gets what ctx leaves,
// minus the time the forced part needs.
func (d *Driver) Stop(ctx context.Context) error {
	grace := 30 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		grace = time.Until(dl) - 12*time.Second
	}
	grace = max(grace, time.Second)
	// The forced part must run even when ctx ends during the graceful one.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), grace+15*time.Second)
	defer cancel()
	return d.call(sctx, nil, nil, "stop", "-timeout", grace.String())
}

// Delete implements vm.Driver.
func (d *Driver) Delete(ctx context.Context) error {
	return d.call(ctx, nil, nil, "delete")
}

// Inspect implements vm.Driver. A host agent whose event stream says the
// VM runs is adopted as it is (same QEMU, no reboot); one that was still
// booting is reported broken, so the controller boots it again cleanly.
func (d *Driver) Inspect(ctx context.Context) (vm.Info, error) {
	var in Instance
	if err := d.call(ctx, &in, nil, "inspect"); err != nil {
		return vm.Info{}, err
	}
	switch {
	case in.Preparing:
		return vm.Info{Phase: vm.PhaseAbsent, Message: "an interrupted create left " + in.Dir + "; the next create replaces it"}, nil
	case !in.Exists:
		return vm.Info{Phase: vm.PhaseAbsent, Message: "no Lima instance in " + in.Dir}, nil
	case in.Status == StatusStopped:
		return vm.Info{Phase: vm.PhaseStopped, Message: "Lima VM is stopped"}, nil
	case in.Status == StatusRunning:
		st, _ := lastStatus(filepath.Join(in.Dir, HostAgentStdout))
		if !st.Running || st.Exiting {
			return vm.Info{Phase: vm.PhaseBroken, PID: in.HostAgentPID, Message: fmt.Sprintf("the Lima host agent (pid %d) runs but the VM never became ready", in.HostAgentPID)}, nil
		}
		tmpl, err := os.ReadFile(filepath.Join(in.Dir, LimaYAMLFile))
		if err != nil {
			return vm.Info{}, err
		}
		return vm.Info{Phase: vm.PhaseRunning, PID: in.HostAgentPID, RestartKey: hashOf(tmpl), Exited: watchPID(in.HostAgentPID),
			Message: runningMessage(in.HostAgentPID, st)}, nil
	}
	return vm.Info{Phase: vm.PhaseBroken, PID: in.HostAgentPID, Message: "Lima instance is " + in.Status + ": " + strings.Join(in.Errors, "; ")}, nil
}
