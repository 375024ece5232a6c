#!/bin/bash
# Make $TREE a git tree of the base with patches/net/*.patch (the net fix,
# ending at branch "net") and then patches/*.patch (the RFC) applied by
# `git am`.
#
# Base: Debian's linux-source (vm/base.pin), unpacked once into a cached git
# repository with one deterministic base commit; or KSRC=/path/to/tree, any
# kernel tree (its HEAD if it is a git repository).  SERIES=none builds the
# bare base.  An existing $TREE whose commits already equal patches/ is left
# alone; one with work that is not in patches/ is never thrown away unless
# FORCE=1.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

PATCHES=${PATCHES:-$ROOT/patches}
SERIES=${SERIES:-series}
BASE_BRANCH=base
# the last commit of the net fix (patches/net), the base when there is none
NET_BRANCH=net
# Fixed identity and dates: the base commit, and so every patch commit on top
# of it, gets the same hash on every machine.
export GIT_COMMITTER_NAME=nlmmap GIT_COMMITTER_EMAIL=nlmmap@localhost

commit_all() { # message
	git add -A -f
	GIT_AUTHOR_NAME=nlmmap GIT_AUTHOR_EMAIL=nlmmap@localhost \
		GIT_AUTHOR_DATE='2000-01-01T00:00:00Z' GIT_COMMITTER_DATE='2000-01-01T00:00:00Z' \
		git -c gc.auto=0 commit -q --no-verify -m "$1"
}

