#!/usr/bin/env bash
# Whole-command figures of the issue's "Measure" list, against a real daemon
# with the host driver in a throwaway HOME: CLI latency (hyperfine medians),
# idle RSS and CPU of the daemon, and daemon stop time. Bounded: every loop
# has a fixed count, and the daemon and its engine are stopped at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-bin/rdd}
[ -x "$BIN" ] || { echo "build first: make build" >&2; exit 1; }
if ! command -v hyperfine >/dev/null; then
	if [ "$(id -u)" -eq 0 ]; then DEBIAN_FRONTEND=noninteractive apt-get install -y -qq hyperfine >/dev/null; else echo "install hyperfine" >&2; exit 1; fi
fi
HOME_DIR=$(mktemp -d /tmp/rdd-bench-XXXX)
export HOME=$HOME_DIR DOCKER_CONFIG=$HOME_DIR/.docker KUBECONFIG=$HOME_DIR/.kube/config RDD_VM_DRIVER=host
cleanup() {
	"$BIN" svc stop --timeout=60s >/dev/null 2>&1 || true
	pkill -KILL -f "$HOME_DIR" 2>/dev/null || true
	grep -o " $HOME_DIR[^ ]*" /proc/self/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
	rm -rf "$HOME_DIR"
}
trap cleanup EXIT

"$BIN" set --wait=false running=false >/dev/null
"$BIN" svc status >/dev/null
PID=$(cat "$HOME_DIR/.local/share/rancher-desktop-2/rdd.pid")

echo "== CLI latency (App stopped; hyperfine, median)"
hyperfine -N --warmup 20 --runs 200 --export-json /tmp/rdd-hf.json \
	"$BIN version" "$BIN status -o json" "$BIN set --wait=false running=false" "$BIN set --wait=false containerEngine.name=moby" 2>/dev/null |
	grep -E "Benchmark|Time" || true
python3 - <<'PY'
import json
for r in json.load(open('/tmp/rdd-hf.json'))['results']:
    t = sorted(r['times'])
    print(f"{r['command']:<55} median {r['median']*1000:7.2f} ms   p99 {t[int(len(t)*0.99)-1]*1000:7.2f} ms")
PY

idle() { # $1 = label
	sleep 2
	local t0 rss0 t1
	t0=$(awk '{print $14+$15}' /proc/$PID/stat)
	sleep 10
	t1=$(awk '{print $14+$15}' /proc/$PID/stat)
	rss0=$(awk '/VmRSS/{print $2}' /proc/$PID/status)
	echo "idle ($1): RSS $((rss0/1024)) MiB, CPU $(python3 -c "print(f'{($t1-$t0)/$(getconf CLK_TCK)/10*100:.2f}')") % of a core over 10 s"
}
echo "== daemon idle"
idle "App stopped"
"$BIN" start --timeout=3m >/dev/null 2>&1
idle "engine running"

echo "== stop of the environment (rdd stop) and of the daemon (svc stop)"
s=$(date +%s%N); "$BIN" stop --timeout=2m >/dev/null 2>&1; e=$(date +%s%N); echo "rdd stop (engine running → Settled stopped): $(( (e-s)/1000000 )) ms"
s=$(date +%s%N); "$BIN" svc stop >/dev/null; e=$(date +%s%N); echo "rdd svc stop (App stopped): $(( (e-s)/1000000 )) ms"
