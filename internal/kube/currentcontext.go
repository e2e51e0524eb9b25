package kube

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// SwitchReason says why DecideCurrentContext switches or keeps the user's
// current-context. Values are stable: they may be recorded in events.
type SwitchReason string

// Reasons to switch current-context to N.
const (
	ReasonEmpty          SwitchReason = "Empty"          // current-context is ""
	ReasonDefault        SwitchReason = "Default"        // current-context is "default"
	ReasonMissingContext SwitchReason = "MissingContext" // it names no context
	ReasonMissingCluster SwitchReason = "MissingCluster" // its context names no cluster
	ReasonUnreachable    SwitchReason = "Unreachable"    // its server failed at the transport level
)

// Reasons to keep current-context.
const (
	ReasonAlreadySelected SwitchReason = "AlreadySelected" // it is N already
	ReasonAlive           SwitchReason = "Alive"           // its server gave an HTTP answer, any status
	ReasonAuthPlugin      SwitchReason = "AuthPlugin"      // exec/auth-provider user: not probed, counted alive (F3)
	ReasonUnknown         SwitchReason = "Unknown"         // rdd could not evaluate it (bad TLS files, ...): counted alive
)

// ContextDecision is the outcome of DecideCurrentContext.
type ContextDecision struct {
	// Current is the current-context that was evaluated.
	Current string
	// Switch is true when current-context should become N.
	Switch bool
	Reason SwitchReason
	// Detail is the transport or evaluation error behind Reason, if any.
	Detail string
}

// DecideCurrentContext applies the current-context policy (§8.3 step 6 with F3)
// to cfg, the user's merged kubeconfig (file references absolute): switch to
// name only when current-context is empty, "default", names a missing context
// or cluster, or its server fails at the transport level. It probes the server
// with GET /healthz under timeout (0 means DefaultProbeTimeout); any HTTP
// answer, 401 and 403 included, means alive. The only error is ctx's, when
// the caller cancels: then nothing should be switched.
func DecideCurrentContext(ctx context.Context, cfg *clientcmdapi.Config, name string, timeout time.Duration) (ContextDecision, error) {
	d := ContextDecision{Current: cfg.CurrentContext}
	switch cur := cfg.CurrentContext; {
	case cur == name:
		d.Reason = ReasonAlreadySelected
		return d, nil
	case cur == "":
		d.Switch, d.Reason = true, ReasonEmpty
		return d, nil
	case cur == k3sEntryName:
		d.Switch, d.Reason = true, ReasonDefault
		return d, nil
	}
	kctx := cfg.Contexts[cfg.CurrentContext]
	if kctx == nil {
		d.Switch, d.Reason = true, ReasonMissingContext
		return d, nil
	}
	cluster := cfg.Clusters[kctx.Cluster]
	if cluster == nil {
		d.Switch, d.Reason = true, ReasonMissingCluster
		return d, nil
	}
	if u := cfg.AuthInfos[kctx.AuthInfo]; u != nil && (u.Exec != nil || u.AuthProvider != nil) {
		// Running a credential plugin could prompt, cost money or be slow;
		// a context that needs one is a cloud cluster we must not hijack.
		d.Reason = ReasonAuthPlugin
		return d, nil
	}
	ep, err := endpointFor(kctx.Cluster, cluster, kctx.AuthInfo, cfg.AuthInfos[kctx.AuthInfo])
	if err != nil {
		d.Reason, d.Detail = ReasonUnknown, err.Error()
		return d, nil
	}
	hc, u, err := healthzClient(ep)
	if err != nil {
		d.Reason, d.Detail = ReasonUnknown, err.Error()
		return d, nil
	}
	res := get(ctx, hc, u, timeout)
	if res.StatusCode != 0 { // any HTTP answer
		d.Reason = ReasonAlive
		return d, nil
	}
	if ctx.Err() != nil {
		return d, ctx.Err()
	}
	d.Switch, d.Reason, d.Detail = true, ReasonUnreachable, res.Err.Error()
	return d, nil
}

// SwitchCurrentContext loads the user's kubeconfig files, decides with
// DecideCurrentContext, and when it says so sets current-context to p.Name in
// the file kubectl would write it to (the first existing listed file, else
// the first listed file). The probe runs without the lock; the write re-reads
// the file under the lock and gives up, keeping the user's choice, if
// current-context changed meanwhile. Call it at most once per Ready
// transition (F2). Changed reports whether a file was written.
func SwitchCurrentContext(ctx context.Context, p Publication, timeout time.Duration) (d ContextDecision, changed bool, err error) {
	if err := p.validate(); err != nil {
		return d, false, err
	}
	files, err := p.Target.Files()
	if err != nil {
		return d, false, err
	}
	loaded := make([]loadedFile, 0, len(files))
	for _, f := range files {
		lf, err := readKubeconfig(f)
		if err != nil {
			return d, false, err
		}
		loaded = append(loaded, lf)
	}
	merged, err := mergeView(loaded)
	if err != nil {
		return d, false, err
	}
	d, err = DecideCurrentContext(ctx, merged, p.Name, timeout)
	if err != nil || !d.Switch {
		return d, false, err
	}
	dest := loaded[0]
	for _, lf := range loaded {
		if lf.Exists {
			dest = lf
			break
		}
	}
	before := dest.Config.CurrentContext
	changed, err = editFile(ctx, &dest, p.LockWait, true, func(cfg *clientcmdapi.Config) bool {
		if cfg.CurrentContext != before || cfg.CurrentContext == p.Name {
			return false
		}
		cfg.CurrentContext = p.Name
		return true
	})
	return d, changed, err
}

// mergeView merges kubeconfig files the way kubectl reads a KUBECONFIG list:
// the first file to define a map key or a non-empty current-context wins, and
// file references are made absolute against the file that holds them.
func mergeView(files []loadedFile) (*clientcmdapi.Config, error) {
	out := clientcmdapi.NewConfig()
	for _, lf := range files {
		if !lf.Exists {
			continue
		}
		cfg := lf.Config.DeepCopy()
		abs, err := filepath.Abs(lf.Path)
		if err != nil {
			return nil, &FileError{Op: OpRead, Path: lf.Path, Err: err}
		}
		for _, c := range cfg.Clusters {
			c.LocationOfOrigin = abs
		}
		for _, u := range cfg.AuthInfos {
			u.LocationOfOrigin = abs
		}
		if err := resolveLocalPaths(cfg); err != nil {
			return nil, &ParseError{Path: lf.Path, Err: fmt.Errorf("resolve file references: %w", err)}
		}
		if out.CurrentContext == "" {
			out.CurrentContext = cfg.CurrentContext
		}
		for k, v := range cfg.Clusters {
			if out.Clusters[k] == nil {
				out.Clusters[k] = v
			}
		}
		for k, v := range cfg.AuthInfos {
			if out.AuthInfos[k] == nil {
				out.AuthInfos[k] = v
			}
		}
		for k, v := range cfg.Contexts {
			if out.Contexts[k] == nil {
				out.Contexts[k] = v
			}
		}
	}
	return out, nil
}