# A cached git repository holding the Debian base; prints its path.
debian_base() {
	local line deb version dir tmp
	line=$(harness fetch --pin "$ROOT/vm/base.pin" --cache "$CACHE") || exit 1
	deb=${line%%$'\t'*}
	version=${line#*$'\t'}
	dir="$CACHE/src/linux-source-$version"
	if [[ ! -d $dir/.git ]] || ! git -C "$dir" rev-parse -q --verify "refs/heads/$BASE_BRANCH" >/dev/null; then
		log "unpacking $(basename "$deb") into $dir"
		rm -rf "$dir" "$dir.tmp"
		tmp="$dir.tmp"
		mkdir -p "$tmp"
		dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tmp" --wildcards './usr/src/linux-source-*.tar.xz'
		mkdir -p "$dir"
		tar -xJf "$tmp"/usr/src/linux-source-*.tar.xz -C "$dir" --strip-components=1
		rm -rf "$tmp"
		(cd "$dir" && git init -q -b "$BASE_BRANCH" && commit_all "base: linux-source $version")
	fi
	printf '%s\n' "$dir"
}

# A git repository whose $BASE_BRANCH is KSRC's tree; prints its path.
ksrc_base() {
	[[ -f $KSRC/Makefile && -d $KSRC/net/netlink ]] || die "KSRC=$KSRC is not a kernel tree"
	if git -C "$KSRC" rev-parse -q --verify HEAD >/dev/null 2>&1; then
		[[ -z $(git -C "$KSRC" status --porcelain --untracked-files=no) ]] ||
			log "warning: KSRC has uncommitted changes; only its HEAD is used"
		printf '%s\n' "$KSRC"
	else
		local dir
		dir="$CACHE/ksrc/$(printf '%s' "$(cd "$KSRC" && pwd)" | sha256sum | cut -c1-16)"
		log "copying KSRC (not a git tree) into $dir"
		rm -rf "$dir" && mkdir -p "$dir"
		rsync -a --exclude=.git "$KSRC/" "$dir/"
		(cd "$dir" && git init -q -b "$BASE_BRANCH" && commit_all "base: $KSRC")
		printf '%s\n' "$dir"
	fi
}

if [[ -n ${KSRC:-} ]]; then
	base_repo=$(ksrc_base)
	base_ref=$(git -C "$base_repo" rev-parse HEAD)
else
	base_repo=$(debian_base)
	base_ref=$(git -C "$base_repo" rev-parse "$BASE_BRANCH")
fi

# Both series exported from $TREE, for comparison with patches/.
tree_matches_patches() {
	local tmp ours theirs
	git -C "$TREE" rev-parse -q --verify "$NET_BRANCH" >/dev/null || return 1
	git -C "$TREE" merge-base --is-ancestor "$NET_BRANCH" HEAD || return 1
	tmp=$(mktemp -d)
	mkdir "$tmp/net" "$tmp/rfc"
	format_patches "$TREE" "$BASE_BRANCH..$NET_BRANCH" "$tmp/net" "$NET_PREFIX"
	format_patches "$TREE" "$NET_BRANCH..HEAD" "$tmp/rfc" "$RFC_PREFIX"
	ours=$(cat "$tmp"/net/*.patch "$tmp"/rfc/*.patch 2>/dev/null | sha256sum)
	# shellcheck disable=SC2046
	theirs=$(if [[ $SERIES == none ]]; then printf ''; else
		cat $(series_patches "$PATCHES/net") $(series_patches "$PATCHES") /dev/null; fi | sha256sum)
	rm -rf "$tmp"
	[[ $ours == "$theirs" ]]
}

if [[ -d $TREE/.git ]]; then
	cur_base=$(git -C "$TREE" rev-parse -q --verify "$BASE_BRANCH" || true)
	if [[ $cur_base == "$base_ref" ]] && [[ -z $(git -C "$TREE" status --porcelain --untracked-files=no) ]] &&
		tree_matches_patches; then
		log "tree $TREE is up to date with patches/"
		exit 0
	fi
	applied=$(cat "$TREE/.git/nlmmap-applied" 2>/dev/null || true)
	if [[ ${FORCE:-0} != 1 ]] && { [[ -n $(git -C "$TREE" status --porcelain --untracked-files=no) ]] ||
		[[ $(git -C "$TREE" rev-parse HEAD) != "$applied" ]]; }; then
		die "$TREE has work that is not in patches/ (uncommitted changes or new commits).
Export it with 'make series', or throw it away with 'make tree FORCE=1'."
	fi
	log "re-applying the series in $TREE"
	git -C "$TREE" am --abort >/dev/null 2>&1 || true
	git -C "$TREE" fetch -q "$base_repo" "+$base_ref:refs/heads/$BASE_BRANCH-new"
	git -C "$TREE" checkout -q -f -B series "$BASE_BRANCH-new"
	git -C "$TREE" branch -q -f "$BASE_BRANCH" "$BASE_BRANCH-new"
	git -C "$TREE" branch -q -D "$BASE_BRANCH-new"
else
	log "cloning the base into $TREE"
	rm -rf "$TREE"
	mkdir -p "$(dirname "$TREE")"
	git clone -q --no-checkout "$base_repo" "$TREE"
	git -C "$TREE" checkout -q -f -B series "$base_ref"
	git -C "$TREE" branch -q -f "$BASE_BRANCH" "$base_ref"
fi

apply_series() { # folder
	local patch
	while IFS= read -r patch; do
		if ! git -C "$TREE" am -q --committer-date-is-author-date "$patch" >/dev/null 2>"$BUILD/am.log"; then
			git -C "$TREE" am --abort >/dev/null 2>&1 || true
			sed 's/^/  /' "$BUILD/am.log" >&2
			die "patch does not apply: patches/${patch#"$PATCHES/"} (on $base_ref)"
		fi
	done < <(series_patches "$1")
}

if [[ $SERIES != none ]]; then
	apply_series "$PATCHES/net"
	git -C "$TREE" branch -q -f "$NET_BRANCH" HEAD
	apply_series "$PATCHES"
else
	git -C "$TREE" branch -q -f "$NET_BRANCH" HEAD
fi
git -C "$TREE" rev-parse HEAD >"$TREE/.git/nlmmap-applied"
log "tree ready: $TREE ($(git -C "$TREE" rev-list --count "$BASE_BRANCH..HEAD") patches on the base)"
