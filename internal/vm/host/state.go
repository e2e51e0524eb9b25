package host

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/rdd-project/rdd/internal/spec"
)

// stateVersion is the schema version of the state file. A file with another
// version is treated as unreadable.
const stateVersion = 1

// state is the content of the state file H/run/engine.json, written by Start
// after each process it spawns and removed by Stop, Delete, and by Inspect
// when every recorded process is gone. It is what lets a restarted rdd
// re-adopt the machine instead of starting a second one.
type state struct {
	V            int             `json:"v"`
	Engine       spec.EngineName `json:"engine"`
	TemplateHash string          `json:"templateHash"`
	StartedAt    time.Time       `json:"startedAt"`
	// PGID is the process group every process of the machine belongs to: the
	// pid of the first process started.
	PGID int `json:"pgid"`
	// Socket is the socket that must answer while the machine runs.
	Socket string `json:"socket"`
	// Procs are the processes in start order. The last one is the engine
	// process whose PID Info reports (dockerd, or containerd for the
	// containerd engine); earlier ones are its helpers (the containerd that
	// dockerd uses).
	Procs []procRecord `json:"procs"`
	// Spawning is set while a process is being spawned and not yet in
	// Procs; see spawnIntent.
	Spawning *spawnIntent `json:"spawning,omitempty"`
}

// main returns the engine process record.
func (s state) main() procRecord {
	if len(s.Procs) == 0 {
		return procRecord{}
	}
	return s.Procs[len(s.Procs)-1]
}

// live returns the recorded processes that still run.
func (s state) live() []procRecord {
	var out []procRecord
	for _, p := range s.Procs {
		if p.alive() {
			out = append(out, p)
		}
	}
	return out
}

// sameProcs reports whether s and o describe the same processes.
func (s state) sameProcs(o state) bool {
	if len(s.Procs) != len(o.Procs) {
		return false
	}
	for i := range s.Procs {
		if s.Procs[i].PID != o.Procs[i].PID || s.Procs[i].StartTicks != o.Procs[i].StartTicks {
			return false
		}
	}
	return true
}

// readState reads the state file. ok is false when there is none.
func readState(path string) (st state, ok bool, err error) {
	ok, err = readJSONState(path, "engine", &st, func() int { return st.V }, stateVersion)
	return st, ok, err
}

// writeState replaces the state file atomically.
func writeState(path string, st state) error {
	st.V = stateVersion
	return writeJSONState(path, "engine", st)
}

// readJSONState reads a versioned JSON state file of what (engine, k3s)
// into v. ok is false when there is none.
func readJSONState(path, what string, v any, version func() int, want int) (ok bool, err error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read %s state %s: %w", what, path, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return false, fmt.Errorf("parse %s state %s: %w", what, path, err)
	}
	if got := version(); got != want {
		return false, fmt.Errorf("%s state %s has version %d, want %d", what, path, got, want)
	}
	return true, nil
}

// writeJSONState replaces a state file atomically (temp file, fsync,
// rename), so a reader never sees half a file.
func writeJSONState(path, what string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s state: %w", what, err)
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+what+"-*.json")
	if err != nil {
		return fmt.Errorf("write %s state %s: %w", what, path, err)
	}
	tmp := f.Name()
	_, err = f.Write(append(b, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write %s state %s: %w", what, path, err)
	}
	return nil
}
