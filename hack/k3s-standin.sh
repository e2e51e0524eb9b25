#!/usr/bin/env bash
# Builds the stand-in k3s (internal/kube/kubetest/k3sstandin) into
# <repo>/.cache/k3s-standin/k3s and prints that path on stdout. Tests run it
# where rdd would run k3s, which cannot be downloaded here.
#
# Idempotent and cheap when up to date: the binary is rebuilt only when the
# hash of what it is built from (the kubetest sources, go.mod, go.sum, this
# script, the Go version) differs from the one recorded beside it. Concurrent
# callers (parallel test packages) build once, under flock(1).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
outdir="$root/.cache/k3s-standin"
out="$outdir/k3s"
stamp="$outdir/.sources.sha256"
cd "$root"

sources_hash() {
	{
		go env GOVERSION
		find internal/kube/kubetest -name '*.go' ! -name '*_test.go' -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
		sha256sum go.mod go.sum hack/k3s-standin.sh
	} | sha256sum | cut -d' ' -f1
}

want="$(sources_hash)"
up_to_date() {
	[[ -x "$out" ]] && [[ -f "$stamp" ]] && [[ "$(cat "$stamp")" == "$want" ]]
}

if up_to_date; then
	echo "$out"
	exit 0
fi

mkdir -p "$outdir"
exec 9>"$outdir/.build.lock"
if ! flock -w 600 9; then
	echo "k3s-standin.sh: timed out after 10m waiting for $outdir/.build.lock" >&2
	exit 1
fi
# Another caller may have finished the build while we waited for the lock.
if up_to_date; then
	echo "$out"
	exit 0
fi

echo "k3s-standin.sh: building the stand-in k3s into $out" >&2
tmp="$outdir/.k3s.tmp.$$"
trap 'rm -f "$tmp"' EXIT
CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$tmp" ./internal/kube/kubetest/k3sstandin
mv -f "$tmp" "$out"
echo "$want" >"$stamp"
echo "$out"
