package events

import "testing"

// TestComputeSettled is the reference's Settled decision table (22 cases,
// ported from its app controller test; the engine gate is always active in a
// single binary, so its "engine disabled" case becomes WaitingForEngine),
// every rule of behavior.md §4 and its "consequences that MUST hold", F9,
// and rdd's extensions (ApplyingTemplate via the vm's generation, containerd,
// the stop path, Kubernetes forwarding).
func TestComputeSettled(t *testing.T) {
	t.Parallel()
	const gen = 2 // stale generations have room below
	c := func(status ConditionStatus, reason, message string, g int64) want {
		return want{present: true, status: status, reason: reason, message: message, gen: g}
	}
	T, F, U := StatusTrue, StatusFalse, StatusUnknown
	created := c(T, ReasonCreated, MsgCreated, gen)
	started := c(T, ReasonStarted, MsgStarted, gen)
	stopped := c(F, ReasonStopped, MsgStopped, gen)
	connected := c(T, ReasonConnected, MsgEngineConnected, gen)
	engStopped := c(F, ReasonStopped, MsgEngineStopped, gen)
	kubeReady := c(T, ReasonReady, MsgKubeReady, gen)
	notReached := func(target string) string { return MsgNotReachedPrefix + target }

	tests := []struct {
		name           string
		running, k8s   bool
		staleTemplate  bool
		cr, run, e, k  want
		status         ConditionStatus
		reason, messag string
	}{
		// --- the reference table ---
		{name: "ref: no Running condition yet", running: true, cr: created,
			status: F, reason: ReasonWaitingForLimaVM, messag: MsgWaitingForLimaVM},
		{name: "ref: in-progress Starting holds Settled false", running: true, cr: created, run: c(F, ReasonStarting, "", gen),
			status: F, reason: ReasonStarting, messag: notReached("Started")},
		{name: "ref: StartFailed surfaces LimaVM message", running: true, cr: created, run: c(F, "ExplosionFailed", "the virtual machine did not explode", gen),
			status: F, reason: "ExplosionFailed", messag: "the virtual machine did not explode"},
		{name: "ref: StartFailed with empty message falls back to generic text", running: true, cr: created, run: c(F, "ExplosionFailed", "", gen),
			status: F, reason: "ExplosionFailed", messag: notReached("Started")},
		{name: "ref: engine disabled short-circuit is unreachable (gate always on)", running: true, cr: created, run: started,
			status: F, reason: ReasonWaitingForEngine, messag: MsgWaitingForEngine},
		{name: "ref: engine ready at current generation settles", running: true, cr: created, run: started, e: connected,
			status: T, reason: ReasonSettled, messag: MsgSettled},
		{name: "ref: engine enabled but condition missing", running: true, cr: created, run: started,
			status: F, reason: ReasonWaitingForEngine, messag: MsgWaitingForEngine},
		{name: "ref: engine ready at older generation is stale", running: true, cr: created, run: started, e: c(T, ReasonConnected, "", 1),
			status: F, reason: ReasonEngineStale, messag: MsgEngineStale},
		{name: "ref: engine not ready surfaces its reason and message", running: true, cr: created, run: started, e: c(F, "DilithiumOffline", "warp core is offline", gen),
			status: F, reason: "DilithiumOffline", messag: "warp core is offline"},
		{name: "ref: desired stopped + Stopped settles when engine is current", cr: created, run: stopped, e: engStopped,
			status: T, reason: ReasonSettled, messag: MsgSettled},
		{name: "ref: desired stopped + NotApplicable settles (containerd)", cr: created, run: stopped, e: c(T, ReasonNotApplicable, MsgEngineNotApplic, gen),
			status: T, reason: ReasonSettled, messag: MsgSettled},
		{name: "ref: desired stopped but engine still Connected at current generation", cr: created, run: stopped, e: connected,
			status: F, reason: ReasonEngineStale, messag: MsgEngineStale},
		{name: "ref: desired stopped + Stopped waits when engine is absent", cr: created, run: stopped,
			status: F, reason: ReasonEngineStale, messag: MsgEngineStale},
		{name: "ref: desired stopped + Stopped waits when engine is stale", cr: created, run: stopped, e: c(T, ReasonConnected, "", 1),
			status: F, reason: ReasonEngineStale, messag: MsgEngineStale},
		{name: "ref: desired stopped but Stopping holds Settled false", cr: created, run: c(F, ReasonStopping, "", gen),
			status: F, reason: ReasonStopping, messag: notReached("Stopped")},
		{name: "ref: StopFailed surfaces LimaVM message", cr: created, run: c(F, "ImplosionFailed", "the virtual machine did not implode", gen),
			status: F, reason: "ImplosionFailed", messag: "the virtual machine did not implode"},
		{name: "ref: kubernetes disabled does not gate Settled", running: true, cr: created, run: started, e: connected,
			status: T, reason: ReasonSettled, messag: MsgSettled},
		{name: "ref: kubernetes enabled but condition missing", running: true, k8s: true, cr: created, run: started, e: connected,
			status: F, reason: ReasonWaitingForKubernetes, messag: MsgWaitingForKube},
		{name: "ref: kubernetes ready at stale generation", running: true, k8s: true, cr: created, run: started, e: connected, k: c(T, ReasonReady, "ready", 1),
			status: F, reason: ReasonKubernetesStale, messag: MsgKubeStale},
		{name: "ref: kubernetes not ready surfaces its reason", running: true, k8s: true, cr: created, run: started, e: connected, k: c(F, ReasonProbing, "waiting", gen),
			status: F, reason: ReasonProbing, messag: "waiting"},
		{name: "ref: all conditions ready with kubernetes settles", running: true, k8s: true, cr: created, run: started, e: connected, k: kubeReady,
			status: T, reason: ReasonSettled, messag: MsgSettled},
		{name: "ref: stale template holds Settled false despite ready conditions", running: true, staleTemplate: true, cr: created, run: started, e: connected,
			status: F, reason: ReasonApplyingTemplate, messag: MsgApplyingTemplate},

		// --- behavior.md §4 rules and consequences not covered above ---
		{name: "rule 1 beats a missing Running", running: true, staleTemplate: true, cr: created,
			status: F, reason: ReasonApplyingTemplate, messag: MsgApplyingTemplate},
		{name: "rule 2 while Created is Pending", running: true, cr: c(U, ReasonPending, MsgPending, gen),
			status: F, reason: ReasonWaitingForLimaVM, messag: MsgWaitingForLimaVM},
		{name: "rule 2 with no VM conditions at all",
			status: F, reason: ReasonWaitingForLimaVM, messag: MsgWaitingForLimaVM},
		{name: "rule 3 Reconciling (Unknown) is forwarded", running: true, cr: created, run: c(U, ReasonReconciling, MsgReconciling, gen),
			status: F, reason: ReasonReconciling, messag: notReached("Started")},
		{name: "rule 3 Stopped while desired running", running: true, cr: created, run: stopped, e: engStopped,
			status: F, reason: ReasonStopped, messag: notReached("Started")},
		{name: "rule 3 beats the stale-vm rule", running: true, cr: created, run: c(F, ReasonStopped, MsgStopped, 1), e: engStopped,
			status: F, reason: ReasonStopped, messag: notReached("Started")},
		{name: "scenario 30: StartFailed with message M", running: true, cr: created, run: c(F, ReasonStartFailed, "hostagent did not create PID file within timeout", gen),
			status: F, reason: ReasonStartFailed, messag: "hostagent did not create PID file within timeout"},
		{name: "scenario 30: StartFailed with empty message", running: true, cr: created, run: c(F, ReasonStartFailed, "", gen),
			status: F, reason: ReasonStartFailed, messag: notReached("Started")},
		{name: "scenario 31 / rule 4: Starting while desired stopped", cr: created, run: c(F, ReasonStarting, MsgStarting, gen),
			status: F, reason: ReasonStarting, messag: notReached("Stopped")},
		{name: "rule 4: Started while desired stopped", cr: created, run: started, e: connected,
			status: F, reason: ReasonStarted, messag: notReached("Stopped")},
		{name: "rule 4: StopFailed with empty message", cr: created, run: c(F, ReasonStopFailed, "", gen),
			status: F, reason: ReasonStopFailed, messag: notReached("Stopped")},
		{name: "rule 4: a non-failure message is not forwarded", cr: created, run: c(F, ReasonStopping, MsgStopping, gen),
			status: F, reason: ReasonStopping, messag: notReached("Stopped")},
		{name: "rule 7: Kubernetes never gates a stop", k8s: true, cr: created, run: stopped, e: engStopped, k: c(F, ReasonProbing, MsgKubeProbing, gen),
			status: T, reason: ReasonSettled, messag: MsgSettled},
		{name: "rule 10: ConnectFailed with its error", running: true, cr: created, run: started, e: c(F, ReasonConnectFailed, "failed to ping Docker: EOF", gen),
			status: F, reason: ReasonConnectFailed, messag: "failed to ping Docker: EOF"},
		{name: "rule 10: forwarded engine reason without message", running: true, cr: created, run: started, e: c(F, ReasonConnectFailed, "", gen),
			status: F, reason: ReasonConnectFailed, messag: MsgEngineNotReady},
		{name: "rule 10: engine Stopped at current generation while running", running: true, cr: created, run: started, e: engStopped,
			status: F, reason: ReasonStopped, messag: MsgEngineStopped},
		{name: "rule 13: WaitingForNode forwarded", running: true, k8s: true, cr: created, run: started, e: connected, k: c(F, ReasonWaitingForNode, MsgKubeWaitingNode, gen),
			status: F, reason: ReasonWaitingForNode, messag: MsgKubeWaitingNode},
		{name: "rule 13: forwarded kube reason without message", running: true, k8s: true, cr: created, run: started, e: connected, k: c(F, ReasonProbing, "", gen),
			status: F, reason: ReasonProbing, messag: MsgKubeNotReady},

		// --- F9: CreateFailed is forwarded ---
		{name: "F9: CreateFailed forwarded with its message", running: true, cr: c(F, ReasonCreateFailed, `download "https://example.invalid/img.raw.xz": no such host`, gen),
			status: F, reason: ReasonCreateFailed, messag: `download "https://example.invalid/img.raw.xz": no such host`},
		{name: "F9: CreateFailed without message", cr: c(F, ReasonCreateFailed, "", gen),
			status: F, reason: ReasonCreateFailed, messag: notReached("Created")},

		// --- extensions ---
		{name: "stale vm generation: Started answers an older spec", running: true, cr: created, run: c(T, ReasonStarted, MsgStarted, 1), e: connected,
			status: F, reason: ReasonApplyingTemplate, messag: MsgApplyingTemplate},
		{name: "stale vm generation on the stop path", cr: created, run: c(F, ReasonStopped, MsgStopped, 1), e: engStopped,
			status: F, reason: ReasonApplyingTemplate, messag: MsgApplyingTemplate},
		{name: "containerd: NotApplicable lets a running App settle", running: true, cr: created, run: started, e: c(T, ReasonNotApplicable, MsgEngineNotApplic, gen),
			status: T, reason: ReasonSettled, messag: MsgSettled},
		{name: "stop path: a fresh Connected cannot finish a stop", cr: created, run: stopped, e: c(T, ReasonConnected, MsgEngineConnected, gen),
			status: F, reason: ReasonEngineStale, messag: MsgEngineStale},
		{name: "stop path: ConnectFailed at current generation is not terminal", cr: created, run: stopped, e: c(F, ReasonConnectFailed, "boom", gen),
			status: F, reason: ReasonEngineStale, messag: MsgEngineStale},
		{name: "MergeFailed forwarded", running: true, k8s: true, cr: created, run: started, e: connected,
			k:      c(F, ReasonMergeFailed, "Failed to publish Kubernetes context: mkdir /home/u/.kube: not a directory", gen),
			status: F, reason: ReasonMergeFailed, messag: "Failed to publish Kubernetes context: mkdir /home/u/.kube: not a directory"},
		{name: "Kubernetes disabled: Settled despite KubernetesReady False", running: true, cr: created, run: started, e: connected, k: c(F, ReasonNotApplicable, MsgKubeNotApplicable, gen),
			status: T, reason: ReasonSettled, messag: MsgSettled},
		// Scenario 49: a disable returns only once Kubernetes is wound down
		// at this generation (a deliberate addition to §4's rules).
		{name: "Kubernetes just disabled: waits for KubernetesReady to see the generation", running: true, cr: created, run: started, e: connected, k: c(T, ReasonReady, MsgKubeReady, 1),
			status: F, reason: ReasonKubernetesStale, messag: MsgKubeStale},
		{name: "Kubernetes disabled and stopped: a stale KubernetesReady does not hold a stop", running: false, cr: created, run: c(F, ReasonStopped, "", gen), e: c(F, ReasonStopped, "", gen), k: c(T, ReasonReady, MsgKubeReady, 1),
			status: T, reason: ReasonSettled, messag: MsgSettled},
		{name: "Deleting is forwarded", running: true, cr: created, run: c(F, ReasonDeleting, MsgDeleting, gen),
			status: F, reason: ReasonDeleting, messag: notReached("Started")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := computeSettled(settledInputs{
				generation: gen, running: tt.running, k8s: tt.k8s, templateUpToDate: !tt.staleTemplate,
				created: tt.cr, runningCond: tt.run, engine: tt.e, kube: tt.k,
			})
			if !got.present || got.status != tt.status || got.reason != tt.reason || got.message != tt.messag {
				t.Errorf("Settled = %s/%s %q\n     want %s/%s %q", got.status, got.reason, got.message, tt.status, tt.reason, tt.messag)
			}
			if got.gen != gen {
				t.Errorf("Settled observedGeneration = %d, want %d", got.gen, gen)
			}
		})
	}
}
