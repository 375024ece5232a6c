#!/bin/bash
# make cross-check ARCH=arm64|s390x: the series on another architecture,
# booted under TCG (QEMU without KVM), its suites run as in make check.
#
#   arm64  64 KiB pages: ring geometry and mapping against a page larger
#          than x86's, memlock counted in those pages, weak memory ordering
#          as far as TCG shows it (docs/testing.md)
#   s390x  big-endian: the ABI's native-endian headers beside nfqueue's
#          network-order attributes
#
# Steps: the root file system (vm/cross/rootfs.sh: Debian's packages for the
# architecture, cached), the kernel (clang, the perf flavour's fragments and
# vm/cross/ARCH.config on x86_64's virtme-ng defconfig carried over to ARCH,
# ccache), the selftests cross-compiled and installed as kernel CI does it
# (make kselftest-install), one boot running the suites of CROSS_SUITES, the
# summary of vm/harness/report.py.  Results: build/cross-ARCH/results.
set -euo pipefail
export FLAVOUR=perf
# shellcheck source=vm/lib.sh
source "$(dirname "$0")/../lib.sh"

arch=${CROSS_ARCH:-}
case $arch in
arm64) karch=arm64 triple=aarch64-linux-gnu image=arch/arm64/boot/Image qemu=qemu-system-aarch64 cpu=() ;;
# Without the vector facility: with it, the kernel's checksums come out
# wrong under TCG (Debian 12's QEMU 7.2: the vector csum_partial() path;
# IcmpInCsumErrors on a ping between two netns, and the nfqueue tests'
# accepted datagrams never arrive); with it off (the scalar CKSM path) all pass
# (docs/testing.md)
s390x) karch=s390 triple=s390x-linux-gnu image=arch/s390/boot/bzImage qemu=qemu-system-s390x cpu=(--qemu-opts="-cpu qemu,vx=off") ;;
*) die "ARCH must be arm64 or s390x (make cross-check ARCH=arm64), not '$arch'" ;;
esac
# the kernel's make must not see the make variable that chose the architecture
unset ARCH
xbuild=$BUILD/cross-$arch
kbuild=$xbuild/kbuild
RESULTS=${CROSS_RESULTS:-$xbuild/results}
llvm=-19
kmake() { # kbuild target...
	make -s -C "$TREE" "O=$1" "ARCH=$karch" "LLVM=$llvm" "CC=ccache clang$llvm" "HOSTCC=ccache clang$llvm" "${@:2}"
}

for tool in "clang$llvm" "ld.lld$llvm" "$qemu" mmdebstrap; do
	command -v "$tool" >/dev/null || die "$tool missing: run make setup-cross"
done
"$ROOT/vm/tree.sh"
rootfs=$("$ROOT/vm/cross/rootfs.sh" "$arch")

# --- the kernel --------------------------------------------------------------
# options of the fragments an architecture does not have (x86-only, or
# selected differently there) are listed in vm/cross/ARCH.ignore
ignore=()
if [[ -f $ROOT/vm/cross/$arch.ignore ]]; then
	while read -r name; do ignore+=(--ignore "$name"); done < <(grep -v '^\s*\(#\|$\)' "$ROOT/vm/cross/$arch.ignore")
fi
build_kernel() { # kbuild fragment-file...: configured when its inputs changed, built
	local kb=$1 fragment start seed
	shift
	mkdir -p "$kb" "$CCACHE_DIR"
	fragment=$kb/nlmmap-fragment.config
	cat "$@" >"$fragment"
	config_inputs() { cat "$fragment"; git -C "$TREE" rev-parse HEAD; }
	if [[ ! -f $kb/.config ]] || ! cmp -s <(config_inputs) "$kb/.nlmmap-config"; then
		log "configuring $kb for $arch"
		# x86_64's virtme-ng defconfig as the start, so that every architecture
		# runs the same generic options; ARCH's olddefconfig drops the x86 ones
		seed=$xbuild/x86-seed
		rm -rf "$seed"
		(cd "$TREE" && virtme-configkernel --arch x86_64 --defconfig --custom "$fragment" "O=$seed" \
			>"$xbuild/config.log" 2>&1) || { cat "$xbuild/config.log" >&2; die "virtme-configkernel failed"; }
		cp "$seed/.config" "$kb/.config"
		kmake "$kb" olddefconfig
		"$TREE/scripts/kconfig/merge_config.sh" -m -O "$kb" "$kb/.config" "$fragment" >>"$xbuild/config.log"
		kmake "$kb" olddefconfig
		config_inputs >"$kb/.nlmmap-config"
	fi
	harness kconfig "${ignore[@]}" "$fragment" "$kb/.config" || die "the $arch config does not hold what $fragment asks for"
	log "building $kb for $arch ($JOBS jobs, clang$llvm, ccache in $CCACHE_DIR)"
	start=$(date +%s)
	kmake "$kb" -j"$JOBS" "$(basename "$image")" >&2 || die "the $arch kernel in $kb did not build"
	log "$arch kernel $(cat "$kb/include/config/kernel.release") built in $(($(date +%s) - start)) s"
}
build_kernel "$kbuild" "${FRAGMENTS[@]}" "$ROOT/vm/cross/$arch.config"
kmake "$kbuild" headers >/dev/null

