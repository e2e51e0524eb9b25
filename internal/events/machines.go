package events

// The one declaration of each machine's states and edges. internal/fsm
// builds its machines from it, the projector validates states against it,
// and the tests draw plausible logs from it. It lives in this leaf package
// because the projector needs it and must not import fsm.

// Event names a machine event. Events are persisted in Transition.Event:
// never rename one.
type Event string

// vm machine events.
const (
	EventVMCreate       Event = "create"
	EventVMCreated      Event = "created"
	EventVMCreateFailed Event = "createFailed"
	EventVMStart        Event = "start"
	EventVMStarted      Event = "started"
	EventVMStartFailed  Event = "startFailed"
	EventVMStop         Event = "stop"
	EventVMStopped      Event = "stopped"
	EventVMStopFailed   Event = "stopFailed"
	// EventVMCrashed: the engine process died while it should run; the
	// machine goes straight back to starting (a crash is not a stop).
	EventVMCrashed   Event = "crashed"
	EventVMReconcile Event = "reconcile"
	EventVMDelete    Event = "delete"
	EventVMDeleted   Event = "deleted"
)

// engine machine events.
const (
	EventEngineConnect       Event = "connect"
	EventEngineConnected     Event = "connected"
	EventEngineConnectFailed Event = "connectFailed"
	// EventEngineDisconnected: the event stream of a connected engine broke;
	// the watcher reconnects with a full sync.
	EventEngineDisconnected  Event = "disconnected"
	EventEngineStop          Event = "stop"
	EventEngineNotApplicable Event = "notApplicable"
)

// k3s machine events.
const (
	EventK3sDisable   Event = "disable"
	EventK3sVMDown    Event = "vmDown"
	EventK3sProbe     Event = "probe"
	EventK3sHealthy   Event = "healthy"
	EventK3sNodeReady Event = "nodeReady"
	// EventK3sUnhealthy: a decisive probe failure, or the third ambiguous one.
	EventK3sUnhealthy Event = "unhealthy"
	// EventK3sStart: rdd gets k3s and starts its process, first or again
	// after it exited.
	EventK3sStart Event = "start"
	// EventK3sProgress: news while starting (download progress, a retry).
	EventK3sProgress      Event = "progress"
	EventK3sInstallFailed Event = "installFailed"
)

// kubeconfig machine events.
const (
	EventKubeconfigMerge       Event = "merge"
	EventKubeconfigMergeFailed Event = "mergeFailed"
	EventKubeconfigRemove      Event = "remove"
	EventKubeconfigRemoved     Event = "removed"
	// EventKubeconfigCurrentContext records the current-context decision
	// taken once per Ready transition (kept or switched, and why).
	EventKubeconfigCurrentContext Event = "currentContext"
)

// Edge is one allowed transition: on Event, every state in From moves to To.
type Edge struct {
	Event Event
	From  []string
	To    string
}

type machineDef struct {
	initial string
	states  []string
	edges   []Edge
}

