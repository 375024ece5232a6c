#!/bin/bash
# Run a set of suites and judge them: job.sh SUITE...
#
#   host       pytest of the harness itself (vm/tests), on the host, no VM
#   series     per patch: Signed-off-by, kernel-doc, get_maintainer.pl, selftest
#              lists (vm/harness/seriescheck.py)
#   checkpatch scripts/checkpatch.pl --strict on every patch of the series
#   series-build  the whole series against the base: x86_64 W=1 and sparse,
#              NETLINK_MMAP=y and =n, the selftest sources as 64- and 32-bit
#              programs; no new warning (vm/harness/seriesbuild.py)
#   series-build-all  every patch, also clang, i386, arm64 64K pages, s390x,
#              and Sphinx over the Documentation folders the series touches
#   guest      in-guest pytest suites (pytests/)
#   kselftest  the series' C selftests (kselftest/, built from the tree)
#   kselftest32  the same built as 32-bit programs (the compat system calls)
#   nft_queue  the upstream nfqueue selftest from the tree, unchanged, on the
#              patched performance kernel (FLAVOUR=perf: its timeouts are not
#              met under KASAN); a failure is judged against the bare base
#              kernel of the same config (vm/harness/basediff.py)
#   nft_queue_ring  the same with every nf_queue listener on the rings
#   nfq_smp    the nfqueue ordering test on the performance kernel with
#              PERF_VM_CPUS (default 4) vCPUs
#   bench      every benchmark workload once, small (vm/bench/guest.sh smoke)
#   demo       the main job's show (vm/guest/demo.py)
#   fuzz       random operation sequences against the model for DURATION
#              seconds (pytests/test_model_random.py); failures -> pytests/replays/
#
# Everything lands in $RESULTS; the summary is printed last and the exit
# status says whether the whole job passed.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

[[ $# -gt 0 ]] || die "usage: vm/job.sh SUITE..."
rm -rf "$RESULTS"
mkdir -p "$RESULTS"
printf '%s\n' "$@" >"$RESULTS/suites.txt"

# One TAP point per patch: clean under checkpatch.pl --strict, or not.
# One more: kselftest/ holds exactly the selftests the series adds.
#
# checkpatch asks "does MAINTAINERS need updating?" (FILE_PATH_CHANGES) for
# every patch that creates a file and does not touch MAINTAINERS itself.  The
# question is answered instead of ignored: each file a patch creates must
# belong to the series' MAINTAINERS section in the tree.
MAINTAINERS_SECTION="NETLINK MEMORY-MAPPED RINGS"

unmaintained_files() { # patch: prints the files it creates outside the section
	local file sections
	awk '/^diff --git /{f=$4; sub(/^b\//, "", f)} /^new file mode/{print f}' "$1" |
		while read -r file; do
			sections=$(cd "$TREE" && { perl scripts/get_maintainer.pl --no-git --no-git-fallback \
				--sections -f "$file" </dev/null 2>/dev/null || true; })
			grep -qxF "$MAINTAINERS_SECTION" <<<"$sections" || printf '%s\n' "$file"
		done
}

checkpatch_suite() {
	local patches=() patch n=0 out missing
	mapfile -t patches < <(find "$ROOT/patches" -maxdepth 1 -name '[0-9][0-9][0-9][0-9]-*.patch' ! -name '0000-*' | sort)
	printf 'TAP version 13\n1..%s\n' "$((${#patches[@]} + 1))"
	for patch in "${patches[@]}"; do
		n=$((n + 1))
		missing=$(unmaintained_files "$patch")
		if out=$(cd "$TREE" && perl scripts/checkpatch.pl --strict --terse --no-summary \
			--ignore FILE_PATH_CHANGES "$patch" 2>&1) && [[ -z $missing ]]; then
			printf 'ok %s %s\n' "$n" "$(basename "$patch")"
		else
			printf 'not ok %s %s\n' "$n" "$(basename "$patch")"
			printf '%s\n' "$out" | sed 's/^/# /'
			[[ -z $missing ]] || printf '%s\n' "$missing" | sed "s/^/# not in MAINTAINERS section $MAINTAINERS_SECTION: /"
		fi
	done
	n=$((n + 1))
	if out=$(diff -r -x rx_ring -x tx_ring -x README.md "$ROOT/kselftest" "$TREE/tools/testing/selftests/net" 2>&1 |
		grep -v "^Only in $TREE/tools/testing/selftests/net: "); then
		printf 'not ok %s kselftest/ equals the selftests in the series\n' "$n"
		printf '%s\n' "$out" | sed 's/^/# /'
	else
		printf 'ok %s kselftest/ equals the selftests in the series\n' "$n"
	fi
}

vm_suites=() perf_suites=()
mapfile -t series_patches < <(find "$ROOT/patches" -maxdepth 1 -name '[0-9][0-9][0-9][0-9]-*.patch' ! -name '0000-*' | sort)
for suite in "$@"; do
	case $suite in
	host)
		log "host: harness tests (vm/tests)"
		(cd "$ROOT/vm" && "$VENV/bin/pytest" -p no:cacheprovider -q --junitxml="$RESULTS/host.xml" \
			-o junit_family=xunit1 tests) >"$RESULTS/host.log" 2>&1 || true
		tail -n 1 "$RESULTS/host.log" >&2
		;;
	checkpatch)
		log "checkpatch: --strict on patches/"
		checkpatch_suite >"$RESULTS/checkpatch.tap"
		;;
	series)
		log "series: per-patch checks without a build (vm/harness/seriescheck.py)"
		harness seriescheck "$TREE" base "${series_patches[@]}" --want netdev@vger.kernel.org \
			>"$RESULTS/series.tap" 2>"$RESULTS/series.log" || true
		;;
	series-build | series-build-all)
		# make check: the whole series on x86_64 (NETLINK_MMAP=y and =n, W=1,
		# sparse) and the selftest sources as 64- and 32-bit programs; make
		# series-check: every patch on every target
		build_args=(--whole --targets "x86_64,x86_64-nommap,selftests,selftests-m32")
		[[ $suite == series-build ]] || build_args=()
		log "$suite: W=1, sparse, selftest and docs builds without new warnings (vm/harness/seriesbuild.py)"
		harness seriesbuild "$TREE" base "${series_patches[@]}" --work "$BUILD/series-check" "${build_args[@]}" \
			>"$RESULTS/$suite.tap" 2>"$RESULTS/$suite.log" || true
		;;
	guest | kselftest | kselftest32 | bench | demo) vm_suites+=("$suite") ;;
	fuzz)
		export VM_TIMEOUT=${VM_TIMEOUT:-$((${DURATION:-600} + 1800))}
		vm_suites+=(fuzz)
		;;
	nft_queue | nft_queue_ring | nfq_smp) perf_suites+=("$suite") ;;
	*) die "unknown suite '$suite'" ;;
	esac
