#!/bin/bash
# make e2e: the lima driver end to end with a real VM (internal/e2e/limae2e).
# Opt-in: every boot takes minutes under software emulation. Lima refuses
# root, so under root the test runs as an unprivileged user created here
# (RDD_E2E_USER, default rdde2e); a regular user runs it as themselves.
# The guest's network is restricted (restrict=on): it reaches nothing.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
log() { printf 'e2e: %s\n' "$*" >&2; }

export RDD_VM_IMAGE_DIR=${RDD_VM_IMAGE_DIR:-$repo/.cache/vm-image}
img=$(./hack/vm-image.sh | sed -n 's/^RDD_VM_IMAGE=//p')
[[ -s $img ]] || { log "no guest image: run make vm-image (as root) first"; exit 1; }
for bin in qemu-system-"$(uname -m)" qemu-img docker; do
	command -v "$bin" >/dev/null || { log "$bin is missing: sudo make test-deps installs it"; exit 1; }
done

make -s build
mkdir -p .cache/e2e
go test -c -o .cache/e2e/limae2e.test ./internal/e2e/limae2e

run=()
if [[ $(id -u) == 0 ]]; then
	user=${RDD_E2E_USER:-rdde2e}
	id "$user" >/dev/null 2>&1 || { log "creating user $user"; useradd -m -s /bin/bash "$user"; }
	chmod -R a+rX .cache/e2e bin "$RDD_VM_IMAGE_DIR"
	run=(runuser -u "$user" --)
fi
log "booting a VM as ${user:-$(id -un)} (image $img); this takes minutes"
exec "${run[@]}" env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
	USER="${user:-$(id -un)}" RDD_E2E_BIN="$repo/bin/rdd" RDD_E2E_LIMA_IMAGE="$img" \
	${RDD_VM_ACCEL:+RDD_VM_ACCEL=$RDD_VM_ACCEL} \
	"$repo/.cache/e2e/limae2e.test" -test.v -test.timeout 90m "$@"