# --- the selftests, as kernel CI installs them ---------------------------------
# lib.mk picks clang's --target from ARCH; the sysroot is the guest's root
# file system (its libc, libgcc and libmnl)
sysroot=(USERCFLAGS="--sysroot=$rootfs" USERLDFLAGS="--sysroot=$rootfs -fuse-ld=lld")
ksft_install "$TREE" "$kbuild" "ARCH=$karch" "LLVM=$llvm" "${sysroot[@]}" >"$xbuild/kselftest-install.log" 2>&1 ||
	{ tail -n 40 "$xbuild/kselftest-install.log" >&2; die "kselftest-install for $arch failed: see $xbuild/kselftest-install.log"; }
file "$kbuild/kselftest/kselftest_install/net/netlink_mmap/rx_ring" | grep -q "$(
	[[ $arch == arm64 ]] && echo 'ARM aarch64' || echo 'IBM S/390')" ||
	die "the installed rx_ring is not an $arch program"
# the net fix's selftest, alone (the net collection builds every net selftest)
mfdir=$TREE/tools/testing/selftests/net
"clang$llvm" --target="$triple" --sysroot="$rootfs" -fuse-ld=lld -Wall -O2 -I"$TREE/tools/testing/selftests" \
	-isystem "$kbuild/usr/include" -o "$kbuild/netlink_mcast_filter" "$mfdir/netlink_mcast_filter.c" ||
	die "cannot build netlink_mcast_filter.c for $arch"

# --- the boot ----------------------------------------------------------------
mapfile -t suites < <(harness suites cross)
mkdir -p "$RESULTS"
rm -f "$RESULTS"/*.tap "$RESULTS"/*.xml "$RESULTS"/*.log "$RESULTS"/dmesg.txt "$RESULTS"/vm.status
printf '%s\n' "${suites[@]}" >"$RESULTS/suites.txt"
manifest() { # kbuild: the guest's expect.env for that kernel
	manifest_kernel "$1"
	# the selftests are this build's programs whichever kernel boots
	printf 'NLMMAP_KSFT=%s\n' "$kbuild/kselftest/kselftest_install"
	printf 'NLMMAP_CROSS=1\n'
	printf 'NLMMAP_ACCEL=tcg\n'
	printf 'NLMMAP_VENV=/opt/nlmmap/venv\n'
}
# The guest's root is the Debian root file system; the checkout (tests,
# harness, tree, build) is shared into it read-only at the same path, the
# results folder writable at /nlmmap-results (virtme-ng mounts the writable
# folders first: one inside the checkout would be hidden by it).
guest_results=/nlmmap-results
for dir in "$ROOT" "$guest_results"; do mkdir -p "$rootfs$dir"; done
VM_TIMEOUT=${VM_TIMEOUT:-7200}
VM_CPUS=${VM_CPUS:-2}
boot() { # kbuild results suite...
	local kb=$1 results=$2 start rc release
	shift 2
	mkdir -p "$results"
	manifest "$kb" >"$results/expect.env"
	release=$(cat "$kb/include/config/kernel.release")
	log "booting $release ($kb) on $arch (TCG, $VM_CPUS vCPUs) for: $*"
	start=$(date +%s)
	set +e
	timeout -k 10 "$VM_TIMEOUT" vng --run "$kb" --arch "$arch" --root "$rootfs" --user root --disable-kvm \
		--cpus "$VM_CPUS" --memory "${VM_MEMORY:-3G}" "${cpu[@]}" --rodir "$ROOT=$ROOT" --rwdir "$guest_results=$results" \
		--verbose --exec "cd $ROOT && env PYTHONPATH=$ROOT/vm /opt/nlmmap/venv/bin/python3 -m harness.guest \
$guest_results $*" </dev/null 2>&1 | tee "$results/console.log" | sed -u -n '/^nlmmap-guest:/s/^nlmmap-guest: //p'
	rc=${PIPESTATUS[0]}
	set -e
	printf 'vm_used=1\nvm_rc=%s\ntimed_out=%s\nseconds=%s\naccel=tcg\nclock=wall\ncpus=%s\nkernel=%s\narch=%s\n' \
		"$rc" "$( ((rc == 124 || rc == 137)) && echo 1 || echo 0)" "$(($(date +%s) - start))" "$VM_CPUS" \
		"$release" "$arch" >"$results/vm.status"
}
boot "$kbuild" "$RESULTS" "${suites[@]}"
socket=$RESULTS/nft_queue ring=$RESULTS/nft_queue_ring
for mode in "$socket" "$ring"; do
	[[ ! -f $mode.tap ]] || mv "$mode.tap" "$mode.patched.tap"
done
[[ ! -f $socket.patched.tap ]] || cp "$socket.patched.tap" "$socket.tap"
# Ring mode is judged against socket mode in the same boot, as in make
# check: a check both modes fail is a skip of the rings; while that still
# fails, both modes run once more in a boot of their own, and a check fails
# only when it failed on every ring run and no socket run (harness.basediff;
# the boots: harness.results rounds ring).
rounds=$(harness results rounds ring) || die "harness.results printed no judging rounds"
mapfile -t ring_rounds <<<"$rounds"
rounds=$(harness results rounds nommap) || die "harness.results printed no judging rounds"
mapfile -t nommap_rounds <<<"$rounds"
# the judging boots of an earlier run must not be judged with this one
for round in "${ring_rounds[@]}" "${nommap_rounds[@]}"; do rm -rf "${RESULTS:?}/${round% *}"; done
failing() { grep -q '^not ok' "$1"; }
unfinished() { [[ -n $(harness results error "$1") ]]; }
if [[ -f $ring.patched.tap && -f $socket.patched.tap ]]; then
	judged=(--reference "nft_queue in the same boots" "$socket.patched.tap")
	harness basediff "${judged[@]}" "$ring.patched.tap" >"$ring.tap"
	# a run that did not finish is a failure no further run explains
	if unfinished "$ring.patched.tap"; then ring_rounds=(); fi
	for round in "${ring_rounds[@]}"; do
		failing "$ring.tap" || break
		run=$RESULTS/${round% *}
		log "nft_queue_ring judged against nft_queue: failures; booting both once more (${run##*/})"
		boot "$kbuild" "$run" nft_queue nft_queue_ring
		judged=(--again "$run/nft_queue_ring.tap" "${judged[@]}" "$run/nft_queue.tap")
		harness basediff "${judged[@]}" "$ring.patched.tap" >"$ring.tap"
	done
