#!/usr/bin/env bash
# vm-image.sh builds the guest image of the lima VM driver, offline except for
# the machine's configured Debian mirror, and caches it:
#
#   ${RDD_VM_IMAGE_DIR:-$HOME/.cache/rdd/vm-image}/<key>/
#       disk.qcow2   ext4 root filesystem, no partition table (root=/dev/vda)
#       vmlinuz      kernel for direct kernel boot
#       initrd.img   its initramfs
#       cmdline      the kernel command line to boot it with
#       manifest     what went into it (packages and versions, guest agent)
#
# <key> is a hash of the recipe: this script, the package list, the suite,
# the Lima version the guest agent comes from and the Go toolchain. A second
# run with a complete cache builds nothing and prints the same paths.
#
# The image is Debian bookworm (mmdebstrap --variant=minbase) with systemd,
# cloud-init (NoCloud, for Lima's cidata), openssh-server, docker.io, and
# Lima's guest agent and its systemd unit pre-installed, so that a slow TCG
# boot does not depend on Lima installing them. apt sources are removed and
# apt timers masked: the guest never reaches for a mirror by itself.
#
# Building needs root (mmdebstrap --mode=root, a root-owned tree for mkfs).
# As root, missing tools are installed with apt-get.
#
# Environment:
#   RDD_VM_IMAGE_DIR      cache directory (default $HOME/.cache/rdd/vm-image)
#   RDD_VM_MIRROR         apt source lines for mmdebstrap, ";"-separated
#                         (default: the bookworm* sources apt is configured with)
#   RDD_LIMA_GUESTAGENT   a prebuilt lima-guestagent (linux/amd64) to use
#                         instead of building it from the Go module cache
#   RDD_VM_DISK_SIZE      size of the ext4 filesystem (default 8G; sparse)
set -euo pipefail

SUITE=bookworm
ARCH=amd64
CMDLINE='root=/dev/vda rw console=ttyS0 net.ifnames=0 apparmor=0'
PACKAGES=(linux-image-amd64 systemd-sysv udev dbus kmod openssh-server sudo
	cloud-init iproute2 iptables docker.io ca-certificates e2fsprogs
	util-linux procps)
DISK_SIZE=${RDD_VM_DISK_SIZE:-8G}

repo=$(cd "$(dirname "$0")/.." && pwd)
self="$repo/hack/vm-image.sh"
cache=${RDD_VM_IMAGE_DIR:-${HOME:-/root}/.cache/rdd/vm-image}

