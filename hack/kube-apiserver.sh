#!/usr/bin/env bash
# Builds kube-apiserver (k8s.io/kubernetes v1.34.2) from the nested module
# tools/kube-apiserver into <repo>/.cache/kube-apiserver/<version>/kube-apiserver
# and prints that path on stdout. Idempotent: an existing binary is reused, so
# a warm call costs nothing; a cold build takes about 10 minutes on 2 cores.
#
# Why a script and not `go install`: the binary must land in a known, git-ignored
# place that internal/kube/kubetest finds without network or GOPATH assumptions,
# and concurrent callers (parallel test packages, `make test`) must not build it
# twice, so the build runs under flock(1) and is renamed into place atomically.
set -euo pipefail

version=v1.34.2
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
outdir="$root/.cache/kube-apiserver/$version"
out="$outdir/kube-apiserver"

# A binary counts only if it reports the pinned version (an unstamped build
# from an older version of this script says v0.0.0-master and is rebuilt).
have_binary() {
	[[ -x "$out" ]] && [[ "$("$out" --version 2>/dev/null)" == "Kubernetes $version" ]]
}

if have_binary; then
	echo "$out"
	exit 0
fi

mkdir -p "$outdir"
exec 9>"$outdir/.build.lock"
if ! flock -w 1800 9; then
	echo "kube-apiserver.sh: timed out after 30m waiting for $outdir/.build.lock (another build running?)" >&2
	exit 1
fi
# Another caller may have finished the build while we waited for the lock.
if have_binary; then
	echo "$out"
	exit 0
fi

echo "kube-apiserver.sh: building kube-apiserver $version into $out (cold build ~10 min)" >&2
tmp="$outdir/.kube-apiserver.tmp.$$"
trap 'rm -f "$tmp"' EXIT
(
	cd "$root/tools/kube-apiserver"
	# GOWORK=off: a go.work elsewhere must not pull this module into another build.
	# The -X stamps make /version report $version instead of v0.0.0-master.
	ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$version"
	ldflags+=" -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=34"
	ldflags+=" -X k8s.io/component-base/version.gitTreeState=clean"
	GOWORK=off CGO_ENABLED=0 go build -trimpath -ldflags="$ldflags" -o "$tmp" k8s.io/kubernetes/cmd/kube-apiserver
)
mv -f "$tmp" "$out"
echo "$out"
