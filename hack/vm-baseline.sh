#!/usr/bin/env bash
# vm-baseline.sh boots the guest image of `make vm-image` with plain Lima
# (limactl built from the module this repository requires) and prints the
# timings that `rdd start` with the lima driver is compared against:
#
#   boot to READY   `limactl start` until it returns (host agent READY)
#   docker answered  READY until `docker version` answers over the forwarded
#                    socket {{.Dir}}/sock/docker.sock
#   docker run       `docker run --rm --network none` of an image made with
#                    `docker import` from the host's static busybox (nothing
#                    is pulled); skipped when there is no static busybox
#   guest idle CPU   the qemu process's CPU over RDD_BASELINE_IDLE_S seconds
#   stop, delete     `limactl stop`, `limactl delete`
#
# Lima refuses to run as root: under root the script runs limactl as an
# unprivileged user (RDD_BASELINE_USER, default rddvm, created when missing).
# QEMU runs through hack/qemu-tcg-wrapper.sh (TCG instead of KVM, which does
# not boot stock kernels on this machine; restrict=on on the user network).
#
# The host agent's logs, the serial console and the QEMU command line are kept
# in .cache/vm-baseline/<time>/ (the instance directory goes with delete).
#
# Environment: RDD_BASELINE_TEMPLATE (a lima.yaml to boot instead), RDD_VM_IMAGE_DIR (default <repo>/.cache/vm-image, readable by
# the unprivileged user), RDD_BASELINE_USER, RDD_BASELINE_KEEP=1 (leave the
# instance running), RDD_BASELINE_IDLE_S (default 10; 0 skips),
# RDD_BASELINE_DOCKER_S (deadline for docker to answer, default 300).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
name=base
user=${RDD_BASELINE_USER:-rddvm}
export RDD_VM_IMAGE_DIR=${RDD_VM_IMAGE_DIR:-$repo/.cache/vm-image}
limactl=$repo/.cache/limactl/bin/limactl
share=$repo/.cache/limactl/share/lima
wrapper=$repo/hack/qemu-tcg-wrapper.sh
out=$repo/.cache/vm-baseline/$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$out"