log() { printf 'vm-image: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

print_env() {
	local d=$1
	log "image ready in $d ($(du -h "$d/disk.qcow2" | cut -f1) disk.qcow2)"
	echo "RDD_VM_IMAGE=$d/disk.qcow2"
	echo "# kernel: $d/vmlinuz  initrd: $d/initrd.img  cmdline: $(cat "$d/cmdline")"
}

complete() {
	local d=$1 f
	for f in disk.qcow2 vmlinuz initrd.img cmdline .complete; do
		[[ -s $d/$f || ($f == .complete && -e $d/$f) ]] || return 1
	done
}

lima_version=$(cd "$repo" && go list -m -f '{{.Version}}' github.com/lima-vm/lima 2>/dev/null) ||
	die "cannot read the github.com/lima-vm/lima version from $repo/go.mod"
go_version=$(go env GOVERSION)

key=$( {
	cat "$self"
	echo "$SUITE $ARCH $DISK_SIZE ${PACKAGES[*]} $CMDLINE lima=$lima_version go=$go_version"
	if [[ -n ${RDD_LIMA_GUESTAGENT:-} ]]; then sha256sum <"$RDD_LIMA_GUESTAGENT"; fi
} | sha256sum | cut -c1-16)
out="$cache/$SUITE-$key"

if complete "$out"; then
	log "cached, nothing to do"
	print_env "$out"
	exit 0
fi

[[ $(id -u) == 0 ]] || die "building the image needs root (mmdebstrap --mode=root and a root-owned tree for mkfs.ext4 -d): sudo make vm-image"

# Tools, from the configured Debian mirror when missing.
need=()
command -v mmdebstrap >/dev/null || need+=(mmdebstrap)
command -v qemu-img >/dev/null || need+=(qemu-utils)
command -v mkfs.ext4 >/dev/null || need+=(e2fsprogs)
if ((${#need[@]})); then
	log "installing ${need[*]}"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# Mirror: the bookworm sources apt already uses on this machine.
if [[ -n ${RDD_VM_MIRROR:-} ]]; then
	IFS=';' read -r -a mirrors <<<"$RDD_VM_MIRROR"
else
	mirrors=()
	while read -r uri rel; do
		case $rel in "$SUITE" | "$SUITE"-updates | "$SUITE"-security) mirrors+=("deb $uri $rel main") ;; esac
	done < <(apt-get indextargets --format '$(REPO_URI) $(RELEASE)' 'Created-By: Packages' | sort -u)
	((${#mirrors[@]})) || die "no $SUITE source configured for apt on this machine; set RDD_VM_MIRROR='deb <uri> $SUITE main'"
fi

start=$(date +%s)
mkdir -p "$cache"
work=$(mktemp -d "$cache/.build-$key.XXXXXX")
trap 'rm -rf "$work"' EXIT
root="$work/root"

# 1. Lima's guest agent, from the Go module cache only (GOPROXY=off): the
#    repository requires github.com/lima-vm/lima, so its sources are there.
#    A copy of go.mod/go.sum takes the extra checksums so the repo stays as is.
if [[ -n ${RDD_LIMA_GUESTAGENT:-} ]]; then
	install -m 755 "$RDD_LIMA_GUESTAGENT" "$work/lima-guestagent"
else
	log "building lima-guestagent $lima_version"
	mkdir -p "$work/mod"
	cp "$repo/go.mod" "$repo/go.sum" "$work/mod/"
	(cd "$repo" && GOOS=linux GOARCH=amd64 CGO_ENABLED=0 GOPROXY=off GOSUMDB=off GOFLAGS=-mod=mod \
		go build -modfile="$work/mod/go.mod" -trimpath -ldflags '-s -w' \
		-o "$work/lima-guestagent" github.com/lima-vm/lima/cmd/lima-guestagent) ||
		die "building lima-guestagent from the module cache failed (GOPROXY=off); run once: go mod download github.com/lima-vm/lima, or set RDD_LIMA_GUESTAGENT"
fi

# 2. The root filesystem.
log "mmdebstrap $SUITE from ${mirrors[*]}"
mmdebstrap --mode=root --variant=minbase --arch="$ARCH" \
	--include="$(
		IFS=,
		echo "${PACKAGES[*]}"
	)" \
	--aptopt='Acquire::Languages "none"' \
	--aptopt='APT::Install-Recommends "false"' \
	--dpkgopt='path-exclude=/usr/share/man/*' \
	--dpkgopt='path-exclude=/usr/share/locale/*' \
	--dpkgopt='path-include=/usr/share/locale/locale.alias' \
	--dpkgopt='path-exclude=/usr/share/doc/*' \
	--dpkgopt='path-include=/usr/share/doc/*/copyright' \
	--dpkgopt='path-exclude=/usr/share/info/*' \
	"$SUITE" "$root" "${mirrors[@]}" >"$work/mmdebstrap.log" 2>&1 || {
	tail -40 "$work/mmdebstrap.log" >&2
	die "mmdebstrap failed"
}

# 3. Configuration: files and symlinks only, nothing runs in the guest tree.
wants() { # wants <unit> <target>.wants
	mkdir -p "$root/etc/systemd/system/$2"
	ln -sf "/lib/systemd/system/$1" "$root/etc/systemd/system/$2/$1"
}
mask() { ln -sf /dev/null "$root/etc/systemd/system/$1"; }

echo rdd >"$root/etc/hostname"
printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$root/etc/hosts"
echo '/dev/vda / ext4 rw,discard,errors=remount-ro 0 1' >"$root/etc/fstab"
: >"$root/etc/machine-id"
rm -f "$root/var/lib/dbus/machine-id"

# cloud-init: only Lima's cidata (NoCloud), no network lookups for others;
# one ed25519 host key (RSA generation is slow under TCG); the root
# filesystem grows in the background, boot does not wait for it.
cat >"$root/etc/cloud/cloud.cfg.d/90-rdd.cfg" <<'EOF'
datasource_list: [NoCloud, None]
ssh_genkeytypes: [ed25519]
resize_rootfs: noblock
EOF
rm -f "$root"/etc/ssh/ssh_host_*

# Network: systemd-networkd, DHCP on eth0 (net.ifnames=0). cloud-init may
# write its own .network for Lima's network-config; this one is the fallback.
cat >"$root/etc/systemd/network/80-eth0.network" <<'EOF'
[Match]
Name=eth0

[Network]
DHCP=yes
EOF
wants systemd-networkd.service multi-user.target.wants
wants systemd-networkd.socket sockets.target.wants
wants systemd-networkd-wait-online.service network-online.target.wants
mkdir -p "$root/etc/systemd/system/systemd-networkd-wait-online.service.d"
cat >"$root/etc/systemd/system/systemd-networkd-wait-online.service.d/rdd.conf" <<'EOF'
[Service]
ExecStart=
ExecStart=/lib/systemd/systemd-networkd-wait-online --interface=eth0 --timeout=60
EOF

# No apt activity in the guest: timers masked, sources removed.
for u in apt-daily.timer apt-daily-upgrade.timer apt-daily.service apt-daily-upgrade.service; do mask "$u"; done
rm -f "$root/etc/apt/sources.list"
rm -rf "$root/etc/apt/sources.list.d"/*
rm -rf "$root/var/lib/apt/lists"/* "$root/var/cache/apt"/*.bin "$root/var/cache/apt/archives"/*.deb

# Lima's guest agent as Lima v1.2.1 installs it on a systemd guest
# (cidata boot/25-guestagent-base.sh: `lima-guestagent install-systemd`, no
# vsock/virtio port with QEMU on Linux): /usr/local/bin/lima-guestagent,
# /etc/systemd/system/lima-guestagent.service, enabled. Lima reinstalls both at
# every boot; having them in the image means the agent is up before cidata.
install -D -m 755 "$work/lima-guestagent" "$root/usr/local/bin/lima-guestagent"
cat >"$root/etc/systemd/system/lima-guestagent.service" <<'EOF'
[Unit]
Description=lima-guestagent

[Service]
ExecStart=/usr/local/bin/lima-guestagent daemon
Type=simple
Restart=on-failure
OOMPolicy=continue
OOMScoreAdjust=-500

[Install]
WantedBy=multi-user.target
EOF
mkdir -p "$root/etc/systemd/system/multi-user.target.wants"
ln -sf /etc/systemd/system/lima-guestagent.service "$root/etc/systemd/system/multi-user.target.wants/lima-guestagent.service"

# Kernel and initrd for direct kernel boot.
kver=$(cd "$root/boot" && ls vmlinuz-* | sed 's/^vmlinuz-//' | sort -V | tail -1)
[[ -n $kver && -s $root/boot/initrd.img-$kver ]] || die "no kernel/initrd in the image"
new="$work/out"
mkdir -p "$new"
install -m 644 "$root/boot/vmlinuz-$kver" "$new/vmlinuz"
install -m 644 "$root/boot/initrd.img-$kver" "$new/initrd.img"
echo "$CMDLINE" >"$new/cmdline"
{
	echo "suite: $SUITE"
	echo "kernel: $kver"
	echo "lima-guestagent: $lima_version ($(sha256sum <"$work/lima-guestagent" | cut -c1-16))"
	echo "cmdline: $CMDLINE"
	echo "mirrors: ${mirrors[*]}"
	echo "packages:"
	dpkg-query --admindir="$root/var/lib/dpkg" -W -f '  ${Package} ${Version}\n'
} >"$new/manifest"

# 4. ext4 from the tree, then a compressed qcow2.
log "mkfs.ext4 -d ($(du -sh "$root" | cut -f1) of files, $DISK_SIZE filesystem)"
truncate -s "$DISK_SIZE" "$work/disk.raw"
mkfs.ext4 -q -F -L rdd-root -d "$root" "$work/disk.raw"
rm -rf "$root"
log "qemu-img convert -c -O qcow2"
qemu-img convert -c -O qcow2 "$work/disk.raw" "$new/disk.qcow2"
rm -f "$work/disk.raw"
chmod 644 "$new/disk.qcow2" "$new/cmdline" "$new/manifest"
touch "$new/.complete"
chmod 755 "$new"

rm -rf "$out"
mv "$new" "$out"
log "built in $(($(date +%s) - start)) s"
print_env "$out"
