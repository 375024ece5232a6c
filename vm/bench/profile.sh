#!/bin/bash
# Runs inside the guest, as root: profile.sh NLBENCH OUTDIR
#
# Where the instructions go: `perf record -a` (cpu-clock, which under
# QEMU -icount samples every N guest instructions) around one nlbench run
# per variant, the namespaces of guest.sh.  Writes OUTDIR/<variant>.txt
# (the daemon's calls with their inclusive share of all samples, then the
# hottest symbols of every process), OUTDIR/<variant>.json (nlbench's
# line) and OUTDIR/perf.log (perf's own messages).  Prints TAP: a variant
# passes when nlbench succeeded and perf attributed samples.
set -euo pipefail

nlbench=$1 out=$2
mkdir -p "$out"
: >"$out/perf.log"

say() { printf 'nlmmap-guest: profile: %s\n' "$*" >&2; }

# the first payload size of vm/bench/matrix.txt, at its full packet count
read -r size packets _ < <(grep -v -e '^#' -e '^[[:space:]]*$' "$(dirname "$0")/matrix.txt" | head -n 1)
# every nfqueue path with both verdict styles (packed: per-packet only,
# vm/bench/guest.sh says why), then both dumps
nfq=()
for path in sock packed mmsg uring ring; do
	for verdict in each batch; do
		[[ $path == packed && $verdict == batch ]] || nfq+=("$path-$verdict")
	done
done
variants=()
for v in "${nfq[@]}"; do variants+=("nfq-drain-$size-$v"); done
variants+=(dump-sock dump-ring)
if ! command -v perf >/dev/null; then
	say "no perf binary in the guest (the host's root fs): install linux-perf"
	printf '1..1\nok 1 profile # SKIP no perf binary in the guest (install linux-perf)\n'
	exit 0
fi
echo "1..${#variants[@]}"

# shellcheck source=vm/bench/netns.sh
source "$(dirname "$0")/netns.sh"
nfq_netns nlp-nfq
dump_netns nlp-dump 100000

n=0
# profile NAME NETNS nlbench-args...: one TAP line
profile() {
	local name=$1 ns=$2 data=/tmp/nlp-$1.data samples
	shift 2
	n=$((n + 1))
	say "$name"
	if ! timeout 600 perf record -q -a -g -F 20000 -o "$data" -- ip netns exec "$ns" "$nlbench" "$@" \
		>"$out/$name.json" 2>>"$out/perf.log"; then
		echo "not ok $n - $name: nlbench or perf record failed (perf.log)"
		return
	fi
	# The daemon (comm nlbench; the generators are nlb-flow): samples
	# (one per 50 us of guest time on a CPU) of the calls on its path,
	# inclusive, then the hottest symbols themselves.
	{
		perf report -i "$data" --stdio --children --comms nlbench -n \
			--sort sym -g none --percent-limit 1
		perf report -i "$data" --stdio --no-children --sort comm,sym -g none --percent-limit 0.7
	} 2>>"$out/perf.log" | grep -v '^$' >"$out/$name.txt" || true
	# every command's share of all samples: the daemon's total
	# (harness.benchreport costs reads it)
	perf report -i "$data" --stdio --no-children --sort comm -g none 2>>"$out/perf.log" |
		grep -v '^$' >"$out/$name.comms" || true
	rm -f "$data"
	samples=$(sed -n 's/^# Samples: \([0-9.]*[KM]*\).*/\1/p' "$out/$name.txt" | head -n 1)
	if [[ -n $samples ]]; then
		echo "ok $n - $name ($samples samples)"
	else
		echo "not ok $n - $name: perf report found no samples"
	fi
}

for v in "${nfq[@]}"; do
	profile "nfq-drain-$size-$v" nlp-nfq nfq "${v%-*}" "${v#*-}" "$size" "$packets" 4 drain
done
profile dump-sock nlp-dump dump sock
profile dump-ring nlp-dump dump ring
ip netns del nlp-nfq
ip netns del nlp-dump
