#!/bin/bash
# Mutation testing of the tests: apply each deliberate bug in vm/mutants/ to
# the series' ring code, build that kernel, run the tests that must catch it
# and check that they fail.  One TAP line per mutant.
#
#   vm/mutate.sh [NAME...]     default: every vm/mutants/*.patch
#
# A mutant is a patch against the tree with two header lines:
#   Mutant: what the bug is
#   Caught-by: test file or node id under pytests/ (comma-separated for more)
# It is caught when at least one of those tests fails (not errors, not
# skips).  The kernel is built in build/mutant/ from a worktree of the
# series tree, with ccache (one file changes from one mutant to the next);
# results in build/mutate/ (mutate.tap, and per mutant its build log, VM
# log and the pytest results).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

MUTANTS_DIR=$ROOT/vm/mutants
work=$BUILD/mutant
mtree=$work/linux
mkbuild=$work/kbuild
out=$BUILD/mutate

[[ -f $KBUILD/.config ]] || die "no test kernel in $KBUILD: run 'make kernel' first"
if [[ $# -gt 0 ]]; then
	patches=()
	for name in "$@"; do patches+=("$MUTANTS_DIR/$name.patch"); done
else
	mapfile -t patches < <(find "$MUTANTS_DIR" -name '*.patch' | sort)
fi
[[ ${#patches[@]} -gt 0 ]] || die "no mutants in $MUTANTS_DIR"

# a detached worktree of the series tree, reset before every mutant
if [[ ! -e $mtree/.git ]]; then
	rm -rf "$mtree"
	git -C "$TREE" worktree prune
	git -C "$TREE" worktree add -q --detach "$mtree" HEAD
fi
git -C "$mtree" checkout -q --detach "$(git -C "$TREE" rev-parse HEAD)"
mkdir -p "$mkbuild" "$out"
cp "$KBUILD/.config" "$KBUILD/nlmmap-fragment.config" "$mkbuild/"

header() { # field patch
	sed -n "s/^$1: //p" "$2" | head -n 1
}

# Pipelined: while mutant n boots and runs its tests, mutant n+1 builds (the
# link is mostly one thread, the guest mostly waits), so each mutant's kernel
# is copied out of the shared build folder into its own (removed once judged).

n=0 failed=0
tap=$out/mutate.tap
printf 'TAP version 13\n1..%s\n' "${#patches[@]}" >"$tap"
running=() # n name tests build-seconds pid start of the mutant under test

judge() { # n name tests build-seconds pid start
	local rc=0 caught count secs
	wait "$5" || rc=$?
	secs="build $4 s, tests $(($(date +%s) - $6)) s"
	rm -rf "$work/kernel-$2"
	caught=$(harness results failed-tests "$out/$2/pytest.xml" 2>/dev/null || true)
	if [[ -n $caught ]]; then
		count=$(wc -l <<<"$caught")
		printf 'ok %s %s caught by %s%s (%s)\n' "$1" "$2" "$(head -n 1 <<<"$caught")" \
			"$([[ $count -gt 1 ]] && printf ' and %s more' "$((count - 1))")" "$secs" >>"$tap"
	else
		printf 'not ok %s %s survived %s (see %s; vm exit %s; %s)\n' "$1" "$2" "$3" "$out/$2" "$rc" "$secs" >>"$tap"
		failed=$((failed + 1))
	fi
	log "mutant $1 $2: $(tail -n 1 "$tap")"
}

for patch in "${patches[@]}"; do
	n=$((n + 1))
	name=$(basename "$patch" .patch)
	what=$(header Mutant "$patch")
	tests=$(header Caught-by "$patch")
	[[ -n $what && -n $tests ]] || die "$patch: needs Mutant: and Caught-by: lines"
	log "mutant $n/${#patches[@]} $name: $what"
	start=$(date +%s)
	git -C "$mtree" checkout -q -- .
	status=
	if ! patch -s -p1 -d "$mtree" <"$patch" >"$out/$name.apply.log" 2>&1; then
		# the series moved under it: a mutant to write again, not a reason
		# to stop the others
		status="does not apply to the series (see $out/$name.apply.log)"
	elif ! make -s -C "$mtree" O="$mkbuild" CC="ccache gcc" -j"$JOBS" bzImage >"$out/$name.build.log" 2>&1; then
		status="does not build (see $out/$name.build.log)"
	else
		copy_bootable_kernel "$mkbuild" "$work/kernel-$name"
	fi
	built=$(($(date +%s) - start))
	# the previous mutant's verdict first: the TAP stays in order
	[[ ${#running[@]} -eq 0 ]] || judge "${running[@]}"
	running=()
	if [[ -n $status ]]; then
		printf 'not ok %s %s: %s\n' "$n" "$name" "$status" >>"$tap"
		failed=$((failed + 1))
		continue
	fi
	rm -rf "${out:?}/$name"
	KBUILD=$work/kernel-$name RESULTS=$out/$name "$ROOT/vm/run.sh" "pytest:$tests" >"$out/$name.run.log" 2>&1 &
	running=("$n" "$name" "$tests" "$built" "$!" "$(date +%s)")
done
[[ ${#running[@]} -eq 0 ]] || judge "${running[@]}"
git -C "$mtree" checkout -q -- .
cat "$tap"
[[ $failed -eq 0 ]]