// machineDefs is indexed by machine slot (Machines order).
var machineDefs = [numMachines]machineDef{
	mVM: {
		initial: string(VMAbsent),
		states: strs(VMAbsent, VMCreating, VMCreateFailed, VMStopped, VMStarting, VMRunning,
			VMStartFailed, VMStopping, VMStopFailed, VMReconciling, VMDeleting),
		edges: []Edge{
			{EventVMCreate, strs(VMAbsent, VMCreateFailed), string(VMCreating)},
			{EventVMCreated, strs(VMCreating), string(VMStopped)},
			{EventVMCreateFailed, strs(VMCreating), string(VMCreateFailed)},
			{EventVMStart, strs(VMStopped, VMStartFailed, VMStopFailed), string(VMStarting)},
			{EventVMStarted, strs(VMStarting, VMReconciling), string(VMRunning)},
			{EventVMStartFailed, strs(VMStarting), string(VMStartFailed)},
			{EventVMStop, strs(VMRunning, VMStarting, VMStartFailed, VMStopFailed), string(VMStopping)},
			{EventVMStopped, strs(VMStopping, VMReconciling), string(VMStopped)},
			{EventVMStopFailed, strs(VMStopping), string(VMStopFailed)},
			{EventVMCrashed, strs(VMRunning), string(VMStarting)},
			{EventVMReconcile, strs(VMCreating, VMStarting, VMStopping, VMRunning, VMStopped, VMDeleting), string(VMReconciling)},
			{EventVMDelete, strs(VMStopped, VMCreateFailed, VMStartFailed, VMStopFailed, VMReconciling), string(VMDeleting)},
			{EventVMDeleted, strs(VMDeleting), string(VMAbsent)},
		},
	},
	mEngine: {
		initial: string(EngineStopped),
		states:  strs(EngineStopped, EngineConnecting, EngineConnected, EngineConnectFailed, EngineNotApplicable),
		edges: []Edge{
			{EventEngineConnect, strs(EngineStopped, EngineConnectFailed), string(EngineConnecting)},
			{EventEngineConnected, strs(EngineConnecting, EngineConnectFailed), string(EngineConnected)},
			{EventEngineConnectFailed, strs(EngineConnecting, EngineConnected), string(EngineConnectFailed)},
			{EventEngineDisconnected, strs(EngineConnected), string(EngineConnecting)},
			{EventEngineStop, strs(EngineConnecting, EngineConnected, EngineConnectFailed, EngineNotApplicable), string(EngineStopped)},
			{EventEngineNotApplicable, strs(EngineStopped), string(EngineNotApplicable)},
		},
	},
	mK3s: {
		initial: string(K3sNotApplicable),
		states:  strs(K3sNotApplicable, K3sNotRunning, K3sStarting, K3sInstallFailed, K3sProbing, K3sWaitingForNode, K3sReady),
		edges: []Edge{
			{EventK3sDisable, strs(K3sNotRunning, K3sStarting, K3sInstallFailed, K3sProbing, K3sWaitingForNode, K3sReady), string(K3sNotApplicable)},
			{EventK3sVMDown, strs(K3sNotApplicable, K3sStarting, K3sInstallFailed, K3sProbing, K3sWaitingForNode, K3sReady), string(K3sNotRunning)},
			{EventK3sStart, strs(K3sNotApplicable, K3sNotRunning, K3sInstallFailed, K3sProbing, K3sWaitingForNode, K3sReady), string(K3sStarting)},
			{EventK3sProgress, strs(K3sStarting), string(K3sStarting)},
			{EventK3sInstallFailed, strs(K3sStarting), string(K3sInstallFailed)},
			{EventK3sProbe, strs(K3sNotApplicable, K3sNotRunning, K3sStarting), string(K3sProbing)},
			{EventK3sHealthy, strs(K3sProbing), string(K3sWaitingForNode)},
			{EventK3sNodeReady, strs(K3sWaitingForNode, K3sProbing), string(K3sReady)},
			// From probing too: a probe whose cause changed says so.
			{EventK3sUnhealthy, strs(K3sProbing, K3sWaitingForNode, K3sReady), string(K3sProbing)},
		},
	},
	mKubeconfig: {
		initial: string(KubeconfigAbsent),
		states:  strs(KubeconfigAbsent, KubeconfigMerged, KubeconfigMergeFailed, KubeconfigRemoving),
		edges: []Edge{
			{EventKubeconfigMerge, strs(KubeconfigAbsent, KubeconfigMergeFailed), string(KubeconfigMerged)},
			{EventKubeconfigMergeFailed, strs(KubeconfigAbsent, KubeconfigMerged), string(KubeconfigMergeFailed)},
			{EventKubeconfigRemove, strs(KubeconfigMerged, KubeconfigMergeFailed), string(KubeconfigRemoving)},
			{EventKubeconfigRemoved, strs(KubeconfigRemoving), string(KubeconfigAbsent)},
			{EventKubeconfigCurrentContext, strs(KubeconfigMerged), string(KubeconfigMerged)},
		},
	},
}

func strs[S ~string](v ...S) []string {
	out := make([]string, len(v))
	for i, x := range v {
		out[i] = string(x)
	}
	return out
}

// States lists machine m's states in declaration order; nil for an unknown
// machine. The slice is the caller's.
func States(m Machine) []string {
	i, ok := machineSlot(m)
	if !ok {
		return nil
	}
	return append([]string(nil), machineDefs[i].states...)
}

// Edges lists machine m's edges in declaration order (the order of the
// Mermaid diagrams); nil for an unknown machine. The slices are the caller's.
func Edges(m Machine) []Edge {
	i, ok := machineSlot(m)
	if !ok {
		return nil
	}
	out := make([]Edge, len(machineDefs[i].edges))
	for j, e := range machineDefs[i].edges {
		out[j] = Edge{Event: e.Event, From: append([]string(nil), e.From...), To: e.To}
	}
	return out
}

// InitialState returns the state a machine is in before its first transition.
func InitialState(m Machine) string {
	i, ok := machineSlot(m)
	if !ok {
		return ""
	}
	return machineDefs[i].initial
}

// ValidState reports whether s is a state of machine m.
func ValidState(m Machine, s string) bool {
	i, ok := machineSlot(m)
	return ok && validState(i, s)
}

func validState(slot int, s string) bool {
	for _, x := range machineDefs[slot].states {
		if x == s {
			return true
		}
	}
	return false
}
