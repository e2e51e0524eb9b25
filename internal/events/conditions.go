package events

import (
	"strings"
	"unicode/utf8"
)

// Condition reasons (behavior.md §3.3). Persisted in snapshots and printed
// to users: never rename one. Failure reasons end in "Failed": Settled
// forwards their message (behavior.md §4), so new ones must keep the suffix.
const (
	// Created
	ReasonPending      = "Pending"
	ReasonCreated      = "Created"
	ReasonCreateFailed = "CreateFailed"
	// Running
	ReasonReconciling = "Reconciling"
	ReasonStarting    = "Starting"
	ReasonStarted     = "Started"
	ReasonStopped     = "Stopped"
	ReasonStartFailed = "StartFailed"
	ReasonStopping    = "Stopping"
	ReasonStopFailed  = "StopFailed"
	ReasonDeleting    = "Deleting"
	// ContainerEngineReady (also ReasonStopped)
	ReasonConnecting    = "Connecting"
	ReasonConnected     = "Connected"
	ReasonConnectFailed = "ConnectFailed"
	ReasonNotApplicable = "NotApplicable"
	// KubernetesReady (also ReasonNotApplicable)
	ReasonNotRunning     = "NotRunning"
	ReasonProbing        = "Probing"
	ReasonWaitingForNode = "WaitingForNode"
	ReasonMergeFailed    = "MergeFailed"
	ReasonReady          = "Ready"
	// ReasonInstallFailed: the k3s binary could not be found or downloaded.
	ReasonInstallFailed = "InstallFailed"
	// Settled (it also forwards the reasons above)
	ReasonSettled              = "Settled"
	ReasonWaitingForLimaVM     = "WaitingForLimaVM"
	ReasonWaitingForEngine     = "WaitingForEngine"
	ReasonEngineStale          = "EngineStale"
	ReasonWaitingForKubernetes = "WaitingForKubernetes"
	ReasonKubernetesStale      = "KubernetesStale"
	ReasonApplyingTemplate     = "ApplyingTemplate"
)

// Default condition messages (behavior.md §3.3). Failure states have no
// default: their message is the error a Transition carries, and Settled
// falls back to "LimaVM has not yet reached …" when it is empty. The vm
// machine's texts name the driver's machine (VMNoun); the MsgCreated …
// MsgDeleting constants are the lima driver's, the reference's exact texts.
const (
	MsgPending           = "Reconciliation in progress"
	MsgCreated           = "Lima instance created successfully"
	MsgReconciling       = "Verifying instance state after controller restart"
	MsgStarting          = "Lima instance is starting"
	MsgStarted           = "Lima instance is running"
	MsgStopped           = "Lima instance is stopped"
	MsgStopping          = "Lima instance is stopping"
	MsgDeleting          = "Lima instance is being deleted"
	MsgEngineStopped     = "Container engine stopped"
	MsgEngineConnecting  = "Connecting to the container engine"
	MsgEngineConnected   = "Container engine synced"
	MsgEngineNotApplic   = "Engine mirroring is only supported with the moby backend"
	MsgKubeNotApplicable = "Kubernetes is not enabled"
	MsgKubeNotRunning    = "VM is not running"
	MsgKubeProbing       = "Waiting for k3s API server"
	MsgKubeStarting      = "Starting k3s"
	MsgKubeInstallFailed = "The k3s binary could not be installed"
	MsgKubeWaitingNode   = "No node is Ready yet"
	MsgKubeReady         = "Kubernetes cluster is ready"
	// MsgKubePublishing is the message of KubernetesReady=False/Probing while
	// k3s is ready but the kubeconfig machine has not merged the context yet.
	MsgKubePublishing   = "Waiting for the Kubernetes context to be published"
	MsgMergeFailedPref  = "Failed to publish Kubernetes context"
	MsgSettled          = "App has reached the desired state"
	MsgWaitingForLimaVM = "Waiting for LimaVM to report its state"
	MsgWaitingForEngine = "Waiting for container engine condition"
	MsgEngineStale      = "Container engine needs to be synchronized"
	MsgWaitingForKube   = "Waiting for Kubernetes condition"
	MsgKubeStale        = "Kubernetes context needs to be synchronized"
	MsgApplyingTemplate = "Applying the configuration change to the VM"
	// MsgNotReachedPrefix + "Started"/"Stopped"/"Created" is Settled's message
	// for a forwarded VM reason without a failure message.
	MsgNotReachedPrefix = "LimaVM has not yet reached "
	// MsgEngineNotReady / MsgKubeNotReady stand in when a forwarded engine or
	// Kubernetes reason comes with an empty message.
	MsgEngineNotReady = "Container engine is not ready"
	MsgKubeNotReady   = "Kubernetes is not ready"
)

