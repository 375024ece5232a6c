#!/bin/bash
# Runs inside the guest, as root: run-suites.sh RESULTS_DIR SUITE...
# Writes RESULTS_DIR/<suite>.tap or .xml per suite and dmesg.txt at the end.
# Lines prefixed "nlmmap-guest: " are progress the host shows.
set -uo pipefail
results=$1
shift
# Everything the guest needs from the host is in the manifest vm/run.sh
# writes (expect.env: paths, the venv, the expected kernel); nothing of the
# host's scripts is sourced.
# shellcheck disable=SC1091
source "$results/expect.env"
export NLMMAP_EXPECT_RELEASE NLMMAP_EXPECT_BUILD_ID NLMMAP_KBUILD NLMMAP_TREE NLMMAP_NLBENCH NLMMAP_BENCH_SCALE \
	NLMMAP_FUZZ_SECONDS NLMMAP_ACCEL
export PYTHONDONTWRITEBYTECODE=1
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
VENV=${NLMMAP_VENV:-/var/lib/nlmmap/venv}
PATH=$VENV/bin:$PATH

harness() { # the harness's Python tools (vm/harness)
	PYTHONPATH=$ROOT/vm "$VENV/bin/python3" -m "harness.$1" "${@:2}"
}

say() { printf 'nlmmap-guest: %s\n' "$*"; }

tap_counts() { # suite rc
	say "$1: exit $2, $(grep -c '^ok' "$results/$1.tap") ok, $(grep -c '^not ok' "$results/$1.tap") not ok"
}

# An upstream shell selftest, its PASS:/FAIL:/SKIP: lines turned into TAP.
# Under emulation the upstream scripts get KSFT_MACHINE_SLOW=yes, as NIPA
# gives its slow runners: nft_queue.sh then moves 25 MB instead of 200 MB per
# TCP/SCTP test (200 MB took 48-55 s of its 60 s timeout under TCG).
run_shell_selftest() { # suite dir script
	local suite=$1 dir=$2 script=$3 rc slow=no
	[[ ${NLMMAP_ACCEL:-} == kvm ]] || slow=yes
	(cd "$dir" && KSFT_MACHINE_SLOW=$slow "./$script") >"$results/$suite.log" 2>&1
	rc=$?
	harness shelltap "$results/$suite.log" "$rc" >"$results/$suite.tap"
	tap_counts "$suite" "$rc"
}

# kselftest-harness programs: TAP each, merged into one suite.
run_kselftests() { # suite dir program...
	local suite=$1 dir=$2 program rc merge=()
	shift 2
	: >"$results/$suite.log"
	for program in "$@"; do
		"$dir/$program" >"$results/$suite-$program.tap" 2>>"$results/$suite.log"
		rc=$?
		merge+=("$program" "$results/$suite-$program.tap" "$rc")
	done
	harness tapmerge "${merge[@]}" >"$results/$suite.tap"
	tap_counts "$suite" "$rc"
}

run_pytest() { # suite path...
	local suite=$1
	shift
	"$VENV/bin/pytest" -p no:cacheprovider -q -rs --durations=20 --junitxml="$results/$suite.xml" \
		-o junit_family=xunit1 "$@" >"$results/$suite.log" 2>&1
	say "$suite: $(tail -n 1 "$results/$suite.log")"
}

