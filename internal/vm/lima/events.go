package lima

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"syscall"
	"time"

	"github.com/rdd-project/rdd/internal/proc"
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
		for ProcessRuns(pid) {
			<-t.C
		}
	}()
	return exited
}

// ProcessRuns reports whether pid is a live process: signal 0 reaches it, or
// it is another user's (the VM runs as RunAs), and /proc does not call it
// dead (a zombie). Without /proc (macOS) signal 0 alone decides.
func ProcessRuns(pid int) bool {
	if pid <= 0 {
		return false
	}
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	st, err := proc.ReadStat(pid)
	if err != nil {
		return !errors.Is(err, os.ErrNotExist) || !procMounted()
	}
	return !st.Dead()
}

func procMounted() bool {
	_, err := os.Stat("/proc/self/stat")
	return err == nil
}