done

if [[ ${#vm_suites[@]} -gt 0 ]]; then
	"$ROOT/vm/run.sh" "${vm_suites[@]}"
fi
# make fuzz: a failing sequence becomes a stored replay (test_stored_replay)
for replay in "$RESULTS"/replays/*.json; do
	[[ -f $replay ]] || continue
	cp "$replay" "$ROOT/pytests/replays/"
	log "fuzz: new replay pytests/replays/$(basename "$replay"): the kernel and the model disagree; commit it with the fix"
done

# The performance kernel's boot and the base boots judging it: 4 vCPUs on
# single-threaded TCG (see vm/run.sh).
perf_cpus=${PERF_VM_CPUS:-4}
if [[ ${#perf_suites[@]} -gt 0 ]]; then
	# One boot of the performance kernel; report.py judges its VM status and
	# kernel log like the main boot's.
	env -u TREE -u KBUILD FLAVOUR=perf RESULTS="$RESULTS/perf" VM_CPUS="$perf_cpus" VM_TCG_THREAD=single \
		"$ROOT/vm/run.sh" "${perf_suites[@]}"
	for suite in "${perf_suites[@]}"; do
		if [[ -f $RESULTS/perf/$suite.tap ]]; then
			mv "$RESULTS/perf/$suite.tap" "$RESULTS/$suite.patched.tap"
		elif [[ -f $RESULTS/perf/$suite.xml ]]; then
			mv "$RESULTS/perf/$suite.xml" "$RESULTS/$suite.xml"
		fi
	done
fi

# Judging the upstream script on the patched kernel (vm/harness/basediff.py):
# - ring mode must pass exactly where socket mode passes in the same boot:
#   a check the socket run fails too becomes a skip;
# - socket mode must do as well as the bare base (same config, same vCPUs):
#   under emulation some checks fail on the base too.  Timing varies between
#   boots, so when that judgement fails the base is booted once more and both
#   base runs count; when it still fails, the patched kernel is booted once
#   more and a check must fail on both patched runs.
if [[ -f $RESULTS/nft_queue_ring.patched.tap ]]; then
	if [[ -f $RESULTS/nft_queue.patched.tap ]] && grep -q '^not ok' "$RESULTS/nft_queue_ring.patched.tap"; then
		harness basediff --reference "socket mode in the same boot" "$RESULTS/nft_queue.patched.tap" \
			"$RESULTS/nft_queue_ring.patched.tap" >"$RESULTS/nft_queue_ring.tap"
	else
		cp "$RESULTS/nft_queue_ring.patched.tap" "$RESULTS/nft_queue_ring.tap"
	fi
fi
if [[ -f $RESULTS/nft_queue.patched.tap ]]; then
	cp "$RESULTS/nft_queue.patched.tap" "$RESULTS/nft_queue.tap"
	if grep -q '^not ok' "$RESULTS/nft_queue.patched.tap"; then
		base_kbuild=$(FLAVOUR=base-perf "$ROOT/vm/base-kernel.sh")
		base_taps=()
		for base_run in base base2; do
			RESULTS=$RESULTS/$base_run KBUILD=$base_kbuild VM_CPUS=$perf_cpus VM_TCG_THREAD=single \
				"$ROOT/vm/run.sh" nft_queue ||
				log "the base kernel run failed; see $RESULTS/$base_run"
			base_taps+=("$RESULTS/$base_run/nft_queue.tap")
			harness basediff "${base_taps[@]}" "$RESULTS/nft_queue.patched.tap" >"$RESULTS/nft_queue.tap"
			! grep -q '^not ok' "$RESULTS/nft_queue.tap" || { [[ $base_run == base2 ]] ||
				log "judged against one base run: failures; booting the base once more"; continue; }
			break
		done
		# Still failing: a regression fails again, a missed timeout seldom
		# does.  One more boot of the patched kernel; a check counts against
		# the series only when it failed on both patched runs.
		if grep -q '^not ok' "$RESULTS/nft_queue.tap"; then
			log "judged against two base runs: failures; booting the patched kernel once more"
			env -u TREE -u KBUILD FLAVOUR=perf RESULTS="$RESULTS/perf2" VM_CPUS="$perf_cpus" \
				VM_TCG_THREAD=single "$ROOT/vm/run.sh" nft_queue ||
				log "the second patched run failed; see $RESULTS/perf2"
			harness basediff --again "$RESULTS/perf2/nft_queue.tap" "${base_taps[@]}" \
				"$RESULTS/nft_queue.patched.tap" >"$RESULTS/nft_queue.tap"
		fi
	fi
fi
harness report "$RESULTS"
