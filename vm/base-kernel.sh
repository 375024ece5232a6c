#!/bin/bash
# The bare base kernel (no series) with the same config, built once and
# cached; prints the directory to boot (vm/run.sh takes it as KBUILD).
#
# The benchmark's reference (make bench: the same workloads on the base).
# make check judges the upstream selftests against the nommap flavour
# instead, which costs a few compiles where this is a build.  The cache key
# covers everything that shapes the binary: the base commit, the config
# fragment and the virtme-ng version (its minimal config).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

# The same layout as the patched build (linux/ beside kbuild/): ccache runs
# the compiler with paths relative to the build directory, so the base's
# preprocessed sources equal the patched ones wherever the series does not
# touch them, and a cold base build costs a preprocessor run, not a compile.
# The flavour (base or base-perf, vm/flavours.sh) names both folders.
[[ $FLAVOUR == base* ]] || die "vm/base-kernel.sh builds FLAVOUR=base or base-perf, not '$FLAVOUR'"

"$ROOT/vm/tree.sh" >&2
key=$({ git -C "$TREE" rev-parse HEAD; cat "${FRAGMENTS[@]}" "$ROOT/vm/requirements.txt"; } | sha256sum | cut -c1-16)
cached=$CACHE/base-kernel/$key
if [[ ! -f $cached/arch/x86/boot/bzImage ]]; then
	log "building the bare base kernel (cached afterwards as $cached)"
	"$ROOT/vm/build-kernel.sh" >&2
	copy_bootable_kernel "$KBUILD" "$cached.tmp"
	mv "$cached.tmp" "$cached"
fi
printf '%s\n' "$cached"
