package events

import (
	"fmt"
	"strings"
)

// ReasonDoc documents one reason of one condition: the reference table in
// docs/conditions.md is rendered from ReasonCatalog, and a test fails when
// a Reason constant is missing here or the document is stale.
type ReasonDoc struct {
	Condition ConditionType
	Status    ConditionStatus
	Reason    string
	// When says what makes the condition take this reason.
	When string
	// Message is the default message, or where the message comes from.
	Message string
}

// ReasonCatalog lists every condition reason, in the order of ConditionOrder.
var ReasonCatalog = []ReasonDoc{
	{CondCreated, StatusUnknown, ReasonPending, "the App exists and the vm machine has not been created yet", MsgPending},
	{CondCreated, StatusTrue, ReasonCreated, "the machine exists (created, or adopted when it already existed)", MsgCreated + ` ("Host engine …" on the host driver)`},
	{CondCreated, StatusFalse, ReasonCreateFailed, "creating the machine failed; retried with backoff (Settled forwards it, F9)", "the driver's error"},
	{CondRunning, StatusUnknown, ReasonReconciling, "a restarted daemon re-observes a machine whose state was in flight", MsgReconciling},
	{CondRunning, StatusFalse, ReasonStarting, "the machine is starting (first start, restart after a crash or for a configuration change)", MsgStarting},
	{CondRunning, StatusTrue, ReasonStarted, "the engine process runs (started or re-adopted)", MsgStarted},
	{CondRunning, StatusFalse, ReasonStopped, "the machine is stopped", MsgStopped},
	{CondRunning, StatusFalse, ReasonStartFailed, "a start failed; retried with backoff", "the driver's error"},
	{CondRunning, StatusFalse, ReasonStopping, "the machine is stopping", MsgStopping},
	{CondRunning, StatusFalse, ReasonStopFailed, "a stop failed; retried with backoff", "the driver's error"},
	{CondRunning, StatusFalse, ReasonDeleting, "the App was deleted and its machine is being removed", MsgDeleting},
	{CondContainerEngineReady, StatusFalse, ReasonStopped, "the machine does not run, or the App is stopped", MsgEngineStopped},
	{CondContainerEngineReady, StatusFalse, ReasonConnecting, "the Docker watcher connects and syncs its inventory", MsgEngineConnecting},
	{CondContainerEngineReady, StatusTrue, ReasonConnected, "the Docker watcher is in sync with dockerd", MsgEngineConnected},
	{CondContainerEngineReady, StatusFalse, ReasonConnectFailed, "the Docker socket does not answer; the watcher retries", "the connection error"},
	{CondContainerEngineReady, StatusTrue, ReasonNotApplicable, "the engine is containerd, which rdd does not mirror", MsgEngineNotApplic},
	{CondKubernetesReady, StatusFalse, ReasonNotApplicable, "kubernetes.enabled is false", MsgKubeNotApplicable},
	{CondKubernetesReady, StatusFalse, ReasonNotRunning, "the machine does not run", MsgKubeNotRunning},
	{CondKubernetesReady, StatusFalse, ReasonProbing, "k3s is starting (download progress, restarts), or its API server does not answer /healthz yet (the probe class and error are in the message)", MsgKubeProbing + "; " + MsgKubeStarting + " while rdd starts k3s"},
	{CondKubernetesReady, StatusFalse, ReasonInstallFailed, "the k3s binary could not be found or downloaded (RDD_K3S_BIN, PATH, cache, RDD_K3S_MIRROR); retried with backoff", "the error, naming the URL tried and both variables"},
	{CondKubernetesReady, StatusFalse, ReasonWaitingForNode, "the API server answers but no node is Ready yet (first Ready only)", MsgKubeWaitingNode},
	{CondKubernetesReady, StatusFalse, ReasonMergeFailed, "publishing the context into the user's kubeconfig failed; retried every 5 s and when the file changes", MsgMergeFailedPref + ": <error naming the file>"},
	{CondKubernetesReady, StatusTrue, ReasonReady, "the API server is healthy, a node was Ready and the context is published", MsgKubeReady},
	{CondSettled, StatusTrue, ReasonSettled, "every condition the spec asks for has reached it at the current generation", MsgSettled},
	{CondSettled, StatusFalse, ReasonApplyingTemplate, "the machine has not applied the current configuration yet", MsgApplyingTemplate},
	{CondSettled, StatusFalse, ReasonWaitingForLimaVM, "no Running condition yet", MsgWaitingForLimaVM},
	{CondSettled, StatusFalse, ReasonWaitingForEngine, "no ContainerEngineReady condition yet", MsgWaitingForEngine},
	{CondSettled, StatusFalse, ReasonEngineStale, "ContainerEngineReady has not seen the current generation", MsgEngineStale},
	{CondSettled, StatusFalse, ReasonWaitingForKubernetes, "Kubernetes is enabled and KubernetesReady is absent", MsgWaitingForKube},
	{CondSettled, StatusFalse, ReasonKubernetesStale, "KubernetesReady has not seen the current generation (also right after a disable)", MsgKubeStale},
}

// RenderReasonCatalog renders docs/conditions.md.
func RenderReasonCatalog() string {
	var b strings.Builder
	b.WriteString("# Conditions and reasons\n\n")
	b.WriteString("Generated from `internal/events/catalog.go` (`go test ./internal/events -run ConditionsDoc -update-docs`);\n")
	b.WriteString("a test fails when a reason constant is missing or this file is stale. The contract is\n")
	b.WriteString("`../shared/spec/behavior.md` §3–4; Settled also forwards the blocking reason of Running,\n")
	b.WriteString("ContainerEngineReady or KubernetesReady (§4).\n")
	var cur ConditionType
	for _, d := range ReasonCatalog {
		if d.Condition != cur {
			cur = d.Condition
			fmt.Fprintf(&b, "\n## %s\n\n| reason | status | when | message |\n|---|---|---|---|\n", cur)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", d.Reason, d.Status, d.When, d.Message)
	}
	return b.String()
}
