# shellcheck shell=bash
# Common settings of the vm/ scripts; sourced, never run.
# Every path can be overridden from the environment (or make VAR=...).

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# Caches that outlive a checkout: base source, apt state, ccache, venv.
# Not under /var/cache: the guest mounts a tmpfs there and must see the venv.
CACHE=${NLMMAP_CACHE:-/var/lib/nlmmap}
BUILD=${BUILD:-$ROOT/build}
TREE=${TREE:-$BUILD/linux}
# Kernel profile: "test" is the CI kernel (KASAN, lockdep); "perf" is the
# same config without the debug options (vm/kernel-perf.config on top), for
# the benchmark and for upstream selftests that time out under KASAN.
PROFILE=${PROFILE:-test}
case $PROFILE in
test) profile_suffix= ;;
perf) profile_suffix=-perf ;;
*) printf 'error: PROFILE must be test or perf, not %s\n' "$PROFILE" >&2; exit 1 ;;
esac
PERF_KBUILD=${PERF_KBUILD:-$BUILD/kbuild-perf}
if [[ $PROFILE == perf ]]; then
	KBUILD=${KBUILD:-$PERF_KBUILD}
else
	KBUILD=${KBUILD:-$BUILD/kbuild}
fi
RESULTS=${RESULTS:-$BUILD/results}
VENV=${VENV:-$CACHE/venv}
# Config fragments, space-separated, applied in order (a later line wins).
FRAGMENT=${FRAGMENT:-$ROOT/vm/kernel.config${profile_suffix:+ $ROOT/vm/kernel$profile_suffix.config}}
# shellcheck disable=SC2034 # used by the scripts that source this file
read -ra FRAGMENTS <<<"$FRAGMENT"
JOBS=${JOBS:-$(nproc)}

export CCACHE_DIR=${CCACHE_DIR:-$CACHE/ccache}
# Out-of-tree builds pass absolute paths; make them relative so that a fresh
# clone in another folder still hits the cache.
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$ROOT}
export CCACHE_NOHASHDIR=1
export CCACHE_MAXSIZE=${CCACHE_MAXSIZE:-8G}

PATH=$VENV/bin:$PATH
export PATH

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Run the host-side Python harness (vm/harness) with the venv's python.
harness() {
	PYTHONPATH=$ROOT/vm "$VENV/bin/python3" -m "harness.$1" "${@:2}"
}
