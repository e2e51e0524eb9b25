package kube

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/client-go/rest"
)

// DefaultNodeListTimeout bounds AnyNodeReady (§8.1 step 5).
const DefaultNodeListTimeout = 3 * time.Second

// nodeListPage is the page size of the node list; a developer cluster has one
// node, so one page is the norm.
const nodeListPage = 100

// coreCodecs is a codec factory that knows core/v1 only. It is built on first
// use instead of importing client-go's generated clientset, whose scheme
// registers every API group at init.
var coreCodecs = sync.OnceValues(func() (serializer.CodecFactory, error) {
	s := runtime.NewScheme()
	if err := corev1.AddToScheme(s); err != nil {
		return serializer.CodecFactory{}, fmt.Errorf("register core/v1: %w", err)
	}
	return serializer.NewCodecFactory(s), nil
})

// AnyNodeReady lists the cluster's nodes and reports whether at least one has
// condition Ready=True; NotReady siblings do not matter (§8.1 step 5). timeout
// 0 means DefaultNodeListTimeout. An error means the list failed, not that no
// node is ready.
func AnyNodeReady(ctx context.Context, rc *rest.Config, timeout time.Duration) (bool, error) {
	if timeout <= 0 {
		timeout = DefaultNodeListTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	codecs, err := coreCodecs()
	if err != nil {
		return false, err
	}
	cfg := rest.CopyConfig(rc)
	cfg.GroupVersion = &corev1.SchemeGroupVersion
	cfg.APIPath = "/api"
	cfg.NegotiatedSerializer = codecs.WithoutConversion()
	hc, err := oneShotClient(cfg)
	if err != nil {
		return false, err
	}
	client, err := rest.RESTClientForConfigAndClient(cfg, hc)
	if err != nil {
		return false, fmt.Errorf("node list client for %s: %w", rc.Host, err)
	}
	cont := ""
	for {
		var list corev1.NodeList
		req := client.Get().Resource("nodes").Param("limit", strconv.Itoa(nodeListPage))
		if cont != "" {
			req = req.Param("continue", cont)
		}
		if err := req.Do(ctx).Into(&list); err != nil {
			return false, fmt.Errorf("list nodes at %s: %w", rc.Host, err)
		}
		for i := range list.Items {
			if nodeReady(&list.Items[i]) {
				return true, nil
			}
		}
		cont = list.Continue
		if cont == "" {
			return false, nil
		}
	}
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
