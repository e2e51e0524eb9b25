package dockertest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rdd-project/rdd/internal/mounts"
)

// StaleGlob matches the directories StartDaemon's callers create by
// convention; ReapStale looks only at these.
const StaleGlob = "/tmp/rdd-d-*"

// ReapStale removes daemon directories matching StaleGlob whose owner test
// process is gone, killing the dockerd, shims and container processes that
// still belong to them. Directories without an owner file, or whose owner
// still runs, are left alone. It returns the directories it removed.
func ReapStale() ([]string, error) {
	dirs, err := filepath.Glob(StaleGlob)
	if err != nil {
		return nil, err
	}
	var reaped []string
	var errs []error
	for _, dir := range dirs {
		if ownerAlive(dir) {
			continue
		}
		if err := cleanupDir(dir); err != nil {
			errs = append(errs, err)
			continue
		}
		reaped = append(reaped, dir)
	}
	return reaped, errors.Join(errs...)
}

// ownerAlive reports whether dir's owner process still runs. A directory
// without a readable owner file counts as alive (it is not ours, or is
// being set up).
func ownerAlive(dir string) bool {
	b, err := os.ReadFile(filepath.Join(dir, "owner"))
	if err != nil {
		return true
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return true
	}
	pid, err := strconv.Atoi(f[0])
	if err != nil {
		return true
	}
	st, err := procStartTime(pid)
	return err == nil && st == f[1]
}

// cleanupDir kills every process that still refers to dir, unmounts what is
// mounted below it, removes the cgroups of its containers, and removes it.
func cleanupDir(dir string) error {
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	ids := containerIDs(filepath.Join(dir, "data"))
	pids := slices.Concat(cgroupPIDs(ids), pidsReferring(dir))
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	waitGone(pids, 10*time.Second)
	var errs []error
	if err := mounts.UnmountUnder(dir); err != nil {
		errs = append(errs, err)
	}
	removeCgroups(ids)
	if err := os.RemoveAll(dir); err != nil {
		errs = append(errs, fmt.Errorf("dockertest: remove %s: %w", dir, err))
	}
	return errors.Join(errs...)
}

// containerIDs lists the container ids dockerd keeps under dataRoot.
func containerIDs(dataRoot string) []string {
	ents, err := os.ReadDir(filepath.Join(dataRoot, "containers"))
	if err != nil {
		return nil
	}
	var ids []string
	for _, e := range ents {
		if e.IsDir() && len(e.Name()) == 64 {
			ids = append(ids, e.Name())
		}
	}
	return ids
}

// cgroupDirs returns the cgroup directories (v1 hierarchies and v2) that the
// cgroupfs driver creates for container id.
func cgroupDirs(id string) []string {
	v1, _ := filepath.Glob("/sys/fs/cgroup/*/docker/" + id)
	v2, _ := filepath.Glob("/sys/fs/cgroup/docker/" + id)
	return append(v1, v2...)
}

func cgroupPIDs(ids []string) []int {
	var pids []int
	for _, id := range ids {
		for _, cg := range cgroupDirs(id) {
			b, err := os.ReadFile(filepath.Join(cg, "cgroup.procs"))
			if err != nil {
				continue
			}
			for _, l := range strings.Fields(string(b)) {
				if pid, err := strconv.Atoi(l); err == nil && !slices.Contains(pids, pid) {
					pids = append(pids, pid)
				}
			}
		}
	}
	return pids
}

func removeCgroups(ids []string) {
	for _, id := range ids {
		for _, cg := range cgroupDirs(id) {
			_ = os.Remove(cg) // rmdir; fails harmlessly while a process remains
		}
	}
}

// pidsReferring returns the live processes (other than this one) whose
// command line names dir: dockerd, containerd and the container shims.
func pidsReferring(dir string) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	needle := []byte(dir + "/")
	self := os.Getpid()
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil || !bytes.Contains(b, needle) || isZombie(pid) {
			continue
		}
		pids = append(pids, pid)
	}
	return pids
}

func isZombie(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	i := bytes.LastIndexByte(b, ')')
	return i < 0 || i+2 >= len(b) || b[i+2] == 'Z' || b[i+2] == 'X'
}

// waitGone polls until every pid has exited (or is a zombie) or timeout ends.
func waitGone(pids []int, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for _, pid := range pids {
		for !isZombie(pid) && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond) // polling a process we cannot wait on
		}
	}
}