say "kernel $(uname -r) up, $(nproc) CPUs"
for suite in "$@"; do
	say "running $suite"
	case $suite in
	guest) run_pytest guest "$ROOT/pytests" ;;
	# random operation sequences against the model for a while (make fuzz);
	# a failing sequence, shrunk, lands in replays/ for the host to keep
	fuzz) NLMMAP_FUZZ_SECONDS=$NLMMAP_FUZZ_SECONDS NLMMAP_REPLAY_DIR=$results/replays \
		run_pytest fuzz "$ROOT/pytests/test_model_random.py::test_random_operation_sequences" ;;
	# the nfqueue ordering test again, on this boot's vCPUs (job.sh boots
	# the performance kernel with more of them)
	nfq_smp) run_pytest nfq_smp "$ROOT/pytests/test_nfq_ring.py" -k test_ring_order_is_packet_id_order ;;
	# named tests of pytests/, comma-separated (vm/mutate.sh)
	pytest:*)
		IFS=, read -ra nodes <<<"${suite#pytest:}"
		run_pytest pytest "${nodes[@]/#/$ROOT/pytests/}"
		;;
	kselftest) run_kselftests kselftest "$NLMMAP_TREE/tools/testing/selftests/net/netlink_mmap" rx_ring tx_ring ;;
	# the same tests as 32-bit programs: the compat system calls
	kselftest32)
		if [[ -x $NLMMAP_KBUILD/kselftest32/tx_ring ]]; then
			run_kselftests kselftest32 "$NLMMAP_KBUILD/kselftest32" rx_ring tx_ring
		else
			printf '1..1\nok 1 rx_ring and tx_ring as 32-bit programs # SKIP no 32-bit build (gcc-multilib missing: see %s)\n' \
				"$NLMMAP_KBUILD/kselftest32/build.log" >"$results/kselftest32.tap"
			say "kselftest32: skipped, no 32-bit build"
		fi
		;;
	nft_queue) run_shell_selftest nft_queue "$NLMMAP_TREE/tools/testing/selftests/net/netfilter" nft_queue.sh ;;
	# the same script with every nf_queue listener on RX and TX rings
	nft_queue_ring) NF_QUEUE_RING=1 run_shell_selftest nft_queue_ring \
		"$NLMMAP_TREE/tools/testing/selftests/net/netfilter" nft_queue.sh ;;
	# every benchmark workload: once and small (smoke, make check) or in
	# full (make bench)
	bench)
		paths="sock"
		# not zcat | grep -q: grep's early exit would fail the pipeline
		[[ $'\n'$(zcat /proc/config.gz)$'\n' != *$'\nCONFIG_NETLINK_MMAP=y\n'* ]] || paths="sock ring"
		"$ROOT/vm/bench/guest.sh" "$NLMMAP_NLBENCH" "$results/bench.jsonl" "$NLMMAP_BENCH_SCALE" "$paths" \
			>"$results/bench.log" 2>&1
		rc=$?
		harness bench tap --paths "$paths" "$results/bench.jsonl" >"$results/bench.tap"
		tap_counts bench "$rc"
		;;
	# where the instructions go, per variant (make bench-profile)
	profile)
		"$ROOT/vm/bench/profile.sh" "$NLMMAP_NLBENCH" "$results/profile" >"$results/profile.tap" 2>"$results/profile.log"
		tap_counts profile "$?"
		;;
	demo) PYTHONPATH=$ROOT:$ROOT/vm "$VENV/bin/python3" "$ROOT/vm/guest/demo.py" "$results/demo.tap" 2>&1 |
		sed 's/^/nlmmap-guest: /' ;;
	*) say "unknown suite $suite" ;;
	esac
done
# Leaks no test asserts: kmemleak (test kernel) reports objects nothing
# points to any more, if they stay so over two scans; its summary line goes
# to the kernel log, where the splat scan fails the run on it.
leaks=/sys/kernel/debug/kmemleak
mountpoint -q /sys/kernel/debug || mount -t debugfs none /sys/kernel/debug 2>/dev/null || true
if [[ -w $leaks ]]; then
	say "kmemleak: scanning"
	echo scan >"$leaks" && sleep 6 && echo scan >"$leaks"
	cat "$leaks" >"$results/kmemleak.txt"
	say "kmemleak: $(grep -c '^unreferenced object' "$results/kmemleak.txt") unreferenced objects"
fi
dmesg >"$results/dmesg.txt"
say "done"
