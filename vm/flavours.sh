# shellcheck shell=bash
# The kernels the pipeline builds and boots, each defined here and nowhere
# else.  Sourced by lib.sh; a script picks one with FLAVOUR=<name> (default
# test) and everything about that kernel follows from the name:
#
#   flavour    tree              build folder            fragments (vm/)                     series   may not stick
#   test       build/linux       build/kbuild            kernel.config                       applied  -
#   perf       build/linux       build/kbuild-perf       kernel.config kernel-perf.config    applied  -
#   nommap     build/linux       build/kbuild-nommap     the same + kernel-nommap.config     applied  -
#   base       build/base/linux  build/base/kbuild       kernel.config                       none     CONFIG_NETLINK_MMAP
#   base-perf  build/base/linux  build/base/kbuild-perf  kernel.config kernel-perf.config    none     CONFIG_NETLINK_MMAP
#
# test is the CI kernel (KASAN, lockdep, kmemleak, the irqsoff tracer);
# perf drops the debug options, for the benchmark and for the upstream
# selftests whose timeouts KASAN under emulation does not meet; nommap is
# perf with the feature compiled out, the reference make check judges those
# selftests against (its build folder starts as a copy of perf's, SEED, so
# only what CONFIG_NETLINK_MMAP reaches is compiled again, and it builds no
# programs: perf's build of the same tree made them); the base flavours are
# the bare base with the same configs, built once and cached
# (vm/base-kernel.sh), the benchmark's reference.  "May not stick": options
# of the fragments that the tree cannot have (the base lacks the series' own
# symbols).
#
# TREE and KBUILD from the environment replace the test or perf flavour's
# folder for one run (a mutant kernel, another tree), and SERIES=none builds
# either without the series; nommap and the base flavours always use their
# own folders (nommap starts from perf's and shares its programs), so a
# caller's override never leaks into them.

FLAVOURS=(test perf nommap base base-perf)

# Set TREE, KBUILD, FRAGMENTS, SERIES, KCONFIG_IGNORE, SEED and PROGRAMS for
# flavour $1 (lib.sh sets BUILD first).
# shellcheck disable=SC2153
use_flavour() {
	local fragments=("$ROOT/vm/kernel.config") suffix=
	# read by vm/build-kernel.sh
	# shellcheck disable=SC2034
	SEED='' PROGRAMS=1
	case $1 in
	test | base) ;;
	perf | base-perf)
		fragments+=("$ROOT/vm/kernel-perf.config")
		suffix=-perf
		;;
	nommap)
		fragments+=("$ROOT/vm/kernel-perf.config" "$ROOT/vm/kernel-nommap.config")
		suffix=-nommap
		;;
	*) die "FLAVOUR must be one of ${FLAVOURS[*]}, not '$1' (see vm/flavours.sh)" ;;
	esac
	if [[ $1 == base* ]]; then
		TREE=$BUILD/base/linux
		KBUILD=$BUILD/base/kbuild$suffix
		SERIES=none
		KCONFIG_IGNORE=CONFIG_NETLINK_MMAP
	elif [[ $1 == nommap ]]; then
		TREE=$BUILD/linux
		KBUILD=$BUILD/kbuild$suffix
		SERIES=series
		KCONFIG_IGNORE=
		# shellcheck disable=SC2034
		SEED=$BUILD/kbuild-perf PROGRAMS=0
	else
		TREE=${TREE:-$BUILD/linux}
		KBUILD=${KBUILD:-$BUILD/kbuild$suffix}
		SERIES=${SERIES:-series}
		KCONFIG_IGNORE=
		[[ $SERIES == series ]] || KCONFIG_IGNORE=CONFIG_NETLINK_MMAP
	fi
	# shellcheck disable=SC2034 # read by the scripts that source lib.sh
	FRAGMENTS=("${fragments[@]}")
	FLAVOUR=$1
	export FLAVOUR SERIES KCONFIG_IGNORE
}