fi
# Socket mode is judged as in make check: against the series with
# CONFIG_NETLINK_MMAP=n (this config otherwise; its build a copy of this
# one's, so only what the option reaches is compiled), a check that fails
# there too being a skip.  Under TCG the script's 5-second TCP transfers
# and its UDP fanout check fail on either kernel.  While failures stay
# unexplained, the nommap and the patched kernel boot again in turn
# (harness.results rounds nommap); a check fails only when it failed on
# every patched run and no nommap run.
if [[ -f $socket.patched.tap ]] && failing "$socket.patched.tap" && ! unfinished "$socket.patched.tap"; then
	nkbuild=$xbuild/kbuild-nommap
	FLAVOUR=nommap seed_build_folder "$kbuild" "$nkbuild"
	build_kernel "$nkbuild" "${FRAGMENTS[@]}" "$ROOT/vm/cross/$arch.config" "$ROOT/vm/kernel-nommap.config"
	# the ring rounds' socket-mode runs are patched runs too, and a patched
	# round they already made is not booted again
	agains=() references=() patched_rounds=0
	for round in "${ring_rounds[@]}"; do
		run=$RESULTS/${round% *}
		[[ ! -f $run/nft_queue.tap ]] || agains+=(--again "$run/nft_queue.tap")
	done
	for round in "${nommap_rounds[@]}"; do
		run=$RESULTS/${round% *}
		case ${round#* } in
		reference) log "nft_queue: failures not explained yet; booting the nommap kernel (${run##*/})"
			boot "$nkbuild" "$run" nft_queue
			references+=("$run/nft_queue.tap") ;;
		patched)
			patched_rounds=$((patched_rounds + 1))
			((${#agains[@]} / 2 < patched_rounds)) || continue
			log "nft_queue: failures not explained yet; booting the patched kernel (${run##*/})"
			boot "$kbuild" "$run" nft_queue
			agains+=(--again "$run/nft_queue.tap") ;;
		*) die "unknown side in judging round '$round'" ;;
		esac
		harness basediff --reference "the series with CONFIG_NETLINK_MMAP=n" "${agains[@]}" "${references[@]}" \
			"$socket.patched.tap" >"$socket.tap"
		failing "$socket.tap" || break
	done
fi
harness report "$RESULTS"