// VMNoun names the vm machine of driver in condition messages: "Lima
// instance" for lima and for a log that does not record its driver (the
// reference's texts), "Host engine" for host, and "VM" for any other.
func VMNoun(driver string) string {
	switch driver {
	case "", "lima":
		return "Lima instance"
	case "host":
		return "Host engine"
	}
	return "VM"
}

// vmTexts are the vm machine's default messages for one noun.
type vmTexts struct {
	noun                                                    string
	created, starting, started, stopped, stopping, deleting string
}

func newVMTexts(noun string) *vmTexts {
	return &vmTexts{
		noun:     noun,
		created:  noun + " created successfully",
		starting: noun + " is starting",
		started:  noun + " is running",
		stopped:  noun + " is stopped",
		stopping: noun + " is stopping",
		deleting: noun + " is being deleted",
	}
}

// Built once: the texts are read on every derivation.
var (
	limaVMTexts  = newVMTexts(VMNoun("lima"))
	hostVMTexts  = newVMTexts(VMNoun("host"))
	otherVMTexts = newVMTexts(VMNoun("other"))
)

func vmTextsFor(driver string) *vmTexts {
	switch VMNoun(driver) {
	case limaVMTexts.noun:
		return limaVMTexts
	case hostVMTexts.noun:
		return hostVMTexts
	}
	return otherVMTexts
}

// truncatedSuffix ends a message cut at MaxMessageRunes.
const truncatedSuffix = "… (truncated)"

// TruncateMessage limits m to MaxMessageRunes runes; a longer message is cut
// and ends in "… (truncated)", the whole staying within the limit.
func TruncateMessage(m string) string {
	if len(m) <= MaxMessageRunes || utf8.RuneCountInString(m) <= MaxMessageRunes {
		return m
	}
	keep := MaxMessageRunes - utf8.RuneCountInString(truncatedSuffix)
	i := 0
	for n := 0; n < keep; n++ {
		_, size := utf8.DecodeRuneInString(m[i:])
		i += size
	}
	return m[:i] + truncatedSuffix
}

// Condition slots, in ConditionOrder.
const (
	slotCreated = iota
	slotRunning
	slotEngine
	slotKube
	slotSettled
	numSlots
)

// Machine slots, in Machines order.
const (
	mVM = iota
	mEngine
	mK3s
	mKubeconfig
	numMachines
)

// want is a derived condition before its timestamps are stamped.
type want struct {
	present bool
	status  ConditionStatus
	reason  string
	message string
	gen     int64
}

func set(status ConditionStatus, reason, message string, gen int64) want {
	return want{present: true, status: status, reason: reason, message: message, gen: gen}
}

// override applies a Transition's non-empty reason and message to w.
func override(w want, ms *MachineStatus) want {
	if ms.Reason != "" {
		w.reason = ms.Reason
	}
	if ms.Message != "" {
		w.message = ms.Message
	}
	return w
}

// deriveVM returns Created and Running from the vm machine, with the
// default messages of texts. prevCreated is the Created condition before
// this event: once Created is True its message is kept, so the vm moving on
// does not rewrite it.
//
// The override of a Transition applies to the condition its target state
// drives: Created for creating/createFailed, Running otherwise, with one
// exception: the transition that completes creation (from absent, creating
// or createFailed into a created state) carries the Created message (e.g.
// "Lima instance exists" for an adopted instance), and Running then shows
// the new state's default.
func deriveVM(ms *MachineStatus, prevCreated *Condition, texts *vmTexts) (created, running want) {
	g := ms.ObservedGeneration
	switch VMState(ms.State) {
	case "", VMAbsent:
		return want{}, want{}
	case VMCreating:
		return override(set(StatusUnknown, ReasonPending, MsgPending, g), ms), want{}
	case VMCreateFailed:
		return override(set(StatusFalse, ReasonCreateFailed, "", g), ms), want{}
	}
	completing := false
	switch VMState(ms.From) {
	case VMAbsent, VMCreating, VMCreateFailed:
		completing = true
	}
	createdMsg := texts.created
	switch {
	case prevCreated.Type != "" && prevCreated.Status == StatusTrue:
		createdMsg = prevCreated.Message
	case completing && ms.Message != "":
		createdMsg = ms.Message
	}
	created = set(StatusTrue, ReasonCreated, createdMsg, g)
	switch VMState(ms.State) {
	case VMStopped:
		running = set(StatusFalse, ReasonStopped, texts.stopped, g)
	case VMStarting:
		running = set(StatusFalse, ReasonStarting, texts.starting, g)
	case VMRunning:
		running = set(StatusTrue, ReasonStarted, texts.started, g)
	case VMStartFailed:
		running = set(StatusFalse, ReasonStartFailed, "", g)
	case VMStopping:
		running = set(StatusFalse, ReasonStopping, texts.stopping, g)
	case VMStopFailed:
		running = set(StatusFalse, ReasonStopFailed, "", g)
	case VMReconciling:
		running = set(StatusUnknown, ReasonReconciling, MsgReconciling, g)
	case VMDeleting:
		running = set(StatusFalse, ReasonDeleting, texts.deleting, g)
	}
	if !completing {
		running = override(running, ms)
	}
	return created, running
}

