#!/bin/bash
# Configure and build the kernel in $TREE out of tree into $KBUILD, with ccache.
#
# Config: virtme-ng's minimal config, then vm/kernel.config merged on top
# (virtme-ng appends its own defaults after a --custom fragment, so ours is
# merged again), then olddefconfig, then every fragment line is checked.
# Also builds the user-space helpers the guest runs: the UAPI headers, the
# upstream nfqueue selftest's programs and our kselftests.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

[[ -f $TREE/Makefile ]] || die "no kernel tree at $TREE: run 'make tree' first"
seed_build_folder "$SEED" "$KBUILD"
mkdir -p "$KBUILD" "$CCACHE_DIR"

# The fragments merged into one file, in order: merge_config.sh and the
# check below both let a later line win.
fragment=$KBUILD/nlmmap-fragment.config
cat "${FRAGMENTS[@]}" >"$fragment"
config_inputs() { cat "$fragment" "$ROOT/vm/requirements.txt"; git -C "$TREE" rev-parse HEAD; }
stamp="$KBUILD/.nlmmap-config"
if [[ ! -f $KBUILD/.config ]] || ! cmp -s <(config_inputs) "$stamp"; then
	log "configuring $KBUILD"
	(cd "$TREE" && virtme-configkernel --defconfig --custom "$fragment" "O=$KBUILD" >"$KBUILD/config.log" 2>&1) ||
		{ cat "$KBUILD/config.log" >&2; die "virtme-configkernel failed"; }
	"$TREE/scripts/kconfig/merge_config.sh" -m -O "$KBUILD" "$KBUILD/.config" "$fragment" >>"$KBUILD/config.log"
	make -s -C "$TREE" "O=$KBUILD" olddefconfig
	config_inputs >"$stamp"
fi
# KCONFIG_IGNORE: options the tree cannot have (the bare base lacks the
# series' own symbols).
ignore=()
for name in ${KCONFIG_IGNORE:-}; do ignore+=(--ignore "$name"); done
harness kconfig "${ignore[@]}" "$fragment" "$KBUILD/.config" || die "kernel config does not hold what ${FRAGMENTS[*]} ask for"

log "building the kernel ($JOBS jobs, ccache in $CCACHE_DIR)"
start=$(date +%s)
ccache -z >/dev/null
make -s -C "$TREE" "O=$KBUILD" CC="ccache gcc" -j"$JOBS" bzImage modules >&2 || die "kernel build failed"
make -s -C "$TREE" "O=$KBUILD" headers >/dev/null
secs=$(($(date +%s) - start))
hits=$(ccache --print-stats | awk -F'\t' '$1=="direct_cache_hit"||$1=="preprocessed_cache_hit"{h+=$2} $1=="cache_miss"{m+=$2} END{print h+0 "/" h+m}')
printf 'build_seconds=%s\nccache_hits=%s\nrelease=%s\n' "$secs" "$hits" \
	"$(cat "$KBUILD/include/config/kernel.release")" >"$KBUILD/nlmmap-build.txt"
log "kernel $(cat "$KBUILD/include/config/kernel.release") built in ${secs}s (ccache hits $hits)"

# User-space programs the guest runs (the guest sees the host's files); a
# flavour without PROGRAMS boots with those its seed's build made in the
# same tree.
((PROGRAMS)) || exit 0
nfdir="$TREE/tools/testing/selftests/net/netfilter"
for prog in nf_queue connect_close; do
	gcc -O2 -I"$KBUILD/usr/include" -o "$nfdir/$prog" "$nfdir/$prog.c" -lmnl ||
		die "cannot build $nfdir/$prog.c (libmnl-dev installed?)"
done

# The net fix's selftest (patches/net), alone: the net folder's Makefile
# builds every net selftest.  Its program also runs on the bare base (suite
# mcast_filter_unfixed), from this tree.
mfdir="$TREE/tools/testing/selftests/net"
if [[ -f $mfdir/netlink_mcast_filter.c ]]; then
	gcc -Wall -O2 -I"$TREE/tools/testing/selftests" -isystem "$KBUILD/usr/include" \
		-o "$mfdir/netlink_mcast_filter" "$mfdir/netlink_mcast_filter.c" ||
		die "cannot build $mfdir/netlink_mcast_filter.c"
fi

# The series' own selftests, with their kselftest Makefile (the bare base
# has none).
mmdir="$TREE/tools/testing/selftests/net/netlink_mmap"
if [[ -d $mmdir ]]; then
	# OUTPUT: lib.mk only defaults it at the top make level, and this
	# script often runs under make.
	make -s -C "$mmdir" OUTPUT="$mmdir" KHDR_INCLUDES="-isystem $KBUILD/usr/include" ||
		die "cannot build the selftests in $mmdir"
	for prog in rx_ring tx_ring; do
		[[ -x $mmdir/$prog ]] || die "the selftests in $mmdir built no $prog"
	done
	# The same selftests as 32-bit programs, for the compat system calls
	# (suite kselftest32).  Without a 32-bit libc the suite says so; with
	# one, a test that does not build as 32-bit is an error.
	k32=$KBUILD/kselftest32
	rm -rf "$k32"
	mkdir -p "$k32"
	if echo 'int main(void) { return 0; }' | gcc -m32 -x c -o "$k32/probe" - 2>"$k32/build.log"; then
		rm -f "$k32/probe"
		for prog in rx_ring tx_ring; do
			gcc -m32 -Wall -O2 -isystem "$KBUILD/usr/include" -o "$k32/$prog" \
				"$mmdir/$prog.c" -lpthread 2>>"$k32/build.log" ||
				die "$prog does not build as a 32-bit program: see $k32/build.log"
		done
	else
		log "no 32-bit toolchain (gcc-multilib): suite kselftest32 will skip; see $k32/build.log"
	fi
	# The series' selftests as kernel CI builds and runs them (suites
	# kselftest and nft_queue_ring: run_kselftest.sh of this install).
	ksft_install "$TREE" "$KBUILD" >"$KBUILD/kselftest-install.log" 2>&1 ||
		{ tail -n 40 "$KBUILD/kselftest-install.log" >&2; die "make kselftest-install failed: see $KBUILD/kselftest-install.log"; }
	# The benchmark driver, on the selftests' ring client: the project's
	# own copy (kselftest/, generated from and checked against the series),
	# not the one inside the kernel tree it happens to build.
	# liburing: the io_uring socket path a user could pick instead.
	gcc -O2 -Wall -I"$KBUILD/usr/include" -I"$ROOT/kselftest/netlink_mmap" \
		-o "$KBUILD/nlbench" "$ROOT/vm/bench/nlbench.c" -luring ||
		die "cannot build vm/bench/nlbench.c"
fi
