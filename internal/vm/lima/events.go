package lima

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// agentStatus is the status of one event of Lima's host agent: the JSON
// lines it writes on its stdout (ha.stdout.log), e.g.
// {"time":"…","status":{"running":true,"sshLocalPort":60022}}.
type agentStatus struct {
	Running      bool     `json:"running"`
	Degraded     bool     `json:"degraded"`
	Exiting      bool     `json:"exiting"`
	Errors       []string `json:"errors"`
	SSHLocalPort int      `json:"sshLocalPort"`
}

type agentEvent struct {
	Time   time.Time   `json:"time"`
	Status agentStatus `json:"status"`
}

// eventReader follows the event file from where it last stopped and
// returns the newest status it has seen.
type eventReader struct {
	offset int64
	last   agentStatus
}

func (r *eventReader) next(path string) (agentStatus, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return r.last, nil // the host agent has not written yet
	}
	if err != nil {
		return r.last, err
	}
	defer f.Close()
	if _, err := f.Seek(r.offset, io.SeekStart); err != nil {
		return r.last, err
	}
	br := bufio.NewReaderSize(f, 4096)
	for {
		line, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			// Skip an over-long line whole, a buffer at a time: it is
			// not an event of ours, and it must not be held in memory.
			n := int64(len(line))
			for err == bufio.ErrBufferFull {
				line, err = br.ReadSlice('\n')
				n += int64(len(line))
			}
			if err != nil {
				return r.last, nil // complete it next time
			}
			r.offset += n
			continue
		}
		if err != nil {
			return r.last, nil // a partial last line is read again next time
		}
		r.offset += int64(len(line))
		var ev agentEvent
		if json.Unmarshal(bytes.TrimSpace(line), &ev) == nil {
			r.last = ev.Status
		}
	}
}

// lastStatus is the newest status in the event file.
func lastStatus(path string) (agentStatus, error) {
	var r eventReader
	return r.next(path)
}

// watchPID returns a channel closed when pid no longer runs. The host agent
// is not the daemon's child (it runs in a session of its own so that it
// outlives a daemon crash), so it is polled rather than waited for.
func watchPID(pid int) <-chan struct{} {
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for processRuns(pid) {
			<-t.C
		}
	}()
	return exited
}

func processRuns(pid int) bool {
	if pid <= 0 || syscall.Kill(pid, 0) != nil && !isPermission(pid) {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return !errors.Is(err, os.ErrNotExist) || !procMounted()
	}
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z'
	}
	return true
}

// isPermission: a process of another user (the VM runs as RunAs) cannot be
// signalled, but it runs.
func isPermission(pid int) bool {
	return errors.Is(syscall.Kill(pid, 0), syscall.EPERM)
}

func procMounted() bool {
	_, err := os.Stat("/proc/self/stat")
	return err == nil
}
