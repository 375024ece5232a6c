#!/bin/bash
# make bench, the host side: socket path vs ring path, measured side by side.
#
# Builds the performance kernel (FLAVOUR=perf: the test config without
# the debug options) with the series and without it (base-perf, cached),
# boots each once and runs every workload of vm/bench/guest.sh in that
# boot (the sizes: vm/bench/matrix.txt); the report is
# vm/harness/benchreport.py; writes build/bench/: results.md (tables, ratios, targets),
# nfqueue.png, the raw JSON lines, both kernel configs and env.txt
# (command, kernels, clock, host).  Under TCG the guest clock counts
# instructions (QEMU -icount), so host load does not move the numbers;
# with KVM it is wall time.
#
# BENCH_SCALE=full|smoke|headline (default full), BENCH_CPUS (default 4),
# BENCH_CLOCK=icount|wall (default icount): wall runs TCG without -icount,
# single-threaded, and measures wall time, which host load moves: run it on
# an otherwise idle machine (make bench-wall: the headline points, 7
# repetitions, into build/bench-wall).
set -euo pipefail
export FLAVOUR=perf
# shellcheck source=vm/lib.sh
source "$(dirname "$0")/../lib.sh"

BENCH_SCALE=${BENCH_SCALE:-full}
BENCH_CPUS=${BENCH_CPUS:-4}
BENCH_CLOCK=${BENCH_CLOCK:-icount}
case $BENCH_CLOCK in
icount) OUT=${BENCH_OUT:-$BUILD/bench} VM_ICOUNT=1 ;;
wall) OUT=${BENCH_OUT:-$BUILD/bench-wall} VM_ICOUNT=0 VM_TCG_THREAD=single ;;
esac
export VM_TIMEOUT=${VM_TIMEOUT:-10800} VM_ICOUNT VM_TCG_THREAD VM_CPUS=$BENCH_CPUS BENCH_SCALE

"$VENV/bin/pip" install -q -r "$ROOT/vm/bench/requirements.txt" ||
	log "matplotlib could not be installed: the report will have no plot"
"$ROOT/vm/tree.sh"
"$ROOT/vm/build-kernel.sh"
base_kbuild=$(FLAVOUR=base-perf "$ROOT/vm/base-kernel.sh")

rm -rf "$OUT"
mkdir -p "$OUT"
started=$(date -u '+%Y-%m-%d %H:%M UTC')
start=$(date +%s)
# Both boots use the patched build's nlbench: the base has no nl_ring.h.
export NLBENCH=$KBUILD/nlbench
RESULTS=$OUT/patched "$ROOT/vm/run.sh" bench || log "the patched run had failures: see $OUT/patched"
RESULTS=$OUT/base KBUILD=$base_kbuild "$ROOT/vm/run.sh" bench || log "the base run had failures: see $OUT/base"
secs=$(($(date +%s) - start))

cp "$KBUILD/.config" "$OUT/config-patched"
cp "$base_kbuild/.config" "$OUT/config-base"
status() { sed -n "s/^$2=//p" "$OUT/$1/vm.status"; }
{
	printf 'command: make bench (BENCH_SCALE=%s BENCH_CPUS=%s BENCH_CLOCK=%s)\n' "$BENCH_SCALE" "$BENCH_CPUS" \
		"$BENCH_CLOCK"
	printf 'started: %s, both boots took %s s\n' "$started" "$secs"
	printf 'series: %s\n' "$(git -C "$TREE" log --oneline -1)"
	printf 'patched kernel: %s (%s)\n' "$(status patched kernel)" "$KBUILD"
	printf 'base kernel: %s (%s)\n' "$(status base kernel)" "$base_kbuild"
	printf 'accel: %s, guest clock: %s, %s vCPUs, %s\n' "$(status patched accel)" \
		"$(status patched clock)" "$BENCH_CPUS" "${VM_MEMORY:-3G}"
	printf 'qemu: %s\n' "$(qemu-system-x86_64 --version | head -n 1)"
	printf 'host: %s, %s CPUs, %s\n' "$(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -n 1)" \
		"$(nproc)" "$(uname -r)"
} >"$OUT/env.txt"

clock=$(status patched clock)
unit="guest-s = 10^9 guest instructions (QEMU -icount shift=0)"
[[ $clock == icount ]] || unit="guest-s = wall-clock seconds ($clock)"
harness benchreport report "$OUT" "$OUT/patched/bench.jsonl" "$OUT/base/bench.jsonl" --header "# Benchmark: socket path vs rings

$(sed 's/^/    /' "$OUT/env.txt")

Each number is the median over the repetitions in one boot, (min..max) beside it; $unit." \
	--caption "kernel $(status patched kernel) + series, ${started%% *}, $BENCH_CPUS vCPUs, $(status patched accel) ($clock clock)" >/dev/null
log "results: $OUT/results.md"
cat "$OUT/results.md"