// deriveEngine returns ContainerEngineReady; absent until the engine machine
// has made a transition or an observation.
func deriveEngine(ms *MachineStatus) want {
	g := ms.ObservedGeneration
	var w want
	switch EngineState(ms.State) {
	case "":
		return want{}
	case EngineStopped:
		w = set(StatusFalse, ReasonStopped, MsgEngineStopped, g)
	case EngineConnecting:
		w = set(StatusFalse, ReasonConnecting, MsgEngineConnecting, g)
	case EngineConnected:
		w = set(StatusTrue, ReasonConnected, MsgEngineConnected, g)
	case EngineConnectFailed:
		w = set(StatusFalse, ReasonConnectFailed, "", g)
	case EngineNotApplicable:
		w = set(StatusTrue, ReasonNotApplicable, MsgEngineNotApplic, g)
	}
	return override(w, ms)
}

// deriveKube returns KubernetesReady from the k3s and kubeconfig machines
// (design.md §3); absent until the k3s machine has moved or observed once.
//
//   - k3s notApplicable / notRunning / probing / waitingForNode map to their
//     reasons, with k3s's observedGeneration;
//   - k3s probing, waitingForNode or ready with kubeconfig mergeFailed →
//     False/MergeFailed "Failed to publish Kubernetes context: <err>";
//   - k3s ready and kubeconfig merged → True/Ready;
//   - k3s ready and kubeconfig not merged yet (absent or removing) →
//     False/Probing "Waiting for the Kubernetes context to be published":
//     the reference merges before it checks nodes, so "healthy, not yet
//     published" is still part of probing, and it is not a failure.
//
// Where the kubeconfig machine decides the result, observedGeneration is
// the lower of the two machines'.
func deriveKube(k3s, kc *MachineStatus) want {
	if k3s.State == "" {
		return want{}
	}
	g := k3s.ObservedGeneration
	both := min(g, kc.ObservedGeneration)
	st := K3sState(k3s.State)
	if KubeconfigState(kc.State) == KubeconfigMergeFailed &&
		(st == K3sProbing || st == K3sWaitingForNode || st == K3sReady) {
		return set(StatusFalse, ReasonMergeFailed, mergeFailedMessage(kc.Message), both)
	}
	switch st {
	case K3sNotApplicable:
		return override(set(StatusFalse, ReasonNotApplicable, MsgKubeNotApplicable, g), k3s)
	case K3sNotRunning:
		return override(set(StatusFalse, ReasonNotRunning, MsgKubeNotRunning, g), k3s)
	case K3sProbing:
		return override(set(StatusFalse, ReasonProbing, MsgKubeProbing, g), k3s)
	case K3sStarting:
		return override(set(StatusFalse, ReasonProbing, MsgKubeStarting, g), k3s)
	case K3sInstallFailed:
		return override(set(StatusFalse, ReasonInstallFailed, MsgKubeInstallFailed, g), k3s)
	case K3sWaitingForNode:
		return override(set(StatusFalse, ReasonWaitingForNode, MsgKubeWaitingNode, g), k3s)
	case K3sReady:
		if KubeconfigState(kc.State) == KubeconfigMerged {
			return override(set(StatusTrue, ReasonReady, MsgKubeReady, both), k3s)
		}
		return set(StatusFalse, ReasonProbing, MsgKubePublishing, both)
	}
	return want{}
}

