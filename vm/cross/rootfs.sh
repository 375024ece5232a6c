#!/bin/bash
# The root file system a cross-check guest boots (vm/cross/check.sh):
# Debian's packages for that architecture (vm/cross/packages.txt) from the
# host's own apt sources, installed by mmdebstrap through qemu-user, and a
# venv with the guest's pinned Python packages of vm/requirements.txt.
# virtme-ng's init powers the guest off with poweroff, which a minbase
# system lacks: busybox's applet under that name.  It
# is also the sysroot the selftests are cross-compiled against.
#
#   vm/cross/rootfs.sh DEBIAN_ARCH     prints the root file system's folder
#
# Cached under $NLMMAP_CACHE/cross/DEBIAN_ARCH; made again when the package
# list, the pins or the host's Debian release change.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"

[[ $# -eq 1 ]] || die "usage: vm/cross/rootfs.sh DEBIAN_ARCH"
arch=$1
home=$CACHE/cross/$arch
rootfs=$home/rootfs
stamp=$home/rootfs.inputs
sources=/etc/apt/sources.list.d/debian.sources
[[ -f $sources ]] || sources=/etc/apt/sources.list
suite=$(. /etc/os-release && printf '%s' "$VERSION_CODENAME")
# the guest's Python packages: the pins of the host's venv
pins=$(grep -E '^(pytest|pyroute2|hypothesis)==' "$ROOT/vm/requirements.txt")
packages=$(grep -v '^\s*\(#\|$\)' "$ROOT/vm/cross/packages.txt" | tr -s ' \n' ',,' | sed 's/,$//')

# this script is an input too: a changed hook makes the root file system anew
inputs() { printf '%s\n%s\n%s\n%s\n' "$arch" "$suite" "$packages" "$pins"; sha256sum <"$0"; }
if [[ -x $rootfs/opt/nlmmap/venv/bin/python3 ]] && cmp -s <(inputs) "$stamp"; then
	printf '%s\n' "$rootfs"
	exit 0
fi

command -v mmdebstrap >/dev/null || die "mmdebstrap missing: run make setup-cross (vm/cross/setup.sh)"
# foreign binaries run through qemu-user: binfmt_misc must know them
if [[ ! -f /proc/sys/fs/binfmt_misc/status ]]; then
	mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc || die "cannot mount binfmt_misc"
fi
update-binfmts --enable >/dev/null 2>&1 || true
log "making the $arch root file system ($suite) in $rootfs"
start=$(date +%s)
rm -rf "$rootfs" "$rootfs.new"
mkdir -p "$home"
printf '%s\n' "$pins" >"$home/requirements.txt"
# the wheels come through the host's pip (its index and certificates), for
# the guest's machine and Python (the host's Debian release, so the same
# Python); the guest's pip installs them without a network
case $arch in
arm64) machine=aarch64 ;;
*) machine=$arch ;;
esac
pyver=$(python3 -c 'import sys; print(f"{sys.version_info.major}.{sys.version_info.minor}")')
rm -rf "$home/wheels"
"$VENV/bin/pip" download --quiet --only-binary=:all: --platform "manylinux2014_$machine" --python-version "$pyver" \
	--implementation cp --dest "$home/wheels" -r "$home/requirements.txt" >&2 ||
	die "cannot download the guest's Python packages for $machine"
# shellcheck disable=SC2016 # mmdebstrap's hooks get the chroot as $1
mmdebstrap --quiet --arch="$arch" --variant=minbase --include="$packages" \
	--aptopt='Acquire::Check-Valid-Until "false"' \
	--customize-hook='chroot "$1" python3 -m venv /opt/nlmmap/venv' \
	--customize-hook="copy-in $home/requirements.txt $home/wheels /tmp" \
	--customize-hook='chroot "$1" /opt/nlmmap/venv/bin/pip install --quiet --no-index --find-links /tmp/wheels -r /tmp/requirements.txt' \
	--customize-hook='rm -rf "$1/tmp/requirements.txt" "$1/tmp/wheels"' \
	--customize-hook='ln -sf /bin/busybox "$1/usr/local/sbin/poweroff"' \
	"$suite" "$rootfs.new" "$sources" >&2 || die "mmdebstrap failed for $arch"
mv "$rootfs.new" "$rootfs"
inputs >"$stamp"
log "root file system for $arch made in $(($(date +%s) - start)) s"
printf '%s\n' "$rootfs"
