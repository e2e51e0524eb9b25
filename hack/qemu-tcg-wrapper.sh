#!/usr/bin/env bash
# qemu-tcg-wrapper.sh stands in for qemu-system-x86_64 when Lima is told to use
# it (QEMU_SYSTEM_X86_64=hack/qemu-tcg-wrapper.sh). For the plain-Lima baseline
# (hack/vm-baseline.sh) only: the lima driver gets RDD_VM_ACCEL and the network
# restriction as options of its own.
#
# Lima v1.2.1 always asks for KVM on the native arch. On this machine /dev/kvm
# is nested PVM virtualisation, under which stock Debian kernels do not boot,
# so the wrapper rewrites the command line:
#   -accel kvm / -enable-kvm / accel=kvm   ->  TCG (-accel tcg,thread=multi)
#   -cpu host                              ->  -cpu max
#   -netdev user,...                       ->  -netdev user,...,restrict=on
# restrict=on isolates the guest: it reaches nothing outside QEMU's slirp
# (host port forwards, which Lima uses for ssh, keep working).
#
# The real binary: $QEMU_TCG_WRAPPER_REAL, else qemu-system-x86_64 on PATH that
# is not this script.
set -euo pipefail

real=${QEMU_TCG_WRAPPER_REAL:-}
if [[ -z $real ]]; then
	self=$(readlink -f "$0")
	while read -r c; do
		if [[ $(readlink -f "$c") != "$self" ]]; then
			real=$c
			break
		fi
	done < <(type -ap qemu-system-x86_64)
fi
[[ -n $real ]] || {
	echo "qemu-tcg-wrapper: no qemu-system-x86_64 found (apt-get install qemu-system-x86)" >&2
	exit 127
}

args=()
accel_done=
add_tcg() {
	if [[ -z $accel_done ]]; then
		args+=(-accel tcg,thread=multi)
		accel_done=1
	fi
}
while (($#)); do
	a=$1
	shift
	case $a in
	-enable-kvm | --enable-kvm)
		add_tcg
		;;
	-accel | --accel)
		v=${1-}
		shift || true
		case $v in
		kvm | kvm,*) add_tcg ;;
		*) args+=("$a" "$v") ;;
		esac
		;;
	-machine | -M)
		v=${1-}
		shift || true
		if [[ $v == *accel=kvm* ]]; then
			# Lima: -machine q35,accel=kvm
			v=$(sed -E 's/,accel=kvm//; s/accel=kvm,?//' <<<"$v")
			add_tcg
		fi
		args+=("$a" "$v")
		;;
	-cpu)
		v=${1-}
		shift || true
		if [[ $v == host || $v == host,* ]]; then
			v=max${v#host}
		fi
		args+=("$a" "$v")
		;;
	-netdev)
		v=${1-}
		shift || true
		if [[ $v == user,* && $v != *restrict=* ]]; then
			v="$v,restrict=on"
		elif [[ $v == user,* ]]; then
			v=$(sed -E 's/restrict=(off|no|false)/restrict=on/' <<<"$v")
		fi
		args+=("$a" "$v")
		;;
	*)
		args+=("$a")
		;;
	esac
done

if [[ -n ${QEMU_TCG_WRAPPER_LOG:-} ]]; then
	printf '%q ' "$real" "${args[@]}" >>"$QEMU_TCG_WRAPPER_LOG"
	echo >>"$QEMU_TCG_WRAPPER_LOG"
fi
exec "$real" "${args[@]}"
