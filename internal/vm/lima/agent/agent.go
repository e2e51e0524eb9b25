// Package agent is the side of the lima driver that links Lima's library:
// it creates, inspects, starts, stops and deletes one Lima instance and
// runs Lima's host agent. Only cmd/rdd-lima imports it (Lima's package
// initialisation would cost every rdd command 8-10 ms); the daemon runs
// rdd-lima and reads the JSON documents of internal/vm/lima.
package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/lima-vm/lima/pkg/instance"
	"github.com/lima-vm/lima/pkg/limayaml"
	"github.com/lima-vm/lima/pkg/store"
	"github.com/lima-vm/lima/pkg/store/filenames"

	"github.com/rdd-project/rdd/internal/vm/lima"
)

// Inspect reports the instance as Lima's store sees it.
func Inspect(name string) (lima.Instance, error) {
	dir, err := store.InstanceDir(name)
	if err != nil {
		return lima.Instance{}, err
	}
	out := lima.Instance{Dir: dir, Preparing: preparing(dir)}
	inst, err := store.Inspect(name)
	if errors.Is(err, os.ErrNotExist) {
		return out, nil
	}
	if err != nil {
		return out, err
	}
	out.Exists = true
	out.Status = string(inst.Status)
	out.HostAgentPID, out.DriverPID = inst.HostAgentPID, inst.DriverPID
	for _, e := range inst.Errors {
		out.Errors = append(out.Errors, e.Error())
	}
	return out, nil
}

// preparing: an interrupted create left its sentinel in dir.
func preparing(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, lima.PreparingSentinel))
	return err == nil
}

// Create makes the instance from tmpl and prepares its disks (the image is
// copied or downloaded here, which can take minutes), or adopts a complete
// instance that exists. An interrupted earlier create (its sentinel is
// still there) and a directory without metadata are removed first.
func Create(ctx context.Context, name string, tmpl []byte) (lima.Created, error) {
	var out lima.Created
	dir, err := store.InstanceDir(name)
	if err != nil {
		return out, err
	}
	switch found, err := Inspect(name); {
	case err != nil:
		return out, err
	case found.Preparing:
		out.Replaced = "an interrupted create"
	case found.Exists && len(found.Errors) == 0:
		return lima.Created{Adopted: true}, nil
	case found.Exists:
		out.Replaced = "an instance whose metadata is damaged: " + strings.Join(found.Errors, "; ")
	default:
		if _, err := os.Stat(dir); err == nil {
			out.Replaced = "a directory without metadata"
		}
	}
	if out.Replaced != "" {
		if err := removeInstance(ctx, name, dir); err != nil {
			return out, fmt.Errorf("remove %s at %s: %w", out.Replaced, dir, err)
		}
	}
	inst, err := instance.Create(ctx, name, tmpl, false)
	if err != nil {
		_ = os.RemoveAll(dir)
		return out, fmt.Errorf("create the Lima instance in %s: %w", dir, err)
	}
	sentinel := filepath.Join(dir, lima.PreparingSentinel)
	if err := os.WriteFile(sentinel, nil, 0o600); err != nil {
		_ = os.RemoveAll(dir)
		return out, err
	}
	if _, err := instance.Prepare(ctx, inst); err != nil {
		_ = removeInstance(context.WithoutCancel(ctx), name, dir)
		return out, fmt.Errorf("prepare the Lima instance (image %s): %w", imageLocations(tmpl), err)
	}
	return out, os.Remove(sentinel)
}

// imageLocations names the images a template asks for, for error messages.
func imageLocations(tmpl []byte) string {
	y, err := limayaml.Load(tmpl, "lima.yaml")
	if err != nil || len(y.Images) == 0 {
		return "(unknown)"
	}
	var locs []string
	for _, im := range y.Images {
		locs = append(locs, im.Location)
	}
	return strings.Join(locs, ", ")
}

// removeInstance kills what runs of the instance and removes its directory.
func removeInstance(ctx context.Context, name, dir string) error {
	if inst, err := store.Inspect(name); err == nil {
		instance.StopForcibly(inst)
		if err := instance.Delete(ctx, inst, true); err == nil {
			return nil
		}
	}
	return os.RemoveAll(dir)
}

// Delete stops the instance by force and removes it; an instance that does
// not exist is not an error.
func Delete(ctx context.Context, name string) error {
	dir, err := store.InstanceDir(name)
	if err != nil {
		return err
	}
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return removeInstance(ctx, name, dir)
}

// pidFileWait bounds how long Start waits for the host agent's pid file
// (behavior.md §6.5).
const pidFileWait = 5 * time.Second

