package kubetest

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// CreateNode creates Node name and sets its Ready condition to ready through
// the status subresource, as a kubelet would (there is none here).
func (s *Server) CreateNode(ctx context.Context, name string, ready corev1.ConditionStatus) error {
	c, err := s.Client()
	if err != nil {
		return err
	}
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if _, err := c.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("kubetest: create node %s: %w", name, err)
	}
	return s.SetNodeReady(ctx, name, ready)
}

// SetNodeReady sets the Ready condition of Node name through the status
// subresource (a plain update would drop status changes).
func (s *Server) SetNodeReady(ctx context.Context, name string, ready corev1.ConditionStatus) error {
	c, err := s.Client()
	if err != nil {
		return err
	}
	node, err := c.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("kubetest: get node %s: %w", name, err)
	}
	now := metav1.Now()
	cond := corev1.NodeCondition{
		Type: corev1.NodeReady, Status: ready, Reason: "KubetestSet",
		LastHeartbeatTime: now, LastTransitionTime: now,
	}
	replaced := false
	for i := range node.Status.Conditions {
		if node.Status.Conditions[i].Type == corev1.NodeReady {
			node.Status.Conditions[i] = cond
			replaced = true
		}
	}
	if !replaced {
		node.Status.Conditions = append(node.Status.Conditions, cond)
	}
	if _, err := c.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("kubetest: set node %s Ready=%s: %w", name, ready, err)
	}
	return nil
}

// DeleteAllNodes removes every Node, so tests sharing a server start clean.
func (s *Server) DeleteAllNodes(ctx context.Context) error {
	c, err := s.Client()
	if err != nil {
		return err
	}
	if err := c.CoreV1().Nodes().DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil {
		return fmt.Errorf("kubetest: delete nodes: %w", err)
	}
	return nil
}
