# shellcheck shell=bash
# Common settings of the vm/ scripts; sourced, never run.
# Every path can be overridden from the environment (or make VAR=...).

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# Caches that outlive a checkout: base source, apt state, ccache, venv.
# Not under /var/cache: the guest mounts a tmpfs there and must see the venv.
CACHE=${NLMMAP_CACHE:-/var/lib/nlmmap}
BUILD=${BUILD:-$ROOT/build}
TREE=${TREE:-$BUILD/linux}
KBUILD=${KBUILD:-$BUILD/kbuild}
RESULTS=${RESULTS:-$BUILD/results}
VENV=${VENV:-$CACHE/venv}
FRAGMENT=${FRAGMENT:-$ROOT/vm/kernel.config}
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
