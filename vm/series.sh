#!/bin/bash
# Export the commits of $TREE above the base back into patches/: those up to
# branch "net" (the net fix) into patches/net/, the rest (the RFC) into
# patches/, each series with its cover letter and netdev's subject prefix
# for its tree (lib.sh).
#
# Exporting an unchanged tree reproduces patches/ byte for byte
# (format_patches in lib.sh).  AUTHOR="Name <address>" makes that person the
# author and signer of every patch and the series' maintainer
# (vm/harness/author.py).  A cover letter keeps its hand-written subject and
# blurb; its shortlog and diffstat are regenerated.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

PATCHES=${PATCHES:-$ROOT/patches}
[[ -e $TREE/.git ]] || die "no tree at $TREE: run 'make tree' first"
[[ -z $(git -C "$TREE" status --porcelain --untracked-files=no) ]] ||
	die "$TREE has uncommitted changes: commit them (git add -f: Debian's .gitignore hides the tree) first"
git -C "$TREE" rev-parse -q --verify net >/dev/null ||
	die "$TREE has no branch 'net' (where the net fix ends): run 'make tree' first"
git -C "$TREE" merge-base --is-ancestor net HEAD ||
	die "branch 'net' of $TREE is not below HEAD: after changing the net fix, rebase the RFC onto it and move 'net' to its last commit"
count=$(git -C "$TREE" rev-list --count net..HEAD)
net_count=$(git -C "$TREE" rev-list --count base..net)
[[ $count -gt 0 ]] || die "no RFC commits above branch 'net' in $TREE"

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# export_series RANGE FOLDER PREFIX: the commits of RANGE, with a cover
# letter, replace the patch files of FOLDER
export_series() {
	local range=$1 folder=$2 prefix=$3 tmp
	tmp="$out/$(basename "$folder")"
	mkdir -p "$tmp"
	format_patches "$TREE" "$range" "$tmp" "$prefix" --cover-letter
	if [[ -f $folder/0000-cover-letter.patch ]]; then
		harness cover "$folder/0000-cover-letter.patch" "$tmp/0000-cover-letter.patch"
	fi
	# AUTHOR="Name <address>": the person who will post the series signs it
	if [[ -n ${AUTHOR:-} ]]; then
		harness author "$AUTHOR" "$tmp"/*.patch || die "AUTHOR: see above"
	fi
	mkdir -p "$folder"
	find "$folder" -maxdepth 1 -name '[0-9][0-9][0-9][0-9]-*.patch' -delete
	cp "$tmp"/*.patch "$folder/"
}

if [[ $net_count -gt 0 ]]; then
	export_series base..net "$PATCHES/net" "$NET_PREFIX"
	log "exported the net fix, $net_count patch(es) and its cover letter, to $PATCHES/net"
fi
export_series net..HEAD "$PATCHES" "$RFC_PREFIX"
log "exported $count patch(es) and the cover letter to $PATCHES"

# kselftest/ is generated: the selftests as the series' last patch leaves
# them (tracked files only, not the programs a build leaves in the tree)
if [[ $PATCHES == "$ROOT/patches" ]]; then
	rm -rf "$ROOT/kselftest/netlink_mmap"
	git -C "$TREE" archive HEAD tools/testing/selftests/net/netlink_mmap |
		tar -x -C "$ROOT/kselftest" --strip-components=4
	log "regenerated kselftest/netlink_mmap from the series"
fi
