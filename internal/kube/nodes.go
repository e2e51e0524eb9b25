package kube

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// DefaultNodeListTimeout bounds AnyNodeReady (§8.1 step 5).
const DefaultNodeListTimeout = 3 * time.Second

// nodeListPage is the page size of the node list; a developer cluster has one
// node, so one page is the norm.
const nodeListPage = 100

// nodeList is the part of a core/v1 NodeList the node gate reads. Decoding it
// with encoding/json instead of k8s.io/api/core/v1 keeps that package, and its
// 0.5 ms of init, out of every rdd command.
type nodeList struct {
	Metadata struct {
		Continue string `json:"continue"`
	} `json:"metadata"`
	Items []node `json:"items"`
}

type node struct {
	Status struct {
		Conditions []struct {
			Type   string `json:"type"`
			Status string `json:"status"`
		} `json:"conditions"`
	} `json:"status"`
}

// AnyNodeReady lists the cluster's nodes and reports whether at least one has
// condition Ready=True; NotReady siblings do not matter (§8.1 step 5). timeout
// 0 means DefaultNodeListTimeout. An error means the list failed, not that no
// node is ready.
func AnyNodeReady(ctx context.Context, ep *Endpoint, timeout time.Duration) (bool, error) {
	if timeout <= 0 {
		timeout = DefaultNodeListTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	hc, _, err := ep.oneShotClient()
	if err != nil {
		return false, err
	}
	base, err := ep.resourceURL("api/v1/nodes")
	if err != nil {
		return false, err
	}
	cont := ""
	for {
		u := *base
		q := url.Values{"limit": {strconv.Itoa(nodeListPage)}}
		if cont != "" {
			q.Set("continue", cont)
		}
		u.RawQuery = q.Encode()
		list, err := getNodes(ctx, hc, &u)
		if err != nil {
			return false, fmt.Errorf("list nodes at %s: %w", ep.Host, err)
		}
		for i := range list.Items {
			if nodeReady(&list.Items[i]) {
				return true, nil
			}
		}
		cont = list.Metadata.Continue
		if cont == "" {
			return false, nil
		}
	}
}

func getNodes(ctx context.Context, hc *http.Client, u *url.URL) (*nodeList, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, fmt.Errorf("GET %s: HTTP %s: %s", u.Redacted(), resp.Status, body)
	}
	var list nodeList
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		return nil, fmt.Errorf("decode the node list: %w", err)
	}
	return &list, nil
}

func nodeReady(n *node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == "Ready" {
			return c.Status == "True"
		}
	}
	return false
}
