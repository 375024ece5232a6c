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
# series tree, with ccache (one file changes from one mutant to the next).
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
cp "$KBUILD/.config" "$mkbuild/.config"

header() { # field patch
	sed -n "s/^$1: //p" "$2" | head -n 1
}

n=0 failed=0
tap=$out/mutate.tap
printf 'TAP version 13\n1..%s\n' "${#patches[@]}" >"$tap"
for patch in "${patches[@]}"; do
	n=$((n + 1))
	name=$(basename "$patch" .patch)
	what=$(header Mutant "$patch")
	tests=$(header Caught-by "$patch")
	[[ -n $what && -n $tests ]] || die "$patch: needs Mutant: and Caught-by: lines"
	log "mutant $n/${#patches[@]} $name: $what"
	start=$(date +%s)
	git -C "$mtree" checkout -q -- .
	if ! patch -s -p1 -d "$mtree" <"$patch" >"$out/$name.apply.log" 2>&1; then
		# the series moved under it: a mutant to write again, not a reason
		# to stop the others
		printf 'not ok %s %s: does not apply to the series (see %s)\n' "$n" "$name" "$out/$name.apply.log" >>"$tap"
		failed=$((failed + 1))
		continue
	fi
	results=$out/$name
	rm -rf "$results"
	if ! make -s -C "$mtree" O="$mkbuild" CC="ccache gcc" -j"$JOBS" bzImage >"$out/$name.build.log" 2>&1; then
		printf 'not ok %s %s: does not build (see %s)\n' "$n" "$name" "$out/$name.build.log" >>"$tap"
		failed=$((failed + 1))
		continue
	fi
	KBUILD=$mkbuild RESULTS=$results "$ROOT/vm/run.sh" "pytest:$tests" >/dev/null 2>&1 || true
	caught=$(harness results failed-tests "$results/pytest.xml" 2>/dev/null || true)
	if [[ -n $caught ]]; then
		count=$(wc -l <<<"$caught")
		printf 'ok %s %s caught by %s%s (%s s)\n' "$n" "$name" "$(head -n 1 <<<"$caught")" \
			"$([[ $count -gt 1 ]] && printf ' and %s more' "$((count - 1))")" "$(($(date +%s) - start))" >>"$tap"
	else
		printf 'not ok %s %s survived %s (see %s; %s s)\n' "$n" "$name" "$tests" "$results" \
			"$(($(date +%s) - start))" >>"$tap"
		failed=$((failed + 1))
	fi
done
git -C "$mtree" checkout -q -- .
cat "$tap"
[[ $failed -eq 0 ]]
