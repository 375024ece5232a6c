#!/bin/bash
# Install what the pipeline needs: Debian packages and a pinned Python venv.
#   vm/setup.sh [EXTRA_PACKAGE_LIST...]
# As root it installs; otherwise it prints the commands and stops.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

# vm/apt-packages.txt, and the lists named as arguments (make cross-check:
# vm/cross/apt-packages.txt)
mapfile -t packages < <(cat "$ROOT/vm/apt-packages.txt" "$@" | grep -v '^\s*\(#\|$\)' | tr -s ' ' '\n' | grep .)
missing=()
for pkg in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done

req_stamp="$VENV/.requirements"
venv_ok=0
# The guest must be able to run the venv: its python has to be Debian's.
if [[ -x $VENV/bin/python3 && $(readlink -f "$VENV/bin/python3") == /usr/bin/* ]] &&
	cmp -s "$ROOT/vm/requirements.txt" "$req_stamp"; then
	venv_ok=1
fi

if [[ ${#missing[@]} -eq 0 && $venv_ok -eq 1 ]]; then
	exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
	cat >&2 <<MSG
error: set-up needs root (apt-get, /var/cache). Run as root instead, or do it by hand:
  apt-get update
  apt-get install -y ${missing[*]:-<nothing missing>}
  /usr/bin/python3 -m venv $VENV
  $VENV/bin/pip install -r $ROOT/vm/requirements.txt
  cp $ROOT/vm/requirements.txt $req_stamp
then run make again (set NLMMAP_CACHE to a writable folder if /var/cache is not).
MSG
	exit 1
fi

if [[ ${#missing[@]} -gt 0 ]]; then
	log "installing Debian packages: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q
	apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if [[ $venv_ok -eq 0 ]]; then
	log "creating the Python venv $VENV"
	mkdir -p "$CACHE"
	rm -rf "$VENV"
	# Debian's python: the guest sees /usr but not every host-only install (pyenv in /root)
	/usr/bin/python3 -m venv "$VENV"
	"$VENV/bin/pip" install -q -r "$ROOT/vm/requirements.txt"
	cp "$ROOT/vm/requirements.txt" "$req_stamp"
fi
