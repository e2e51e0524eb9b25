package main

import (
	"context"
	"os"
	"runtime"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/rdd-project/rdd/internal/kube/kubetest"
)

// heartbeat is kubelet's default node status update frequency; the stand-in
// refreshes the Ready condition as often, as a kubelet would.
const heartbeat = 10 * time.Second

// retryRegister is the wait before retrying a failed registration; the API
// server just answered /readyz, so failures are transient.
const retryRegister = 500 * time.Millisecond

// nodeSpec is one Node the stand-in keeps.
type nodeSpec struct {
	name   string
	ready  bool
	labels map[string]string
}

// runNodes registers the node (and the optional extra one) and refreshes
// their Ready conditions until ctx ends. There is no kubelet: status goes
// through the status subresource, as kwok does.
func runNodes(ctx context.Context, srv *kubetest.Server, cfg *serverConfig, log *logger) {
	c, err := srv.Client()
	if err != nil {
		log.warn("standin: node client: %v", err)
		return
	}
	nodes := []nodeSpec{{
		name:   cfg.nodeName,
		ready:  !strings.EqualFold(os.Getenv(envNodeReady), "false"),
		labels: nodeLabels(cfg.nodeName, cfg.nodeLabels, true),
	}}
	if extra := os.Getenv(envExtraNode); extra != "" {
		nodes = append(nodes, nodeSpec{name: extra, labels: nodeLabels(extra, nil, false)})
	}
	registered := make([]bool, len(nodes))
	for {
		wait := heartbeat
		for i, n := range nodes {
			if err := syncNode(ctx, c, n); err != nil {
				if ctx.Err() != nil {
					return
				}
				log.warn("standin: node %s: %v", n.name, err)
				wait = retryRegister
				continue
			}
			if !registered[i] {
				registered[i] = true
				log.info("standin: registered node %s (Ready=%v)", n.name, n.ready)
			}
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// nodeLabels are the labels k3s's kubelet and node controller set.
func nodeLabels(name string, extra []string, server bool) map[string]string {
	l := map[string]string{
		"kubernetes.io/hostname":           name,
		"kubernetes.io/os":                 runtime.GOOS,
		"kubernetes.io/arch":               runtime.GOARCH,
		"beta.kubernetes.io/os":            runtime.GOOS,
		"beta.kubernetes.io/arch":          runtime.GOARCH,
		"node.kubernetes.io/instance-type": "k3s",
	}
	if server {
		l["node-role.kubernetes.io/control-plane"] = "true"
		l["node-role.kubernetes.io/master"] = "true"
	}
	for _, kv := range extra {
		k, v, _ := strings.Cut(kv, "=")
		l[k] = v
	}
	return l
}

// syncNode creates the node when missing (a restarted stand-in finds it in
// etcd) and writes its status with a fresh heartbeat.
func syncNode(ctx context.Context, c kubernetes.Interface, n nodeSpec) error {
	node, err := c.CoreV1().Nodes().Get(ctx, n.name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		node, err = c.CoreV1().Nodes().Create(ctx, &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{Name: n.name, Labels: n.labels},
		}, metav1.CreateOptions{})
	}
	if err != nil {
		return err
	}
	now := metav1.Now()
	status, reason, msg := corev1.ConditionTrue, "KubeletReady", "kubelet is posting ready status (k3s stand-in)"
	if !n.ready {
		status, reason, msg = corev1.ConditionFalse, "KubeletNotReady", "container runtime network not ready (k3s stand-in)"
	}
	cond := corev1.NodeCondition{
		Type: corev1.NodeReady, Status: status, Reason: reason, Message: msg,
		LastHeartbeatTime: now, LastTransitionTime: now,
	}
	replaced := false
	for i, old := range node.Status.Conditions {
		if old.Type != corev1.NodeReady {
			continue
		}
		if old.Status == status {
			cond.LastTransitionTime = old.LastTransitionTime
		}
		node.Status.Conditions[i] = cond
		replaced = true
	}
	if !replaced {
		node.Status.Conditions = append(node.Status.Conditions, cond)
	}
	node.Status.Addresses = []corev1.NodeAddress{
		{Type: corev1.NodeInternalIP, Address: "127.0.0.1"},
		{Type: corev1.NodeHostName, Address: n.name},
	}
	node.Status.NodeInfo.KubeletVersion = version
	node.Status.NodeInfo.OperatingSystem = runtime.GOOS
	node.Status.NodeInfo.Architecture = runtime.GOARCH
	_, err = c.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{})
	return err
}
