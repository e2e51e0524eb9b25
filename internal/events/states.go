package events

// The states of each machine live here, in the leaf package, because the
// projector derives conditions from them; machines.go lists them per machine
// with the edges between them. All values are persisted: never rename one.

// VMState is a state of the vm machine.
type VMState string

const (
	VMAbsent       VMState = "absent"
	VMCreating     VMState = "creating"
	VMCreateFailed VMState = "createFailed"
	VMStopped      VMState = "stopped"
	VMStarting     VMState = "starting"
	VMRunning      VMState = "running"
	VMStartFailed  VMState = "startFailed"
	VMStopping     VMState = "stopping"
	VMStopFailed   VMState = "stopFailed"
	VMReconciling  VMState = "reconciling"
	VMDeleting     VMState = "deleting"
)

// EngineState is a state of the engine machine.
type EngineState string

const (
	EngineStopped       EngineState = "stopped"
	EngineConnecting    EngineState = "connecting"
	EngineConnected     EngineState = "connected"
	EngineConnectFailed EngineState = "connectFailed"
	EngineNotApplicable EngineState = "notApplicable"
)

// K3sState is a state of the k3s machine.
type K3sState string

const (
	K3sNotApplicable  K3sState = "notApplicable"
	K3sNotRunning     K3sState = "notRunning"
	K3sProbing        K3sState = "probing"
	K3sWaitingForNode K3sState = "waitingForNode"
	K3sReady          K3sState = "ready"
	// K3sStarting: rdd gets the k3s binary and starts its process (drivers
	// on which rdd runs k3s itself; in a VM the template starts it).
	K3sStarting K3sState = "starting"
	// K3sInstallFailed: the k3s binary could not be found or downloaded.
	K3sInstallFailed K3sState = "installFailed"
)

// KubeconfigState is a state of the kubeconfig machine.
type KubeconfigState string

const (
	KubeconfigAbsent      KubeconfigState = "absent"
	KubeconfigMerged      KubeconfigState = "merged"
	KubeconfigMergeFailed KubeconfigState = "mergeFailed"
	KubeconfigRemoving    KubeconfigState = "removing"
)
