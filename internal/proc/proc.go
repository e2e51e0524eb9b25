// Package proc reads what rdd needs of a Linux process from /proc/<pid>/stat:
// its state (a zombie is dead, though signal 0 still reaches it), its process
// group, and its start time, which together with the pid identifies a process
// across pid reuse; and it lists processes with their command lines. The
// host driver, the CLI's daemon checks and the test harnesses share it.
package proc

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// Stat is what rdd reads from /proc/<pid>/stat.
type Stat struct {
	State      byte   // field 3: R, S, D, Z, ...
	PPID       int    // field 4
	PGID       int    // field 5
	StartTicks uint64 // field 22: start time in clock ticks since boot
}

// PIDs lists the processes in /proc, this one included.
func PIDs() ([]int, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	pids := make([]int, 0, len(ents))
	for _, e := range ents {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// Cmdline returns /proc/<pid>/cmdline: the arguments, each ended by a NUL.
// A zombie's is empty.
func Cmdline(pid int) ([]byte, error) {
	return os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
}

// ReadStat parses /proc/<pid>/stat. An error wrapping fs.ErrNotExist means
// the process is gone (reaped).
func ReadStat(pid int) (Stat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return Stat{}, err
	}
	return ParseStat(string(b))
}

// ParseStat parses the content of a stat file. The comm field (2) is wrapped
// in parentheses and may itself contain spaces and parentheses, so parsing
// starts after the last ')'.
func ParseStat(s string) (Stat, error) {
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return Stat{}, errors.New("malformed /proc stat: no ')'")
	}
	f := strings.Fields(s[i+1:]) // f[0] is field 3
	if len(f) < 20 {
		return Stat{}, fmt.Errorf("malformed /proc stat: %d fields after comm", len(f))
	}
	ppid, err := strconv.Atoi(f[4-3])
	if err != nil {
		return Stat{}, fmt.Errorf("malformed /proc stat ppid %q: %w", f[4-3], err)
	}
	pgid, err := strconv.Atoi(f[5-3])
	if err != nil {
		return Stat{}, fmt.Errorf("malformed /proc stat pgrp %q: %w", f[5-3], err)
	}
	start, err := strconv.ParseUint(f[22-3], 10, 64)
	if err != nil {
		return Stat{}, fmt.Errorf("malformed /proc stat starttime %q: %w", f[22-3], err)
	}
	return Stat{State: f[0][0], PPID: ppid, PGID: pgid, StartTicks: start}, nil
}

// Uptime is the time since boot from /proc/uptime, 0 when unknown.
func Uptime() time.Duration {
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

// Age is how long ago a process with these start ticks started (USER_HZ is
// 100 on Linux), 0 when unknown.
func Age(startTicks uint64) time.Duration {
	up := Uptime()
	if up == 0 {
		return 0
	}
	return max(up-time.Duration(startTicks)*(time.Second/100), 0)
}

// Dead reports whether a process in this state has exited (a zombie is dead:
// it only waits to be reaped).
func (st Stat) Dead() bool { return st.State == 'Z' || st.State == 'X' || st.State == 'x' }
