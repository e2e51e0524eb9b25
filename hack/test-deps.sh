#!/usr/bin/env bash
# Installs what the tests need when it is missing. Debian packages are
# installed only when running as root (CI and fresh machines); otherwise the
# script says what to install and fails.
set -euo pipefail
cd "$(dirname "$0")/.."

need_pkgs=()
command -v dockerd >/dev/null 2>&1 || need_pkgs+=(docker.io)
command -v containerd >/dev/null 2>&1 || need_pkgs+=(containerd)
[ -x /usr/bin/busybox ] || [ -x /bin/busybox ] || need_pkgs+=(busybox-static)
command -v etcd >/dev/null 2>&1 || need_pkgs+=(etcd-server)
command -v chattr >/dev/null 2>&1 || need_pkgs+=(e2fsprogs)
# The lima driver's tests create instances with Lima's library (disks by
# qemu-img; the driver wants QEMU present); nothing boots in make test.
command -v qemu-img >/dev/null 2>&1 || need_pkgs+=(qemu-utils)
case "$(uname -m)" in
x86_64) command -v qemu-system-x86_64 >/dev/null 2>&1 || need_pkgs+=(qemu-system-x86) ;;
aarch64) command -v qemu-system-aarch64 >/dev/null 2>&1 || need_pkgs+=(qemu-system-arm) ;;
esac

if [ ${#need_pkgs[@]} -gt 0 ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "missing test dependencies: ${need_pkgs[*]}" >&2
		echo "install them with: sudo apt-get install -y ${need_pkgs[*]}" >&2
		exit 1
	fi
	echo "installing test dependencies: ${need_pkgs[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}"
fi

# The kube-apiserver used by Kubernetes tests is built once into .cache/.
if [ -x hack/kube-apiserver.sh ]; then
	./hack/kube-apiserver.sh >/dev/null
fi

# The stand-in k3s (k3s cannot be downloaded here) is rebuilt into .cache/
# when its sources changed; up to date, this costs a hash of a few files.
if [ -x hack/k3s-standin.sh ]; then
	./hack/k3s-standin.sh >/dev/null
fi