// mergeFailedMessage is "Failed to publish Kubernetes context: <err>". The
// kubeconfig machine may record the raw error or the whole sentence.
func mergeFailedMessage(m string) string {
	switch {
	case m == "":
		return MsgMergeFailedPref
	case strings.HasPrefix(m, MsgMergeFailedPref):
		return m
	}
	return MsgMergeFailedPref + ": " + m
}

// settledInputs is everything the Settled rule reads.
type settledInputs struct {
	generation int64
	running    bool // spec.running
	k8s        bool // spec.kubernetes.enabled
	// templateUpToDate is false when the vm exists and the template hash it
	// last reported differs from the one the spec (and port) produce.
	templateUpToDate bool
	created          want
	runningCond      want
	engine           want
	kube             want
}

// computeSettled is behavior.md §4 with engineGate = kubeGate = true (a
// single binary always has both managers), §10 F9, and the staleness rule
// for the vm described at rule 4b. The first matching rule wins.
func computeSettled(in settledInputs) want {
	g := in.generation
	no := func(reason, message string) want { return set(StatusFalse, reason, message, g) }
	// 1. The VM has not applied the current template yet.
	if !in.templateUpToDate {
		return no(ReasonApplyingTemplate, MsgApplyingTemplate)
	}
	// F9: a failed create is forwarded instead of waiting forever for a
	// Running condition that cannot appear.
	if c := in.created; c.present && c.status == StatusFalse {
		return no(c.reason, forwardedVMMessage(c, "Created"))
	}
	// 2.
	r := in.runningCond
	if !r.present {
		return no(ReasonWaitingForLimaVM, MsgWaitingForLimaVM)
	}
	// 3. and 4. The VM has not reached the desired power state.
	if in.running && r.status != StatusTrue {
		return no(r.reason, forwardedVMMessage(r, "Started"))
	}
	if !in.running && r.reason != ReasonStopped {
		return no(r.reason, forwardedVMMessage(r, "Stopped"))
	}
	// 4b (F10, F12). Running is in the desired power state, but the vm
	// machine has not evaluated the current generation yet, so the state
	// may answer an older spec (e.g. Started with the previous engine, or
	// Stopped before the template was rewritten). Hold Settled until the vm
	// controller has looked at this generation: it either observes it (no
	// change needed) or starts the restart that ApplyingTemplate describes.
	if r.gen < g {
		return no(ReasonApplyingTemplate, MsgApplyingTemplate)
	}
	// 5. and 7. cannot match: both gates are always active.
	e := in.engine
	// 6. Stop path: only a terminal engine reason at this generation counts;
	// a fresh Connected stamped while the VM was still up cannot finish a
	// stop. Kubernetes never gates a stop.
	if !in.running {
		if e.present && e.gen >= g && (e.reason == ReasonStopped || e.reason == ReasonNotApplicable) {
			return set(StatusTrue, ReasonSettled, MsgSettled, g)
		}
		return no(ReasonEngineStale, MsgEngineStale)
	}
	// 8.–10.
	switch {
	case !e.present:
		return no(ReasonWaitingForEngine, MsgWaitingForEngine)
	case e.gen < g:
		return no(ReasonEngineStale, MsgEngineStale)
	case e.status != StatusTrue:
		return no(e.reason, orDefault(e.message, MsgEngineNotReady))
	}
	// 11.–13. Only when Kubernetes is enabled. When it was just disabled,
	// the kube condition must have seen this generation: a disable returns
	// only once Kubernetes is wound down (scenario 49: NotApplicable, the
	// context removed), though its status False does not hold Settled.
	if !in.k8s && in.kube.present && in.kube.gen < g {
		return no(ReasonKubernetesStale, MsgKubeStale)
	}
	if in.k8s {
		k := in.kube
		switch {
		case !k.present:
			return no(ReasonWaitingForKubernetes, MsgWaitingForKube)
		case k.gen < g:
			return no(ReasonKubernetesStale, MsgKubeStale)
		case k.status != StatusTrue:
			return no(k.reason, orDefault(k.message, MsgKubeNotReady))
		}
	}
	// 14.
	return set(StatusTrue, ReasonSettled, MsgSettled, g)
}

// forwardedVMMessage is Settled's message for a forwarded VM reason: the
// VM's message for a failure reason, else "LimaVM has not yet reached X".
func forwardedVMMessage(c want, target string) string {
	if strings.HasSuffix(c.reason, "Failed") && c.message != "" {
		return c.message
	}
	return MsgNotReachedPrefix + target
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
