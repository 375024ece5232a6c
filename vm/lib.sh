# shellcheck shell=bash
# Common settings of the vm/ scripts; sourced, never run.
# Every path can be overridden from the environment (or make VAR=...).

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# Caches that outlive a checkout: base source, apt state, ccache, venv.
# Not under /var/cache: the guest mounts a tmpfs there and must see the venv.
CACHE=${NLMMAP_CACHE:-/var/lib/nlmmap}
BUILD=${BUILD:-$ROOT/build}
RESULTS=${RESULTS:-$BUILD/results}
VENV=${VENV:-$CACHE/venv}
# Which kernel: TREE, KBUILD, FRAGMENTS, SERIES, KCONFIG_IGNORE follow from
# FLAVOUR (vm/flavours.sh).
# shellcheck source=vm/flavours.sh
source "$ROOT/vm/flavours.sh"
JOBS=${JOBS:-$(nproc)}

export CCACHE_DIR=${CCACHE_DIR:-$CACHE/ccache}
# Out-of-tree builds pass absolute paths; make them relative so that a fresh
# clone in another folder still hits the cache.
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$ROOT}
export CCACHE_NOHASHDIR=1
export CCACHE_MAXSIZE=${CCACHE_MAXSIZE:-8G}

PATH=$VENV/bin:$PATH
export PATH

# Copy what vm/run.sh boots out of a build folder (bzImage, vmlinux for its
# build id, .config, the release): a kernel kept apart from a build folder
# that changes (the cached base, each mutant while the next one builds).
copy_bootable_kernel() { # kbuild destination
	rm -rf "$2"
	mkdir -p "$2/arch/x86/boot" "$2/include/config"
	cp "$1/arch/x86/boot/bzImage" "$2/arch/x86/boot/"
	cp "$1/vmlinux" "$1/.config" "$1/nlmmap-fragment.config" "$2/"
	cp "$1/include/config/kernel.release" "$2/include/config/"
}

# A flavour with a SEED (vm/flavours.sh) starts as a copy of that build
# folder: its config then differs in a few options and make compiles only
# what they reach.  Without the copy every object would miss ccache's direct
# mode (autoconf.h differs) and cost a preprocessor run.  The seed's kernel
# goes: a build that fails or is stopped must not leave the seed's kernel
# bootable under this flavour's name.
seed_build_folder() { # seed kbuild
	if [[ -z $1 ]]; then
		return 0
	fi
	[[ $1 != "$2" ]] || die "a build folder cannot be its own seed: $1"
	if [[ ! -f $1/.config ]]; then
		log "no build in $1 to start from: $2 builds from scratch"
		return 0
	fi
	log "copying $1 to $2 (only what the $FLAVOUR config changes is compiled again)"
	mkdir -p "$2"
	rsync -a --delete "$1/" "$2/" || die "cannot copy $1 to $2"
	rm -f "$2/arch/x86/boot/bzImage" "$2/vmlinux" "$2/nlmmap-build.txt"
}

# patches/ holds two series, applied in this order: the fix for the net
# tree (patches/net/, the tree's branch "net" ends there) and the RFC on top
# of it.  Each is exported with netdev's subject prefix for its tree.
# shellcheck disable=SC2034 # read by tree.sh and series.sh
NET_PREFIX="PATCH net"
# shellcheck disable=SC2034
RFC_PREFIX="RFC PATCH net-next"
# The patch files of a series folder in order (the cover letter, 0000-*, is
# not a commit).
series_patches() { # folder
	[[ -d $1 ]] || return 0
	find "$1" -maxdepth 1 -name '[0-9][0-9][0-9][0-9]-*.patch' ! -name '0000-*' | sort
}
# git format-patch with the fixed options that make an unchanged tree
# export byte for byte the same files on any machine (zero From hashes, no
# signature, index lines of a fixed length).
format_patches() { # tree range outdir prefix [format-patch options...]
	git -C "$1" format-patch -q --numbered --zero-commit --no-signature --abbrev=12 --subject-prefix="$4" \
		-o "$3" "${@:5}" "$2" >/dev/null
}

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# The settings with a fixed form, checked whenever a script starts: a bad
# value stops it with the setting's name and what it takes.  Empty means
# unset (make exports every variable it names).  Every setting, with its
# default and meaning: docs/pipeline.md, "Settings".
check_setting() { # name extended-regex what-it-takes
	local value=${!1:-}
	[[ -z $value || $value =~ ^($2)$ ]] || die "$1 must be $3, not '$value' (see docs/pipeline.md, Settings)"
}
check_setting ACCEL 'auto|kvm|tcg' "auto, kvm or tcg"
check_setting SERIES 'series|none' "series or none"
check_setting FORCE '0|1' "0 or 1"
check_setting VM_TCG_THREAD 'single|multi' "single or multi"
check_setting VM_ICOUNT '0|1' "0 or 1"
check_setting BENCH_SCALE 'full|smoke|headline' "full, smoke or headline"
check_setting BENCH_CLOCK 'icount|wall' "icount or wall"
check_setting VM_MEMORY '[1-9][0-9]*[MG]' "a size such as 3G or 2048M"
for setting in JOBS VM_CPUS PERF_VM_CPUS BENCH_CPUS VM_TIMEOUT KVM_PROBE_TIMEOUT DURATION; do
	check_setting "$setting" '[1-9][0-9]*' "a positive whole number"
done
[[ -z ${KSRC:-} || -d $KSRC ]] || die "KSRC must be a kernel tree, but '$KSRC' is not a directory"
use_flavour "${FLAVOUR:-test}"

# The series' selftest collections as kernel CI installs them: `make
# kselftest-install` of the tree for the built kernel (its UAPI headers) into
# KBUILD/kselftest/kselftest_install, with run_kselftest.sh and each
# collection's settings (timeout).  The nfqueue ring test is in
# net/netfilter; net/lib comes along as their dependency.  Extra arguments go
# to make (a cross build's ARCH, LLVM, USERCFLAGS).
KSFT_TARGETS="net/netlink_mmap net/netfilter"
ksft_install() { # tree kbuild [make arguments...]
	local installed=$2/kselftest/kselftest_install
	rm -rf "$installed"
	make -C "$1" "O=$2" "${@:3}" TARGETS="$KSFT_TARGETS" kselftest-install || return 1
	for file in run_kselftest.sh net/netlink_mmap/rx_ring net/netlink_mmap/tx_ring net/netfilter/nf_queue \
		net/netfilter/nft_queue_ring.sh; do
		[[ -e $installed/$file ]] || { printf 'kselftest-install left no %s\n' "$file"; return 1; }
	done
}

# The lines of a guest's manifest (RESULTS/expect.env, read by
# harness.guest) every boot has: what the guest must find (the build's
# release and build id) and where the kernel's folders are.  The caller
# adds its own.
manifest_kernel() { # kbuild
	printf 'NLMMAP_EXPECT_RELEASE=%s\n' "$(cat "$1/include/config/kernel.release")"
	printf 'NLMMAP_EXPECT_BUILD_ID=%s\n' "$(readelf -n "$1/vmlinux" | awk '/Build ID:/{print $3; exit}')"
	printf 'NLMMAP_KBUILD=%s\n' "$1"
	printf 'NLMMAP_FRAGMENT=%s\n' "$1/nlmmap-fragment.config"
	printf 'NLMMAP_TREE=%s\n' "$TREE"
}

# Run the host-side Python harness (vm/harness) with the venv's python.
harness() {
	PYTHONPATH=$ROOT/vm "$VENV/bin/python3" -m "harness.$1" "${@:2}"
}