log() { printf 'vm-baseline: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }
now() { date +%s.%N; }
dt() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

# QEMU (the real one; the wrapper execs it).
if ! command -v qemu-system-x86_64 >/dev/null || ! command -v qemu-img >/dev/null; then
	[[ $(id -u) == 0 ]] || die "needs qemu-system-x86_64 and qemu-img: sudo apt-get install qemu-system-x86 qemu-utils"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends qemu-system-x86 qemu-utils >/dev/null
fi

# The guest image (a cache hit after the first build).
img=$("$repo/hack/vm-image.sh" | sed -n 's/^RDD_VM_IMAGE=//p')
[[ -s $img ]] || die "no image from hack/vm-image.sh"
imgdir=$(dirname "$img")

# limactl and the guest agent where limactl looks for it
# (<limactl dir>/../share/lima/lima-guestagent.Linux-x86_64), built from the
# module github.com/lima-vm/lima that go.mod requires. A copy of go.mod/go.sum
# takes the checksums of the extra packages, the repository stays as it is.
build() { # build <output> <package> [GOOS]
	local mod
	mod=$(mktemp -d)
	cp "$repo/go.mod" "$repo/go.sum" "$mod/"
	# pkg/version.Version: without it limactl is "<unknown>" and refuses
	# templates with minimumLimaVersion.
	(cd "$repo" && GOOS=${3:-$(go env GOOS)} GOARCH=amd64 CGO_ENABLED=0 GOFLAGS=-mod=mod \
		go build -modfile="$mod/go.mod" -trimpath \
		-ldflags "-s -w -X github.com/lima-vm/lima/pkg/version.Version=$lima_version" -o "$1" "$2")
	rm -rf "$mod"
}
lima_version=$(cd "$repo" && go list -m -f '{{.Version}}' github.com/lima-vm/lima)
if [[ ! -x $limactl || $("$limactl" --version 2>/dev/null) != *" ${lima_version#v}" ]]; then
	log "building limactl $lima_version"
	build "$limactl" github.com/lima-vm/lima/cmd/limactl
fi
[[ -e $share/lima-guestagent.Linux-x86_64 || -e $share/lima-guestagent.Linux-x86_64.gz ]] ||
	{ log "building lima-guestagent"; build "$share/lima-guestagent.Linux-x86_64" github.com/lima-vm/lima/cmd/lima-guestagent linux; }

# Who runs limactl.
run=()
if [[ $(id -u) == 0 ]]; then
	id "$user" >/dev/null 2>&1 || { log "creating user $user"; useradd -m -s /bin/bash "$user"; }
	home=$(getent passwd "$user" | cut -d: -f6)
	run=(runuser -u "$user" --)
else
	user=$(id -un)
	home=$HOME
fi
lima_home=$home/.rdd-baseline-lima
as_user() {
	"${run[@]}" env HOME="$home" LIMA_HOME="$lima_home" QEMU_SYSTEM_X86_64="$wrapper" \
		QEMU_TCG_WRAPPER_LOG="$lima_home/qemu-cmdline.log" "$@"
}
as_user mkdir -p "$lima_home"
dir=$lima_home/$name
sock=$dir/sock/docker.sock

# The template, with the image's paths; RDD_BASELINE_TEMPLATE boots another
# one instead (e.g. the lima.yaml rdd rendered, for a like-for-like figure;
# its docker socket forward then goes where that template says).
yaml=$lima_home/baseline-lima.yaml
if [[ -n ${RDD_BASELINE_TEMPLATE:-} ]]; then
	as_user tee "$yaml" <"$RDD_BASELINE_TEMPLATE" >/dev/null
	sock=$(sed -n 's/^ *HOST_DOCKER_SOCKET: *"\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' "$yaml" | head -1)
else
	sed -e "s|@IMAGE_DIR@|$imgdir|g" -e "s|@CMDLINE@|$(cat "$imgdir/cmdline")|" "$repo/hack/baseline-lima.yaml" |
		as_user tee "$yaml" >/dev/null
fi

if as_user "$limactl" list -q 2>/dev/null | grep -qx "$name"; then
	log "deleting a leftover instance $name"
	as_user "$limactl" delete -f "$name" >/dev/null
fi

save_logs() {
	cp -f "$dir"/ha.stdout.log "$dir"/ha.stderr.log "$dir"/serial*.log "$out"/ 2>/dev/null || true
	cp -f "$lima_home/qemu-cmdline.log" "$out"/ 2>/dev/null || true
}
cleanup() {
	save_logs
	if [[ ${RDD_BASELINE_KEEP:-} != 1 ]] && as_user "$limactl" list -q 2>/dev/null | grep -qx "$name"; then
		as_user "$limactl" delete -f "$name" >/dev/null 2>&1 || true
	fi
}
trap cleanup EXIT

log "limactl start (image $imgdir, logs in $out)"
t0=$(now)
if ! as_user "$limactl" start --tty=false --name "$name" "$yaml" >"$out/limactl-start.log" 2>&1; then
	tail -30 "$out/limactl-start.log" >&2
	die "limactl start failed; logs in $out"
fi
t1=$(now)
log "READY after $(dt "$t0" "$t1") s"

# docker over the forwarded socket, polled with a deadline.
deadline=$(($(date +%s) + ${RDD_BASELINE_DOCKER_S:-300}))
until docker -H "unix://$sock" version --format '{{.Server.Version}}' >"$out/docker-version.txt" 2>"$out/docker-version.err"; do
	(($(date +%s) < deadline)) || { cat "$out/docker-version.err" >&2; die "docker did not answer on $sock"; }
	sleep 0.5
done
t2=$(now)
log "docker $(cat "$out/docker-version.txt") answered $(dt "$t1" "$t2") s after READY"

trun=
bb=$(command -v busybox || true)
if [[ -n $bb ]] && file -L "$bb" 2>/dev/null | grep -q 'statically linked'; then
	tar -C "$(dirname "$bb")" -cf - "$(basename "$bb")" |
		docker -H "unix://$sock" import --change 'ENTRYPOINT ["/busybox"]' - rdd-baseline-busybox >/dev/null
	t3=$(now)
	msg=$(docker -H "unix://$sock" run --rm --network none rdd-baseline-busybox echo hello-from-guest)
	t4=$(now)
	[[ $msg == hello-from-guest ]] || die "docker run said: $msg"
	trun=$(dt "$t3" "$t4")
	log "docker run --network none: $trun s"
fi

idle=
idle_s=${RDD_BASELINE_IDLE_S:-10}
qpid=$(cat "$dir/qemu.pid" 2>/dev/null || true)
if ((idle_s > 0)) && [[ -n $qpid ]]; then
	tick=$(getconf CLK_TCK)
	c0=$(awk '{ print $14 + $15 }' "/proc/$qpid/stat")
	s0=$(now)
	sleep "$idle_s" # a measurement window, not a wait for a condition
	c1=$(awk '{ print $14 + $15 }' "/proc/$qpid/stat")
	s1=$(now)
	idle=$(awk -v c="$((c1 - c0))" -v t="$tick" -v a="$s0" -v b="$s1" 'BEGIN { printf "%.0f", 100 * c / t / (b - a) }')
	rss=$(awk '/VmRSS/ { printf "%d MiB", $2 / 1024 }' "/proc/$qpid/status")
	log "guest idle: $idle % of a core, qemu RSS $rss"
fi

save_logs
if [[ ${RDD_BASELINE_KEEP:-} == 1 ]]; then
	log "RDD_BASELINE_KEEP=1: leaving $name running (LIMA_HOME=$lima_home)"
	tstop= tdel=
else
	t5=$(now)
	as_user "$limactl" stop "$name" >"$out/limactl-stop.log" 2>&1 || { tail "$out/limactl-stop.log" >&2; die "limactl stop failed"; }
	t6=$(now)
	save_logs
	as_user "$limactl" delete "$name" >"$out/limactl-delete.log" 2>&1 || die "limactl delete failed"
	t7=$(now)
	tstop=$(dt "$t5" "$t6")
	tdel=$(dt "$t6" "$t7")
	pgrep -u "$user" -f "qemu-system-x86_64.*lima-$name" >/dev/null && die "qemu of $name still running after stop"
fi

{
	echo "boot to READY:          $(dt "$t0" "$t1") s"
	echo "docker answered:        $(dt "$t0" "$t2") s (+$(dt "$t1" "$t2") s after READY)"
	[[ -n $trun ]] && echo "docker run (import'd):  $trun s"
	[[ -n $idle ]] && echo "guest idle CPU:         $idle % of a core (qemu RSS $rss)"
	[[ -n $tstop ]] && echo "limactl stop:           $tstop s"
	[[ -n $tdel ]] && echo "limactl delete:         $tdel s"
	echo "logs:                   $out"
} | tee "$out/timings.txt"
