#!/bin/bash
# Export the commits of $TREE above the base back into patches/.
#
# git format-patch with fixed options (zero From hashes, no version
# signature) so that exporting an unchanged tree reproduces patches/ byte for
# byte.  AUTHOR="Name <address>" makes that person the author and signer of
# every patch and the series' maintainer (vm/harness/author.py).  The cover letter keeps its hand-written subject and blurb; its
# shortlog and diffstat are regenerated.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

PATCHES=${PATCHES:-$ROOT/patches}
[[ -e $TREE/.git ]] || die "no tree at $TREE: run 'make tree' first"
[[ -z $(git -C "$TREE" status --porcelain --untracked-files=no) ]] ||
	die "$TREE has uncommitted changes: commit them (git add -f: Debian's .gitignore hides the tree) first"
count=$(git -C "$TREE" rev-list --count base..HEAD)
[[ $count -gt 0 ]] || die "no commits above the base in $TREE"

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
git -C "$TREE" format-patch -q --numbered --zero-commit --no-signature --cover-letter -o "$out" base..HEAD

cover="$out/0000-cover-letter.patch"
old_cover="$PATCHES/0000-cover-letter.patch"
if [[ -f $old_cover ]]; then
	harness cover "$old_cover" "$cover"
fi

# AUTHOR="Name <address>": the person who will post the series signs it
if [[ -n ${AUTHOR:-} ]]; then
	harness author "$AUTHOR" "$out"/*.patch || die "AUTHOR: see above"
fi

mkdir -p "$PATCHES"
find "$PATCHES" -maxdepth 1 -name '[0-9][0-9][0-9][0-9]-*.patch' -delete
cp "$out"/*.patch "$PATCHES/"
log "exported $count patch(es) and the cover letter to $PATCHES"

# kselftest/ is generated: the selftests as the series' last patch leaves
# them (tracked files only, not the programs a build leaves in the tree)
if [[ $PATCHES == "$ROOT/patches" ]]; then
	rm -rf "$ROOT/kselftest/netlink_mmap"
	git -C "$TREE" archive HEAD tools/testing/selftests/net/netlink_mmap |
		tar -x -C "$ROOT/kselftest" --strip-components=4
	log "regenerated kselftest/netlink_mmap from the series"
fi
