#!/bin/bash
# Runs inside the guest, as root: guest.sh NLBENCH OUT.jsonl full|smoke|headline PATHS
#
# Every benchmark point once per repetition, the variants of a point
# interleaved so that drift within the boot spreads over all of them; one
# JSON line per run (nlbench's, plus "rep").  PATHS: the nfqueue paths,
# "sock packed mmsg uring ring", without ring on the base; the dump and
# events workloads run in the sock and ring paths among them.  "packed"
# runs per-packet verdicts only: with batch verdicts every socket path sends
# one message per round, which is the sock path.  A failing run is recorded
# as {"failed": ...} and the script goes on; its exit status says if any
# failed.
set -euo pipefail

nlbench=$1 out=$2 scale=$3
read -ra paths <<<"$4"

case $scale in
full) reps=3 routes=100000 events=20000 ;;
smoke) reps=1 routes=1000 events=1000 ;;
# the headline points only (nfqueue at 64 and 1500 bytes, every path, and
# the copies), with more repetitions: for a wall clock (make bench-wall)
headline) reps=7 routes=0 events=0 ;;
*) echo "guest.sh: scale must be full, smoke or headline" >&2; exit 2 ;;
esac
# the payload sizes and packets per point: vm/bench/matrix.txt
sizes=()
declare -A packets=()
while read -r size full smoke; do
	[[ -n $size && $size != \#* ]] || continue
	sizes+=("$size")
	if [[ $scale == smoke ]]; then packets[$size]=$smoke; else packets[$size]=$full; fi
done <"$(dirname "$0")/matrix.txt"
[[ $scale != headline ]] || sizes=(64 1500)
[[ ${#sizes[@]} -gt 0 ]] || { echo "guest.sh: no sizes in matrix.txt" >&2; exit 2; }
flows=4
failed=0

say() { printf 'nlmmap-guest: bench: %s\n' "$*"; }

# The RX ring size of the nfqueue runs, and the series a run belongs to:
# "main", "ringsize" (the same point with a small ring: poll() scans the
# ring when nothing waits, so its cost grows with the frame count) or
# "forward" (the packets forwarded between two netns instead of sent to a
# local socket: nlbench's NLBENCH_FORWARD, at the sizes of the headline).
ring_kb=4096 series=main forward=""
forward_sizes=(64 1500)

# record REP NETNS nlbench-args...: one JSON line, or a "failed" line
record() {
	local rep=$1 ns=$2 line
	shift 2
	# A run that hangs is recorded as failed instead of stalling the boot
	# (guest seconds: under -icount they count instructions).
	if line=$(timeout 600 ip netns exec "$ns" env "NLBENCH_RING_KB=$ring_kb" "NLBENCH_FORWARD=$forward" \
		"$nlbench" "$@" 2>/tmp/nlbench.err); then
		printf '%s, "series": "%s", "rep": %s}\n' "${line%\}}" "$series" "$rep" >>"$out"
	else
		failed=1
		printf '{"failed": "%s", "error": "%s", "rep": %s}\n' "$*" \
			"$(tr -d '"\134' </tmp/nlbench.err | tr '\n' ' ')" "$rep" >>"$out"
		say "FAILED: nlbench $*: $(cat /tmp/nlbench.err)"
	fi
}

# nfq_points REP NETNS SIZE: every nfqueue path and verdict style, both modes
nfq_points() {
	local rep=$1 ns=$2 size=$3 mode path verdict
	for mode in drain flood; do
		for path in "${paths[@]}"; do
			for verdict in each batch; do
				[[ $path == packed && $verdict == batch ]] && continue
				record "$rep" "$ns" nfq "$path" "$verdict" "$size" "${packets[$size]}" "$flows" "$mode"
			done
		done
	done
}

# shellcheck source=vm/bench/netns.sh
source "$(dirname "$0")/netns.sh"

: >"$out"
nfq_netns nlb-nfq
fwd_netns nlb-router nlb-src nlb-dst
say "adding $routes routes to the dump netns"
dump_netns nlb-dump "$routes"

for ((rep = 1; rep <= reps; rep++)); do
	say "repetition $rep of $reps"
	for size in "${sizes[@]}"; do
		nfq_points "$rep" nlb-nfq "$size"
		record "$rep" nlb-nfq copy "$size" "${packets[$size]}"
	done
	# the headline scale stops at the main nfqueue points and the copies
	[[ $scale != headline ]] || continue
	if [[ " ${paths[*]} " == *" ring "* ]]; then
		series=ringsize
		for ring_kb in 128 4096; do
			for mode in drain flood; do
				record "$rep" nlb-nfq nfq ring batch 64 "${packets[64]}" "$flows" "$mode"
			done
		done
		ring_kb=4096 series=main
	fi
	series=forward forward="nlb-src nlb-dst $FORWARD_DST"
	for size in "${forward_sizes[@]}"; do
		nfq_points "$rep" nlb-router "$size"
	done
	series=main forward=""
	for path in "${paths[@]}"; do
		[[ $path == sock || $path == ring ]] || continue
		record "$rep" nlb-dump dump "$path"
		fresh_netns nlb-events
		record "$rep" nlb-events events "$path" $((256 << 10)) "$events"
	done
done
ip netns del nlb-events 2>/dev/null || true
ip netns del nlb-dump
ip netns del nlb-nfq
ip netns del nlb-router
ip netns del nlb-src
ip netns del nlb-dst
exit "$failed"