// Start launches the host agent (self hostagent …) in a session of its own,
// so that it outlives rdd-lima and the daemon, and returns once it has
// written its pid file: the boot itself goes on and is reported in the
// host agent's event stream (ha.stdout.log). A host agent that already
// runs with the same lima.yaml is adopted; one with another template, or a
// broken instance, is stopped first. tmpl replaces lima.yaml when it differs.
func Start(ctx context.Context, name string, tmpl []byte, self string) (lima.Started, error) {
	// An instance removed behind rdd's back (limactl delete, a cleaned
	// LIMA_HOME), or whose create was interrupted, is made again.
	inst, err := store.Inspect(name)
	if errors.Is(err, os.ErrNotExist) || err == nil && preparing(inst.Dir) {
		if _, err := Create(ctx, name, tmpl); err != nil {
			return lima.Started{}, err
		}
		inst, err = store.Inspect(name)
	}
	if err != nil {
		return lima.Started{}, fmt.Errorf("inspect the Lima instance %q: %w", name, err)
	}
	yamlPath := filepath.Join(inst.Dir, filenames.LimaYAML)
	current, err := os.ReadFile(yamlPath)
	if err != nil {
		return lima.Started{}, err
	}
	same := bytes.Equal(current, tmpl)
	switch {
	case inst.Status == store.StatusRunning && same:
		return lima.Started{HostAgentPID: inst.HostAgentPID, Adopted: true}, nil
	case inst.Status == store.StatusRunning:
		if err := stop(ctx, inst); err != nil {
			return lima.Started{}, fmt.Errorf("stop the VM to apply the new template: %w", err)
		}
	case inst.Status != store.StatusStopped:
		instance.StopForcibly(inst)
	}
	if !same {
		if err := writeTemplate(yamlPath, tmpl); err != nil {
			return lima.Started{}, err
		}
		// Prepare works from the instance's configuration: the new one.
		if inst, err = store.Inspect(name); err != nil {
			return lima.Started{}, err
		}
	}
	prepared, err := instance.Prepare(ctx, inst)
	if err != nil {
		return lima.Started{}, fmt.Errorf("prepare the Lima instance: %w", err)
	}
	pid, err := spawnHostAgent(inst, self, prepared.GuestAgent)
	if err != nil {
		return lima.Started{}, err
	}
	return lima.Started{HostAgentPID: pid}, nil
}

// writeTemplate validates tmpl as Lima would and replaces lima.yaml with it.
func writeTemplate(path string, tmpl []byte) error {
	y, err := limayaml.LoadWithWarnings(tmpl, path)
	if err != nil {
		return fmt.Errorf("the new template does not load: %w", err)
	}
	if err := limayaml.Validate(y, true); err != nil {
		return fmt.Errorf("the new template is not valid: %w", err)
	}
	tmp := path + ".new"
	if err := os.WriteFile(tmp, tmpl, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func spawnHostAgent(inst *store.Instance, self, guestAgent string) (int, error) {
	pidPath := filepath.Join(inst.Dir, filenames.HostAgentPID)
	_ = os.Remove(pidPath) // Start only comes here with nothing running
	rotate(filepath.Join(inst.Dir, filenames.HostAgentStdoutLog))
	rotate(filepath.Join(inst.Dir, filenames.HostAgentStderrLog))
	stdout, err := os.Create(filepath.Join(inst.Dir, filenames.HostAgentStdoutLog))
	if err != nil {
		return 0, err
	}
	defer stdout.Close()
	stderrPath := filepath.Join(inst.Dir, filenames.HostAgentStderrLog)
	stderr, err := os.Create(stderrPath)
	if err != nil {
		return 0, err
	}
	defer stderr.Close()
	args := []string{"hostagent", "--pidfile", pidPath, "--socket", filepath.Join(inst.Dir, filenames.HostAgentSock)}
	if guestAgent != "" {
		args = append(args, "--guestagent", guestAgent)
	}
	cmd := exec.Command(self, append(args, inst.Name)...)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	// A session of its own: the host agent (and its QEMU) survive a
	// daemon crash and are adopted by the next daemon (issue 8 item 4).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("start the host agent %s: %w", self, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.NewTimer(pidFileWait)
	defer deadline.Stop()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if b, err := os.ReadFile(pidPath); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 {
				return pid, nil
			}
		}
		select {
		case err := <-exited:
			return 0, fmt.Errorf("the host agent exited at once (%v): %s", err, lima.LogTail(stderrPath, 5))
		case <-deadline.C:
			_ = cmd.Process.Kill()
			return 0, fmt.Errorf("the host agent wrote no pid file %s within %s: %s", pidPath, pidFileWait, lima.LogTail(stderrPath, 5))
		case <-tick.C:
		}
	}
}

// rotate keeps the previous log as X.1.log (behavior.md §1.2 keeps five;
// one is what a failed boot needs to be explained).
func rotate(path string) {
	ext := filepath.Ext(path)
	_ = os.Rename(path, strings.TrimSuffix(path, ext)+".1"+ext)
}

// Stop stops the VM gracefully (SIGINT to the host agent, which shuts the
// guest down) until ctx ends, then by force, and removes the pid and
// socket files, so Inspect says Stopped afterwards.
func Stop(ctx context.Context, name string) error {
	inst, err := store.Inspect(name)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return stop(ctx, inst)
}

func stop(ctx context.Context, inst *store.Instance) error {
	if inst.HostAgentPID > 0 {
		_ = syscall.Kill(inst.HostAgentPID, syscall.SIGINT)
		waitGone(ctx, inst.HostAgentPID)
	}
	// What is left after the graceful part (a driver that outlived its
	// host agent, stale pid files) goes by force.
	if again, err := store.Inspect(inst.Name); err == nil {
		inst = again
	}
	instance.StopForcibly(inst)
	for _, pid := range []int{inst.HostAgentPID, inst.DriverPID} {
		if pid > 0 {
			wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			waitGone(wctx, pid)
			cancel()
		}
	}
	after, err := store.Inspect(inst.Name)
	if err != nil {
		return err
	}
	if after.Status != store.StatusStopped {
		return fmt.Errorf("the Lima instance in %s is still %s after a forced stop", after.Dir, after.Status)
	}
	return nil
}

// waitGone waits until pid no longer runs or ctx ends.
func waitGone(ctx context.Context, pid int) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for lima.ProcessRuns(pid) {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
