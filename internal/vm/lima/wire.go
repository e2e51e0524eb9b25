package lima

// The rdd daemon (which must not link Lima, see guard_test.go) and the
// rdd-lima program (which does) talk through these JSON documents: one on
// rdd-lima's stdout per command, or an Error on failure.

// InstanceName is the Lima instance of every rdd instance: each rdd
// instance has a LIMA_HOME of its own (H/lima), so the name never clashes.
const InstanceName = "rd"

// Instance is what `rdd-lima inspect` reports.
type Instance struct {
	// Exists is false when the instance directory holds no lima.yaml.
	Exists bool   `json:"exists"`
	Dir    string `json:"dir"`
	// Status is Lima's: Running, Stopped or Broken ("" when absent).
	Status       string   `json:"status,omitempty"`
	HostAgentPID int      `json:"hostAgentPID,omitempty"`
	DriverPID    int      `json:"driverPID,omitempty"`
	Errors       []string `json:"errors,omitempty"`
	// Preparing is true when an interrupted create left its sentinel.
	Preparing bool `json:"preparing,omitempty"`
}

// Lima statuses as store.Inspect reports them.
const (
	StatusRunning = "Running"
	StatusStopped = "Stopped"
	StatusBroken  = "Broken"
)

// Created is what `rdd-lima create` reports.
type Created struct {
	// Adopted is true when a complete instance already existed.
	Adopted bool `json:"adopted"`
	// Replaced names what was removed first (an interrupted create, a
	// directory without metadata), "" for nothing.
	Replaced string `json:"replaced,omitempty"`
}

// Started is what `rdd-lima start` reports.
type Started struct {
	HostAgentPID int `json:"hostAgentPID"`
	// Adopted is true when a host agent already ran with this template.
	Adopted bool `json:"adopted"`
}

// Error is rdd-lima's answer when a command fails (exit status 1).
type Error struct {
	Error string `json:"error"`
}

// File names inside the instance directory that both sides use.
const (
	PreparingSentinel = ".preparing"
	HostAgentStdout   = "ha.stdout.log"
	HostAgentStderr   = "ha.stderr.log"
	HostAgentPIDFile  = "ha.pid"
	LimaYAMLFile      = "lima.yaml"
)
