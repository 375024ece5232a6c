#!/bin/bash
# Boot the built kernel under virtme-ng and run suites in the guest as root.
#
#   vm/run.sh SUITE...     VM suites of vm/harness/suites.py, run in the guest
#                          by vm/harness/guest.py
#   vm/run.sh --shell      an interactive VM on the built kernel
#
# Results land in $RESULTS (TAP, JUnit XML, dmesg, console log) and are judged
# by vm/harness/report.py, which prints the summary and sets the exit status.
# ACCEL=auto|kvm|tcg (default auto: KVM only if a short probe boots),
# VM_TIMEOUT seconds for the whole guest run, VM_CPUS, VM_MEMORY.
# VM_ICOUNT=1: under TCG, guest time counts executed instructions (QEMU
# -icount shift=0), so that guest-side timings do not depend on host load.
# VM_TCG_THREAD=single: one host thread runs every vCPU (see below).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

ACCEL=${ACCEL:-auto}
# The test kernel's boot of make check passed 3,600 s under TCG here in the
# bench smoke run (2026-12-07, guest suite 2,669 s of it); with the
# multicast oracle's shorter run about 3,650 s: the bound leaves room.
VM_TIMEOUT=${VM_TIMEOUT:-4200}
VM_CPUS=${VM_CPUS:-2}
VM_MEMORY=${VM_MEMORY:-3G}
KVM_PROBE_TIMEOUT=${KVM_PROBE_TIMEOUT:-25}

kernel="$KBUILD/arch/x86/boot/bzImage"
[[ -f $kernel ]] || die "no kernel at $kernel: run 'make kernel' first"

# no5lvl: with 5-level paging under TCG, a KASAN + lockdep 7.3 kernel
# sometimes reports a wild-memory-access from an interrupt during
# identify_cpu() at boot, before any test runs (seen 1 boot in 3).  The tests
# do not need 5-level paging.
#
# The root is the host's, over 9p (--force-9p: virtme-ng would take a Rust
# virtiofsd if one were installed, and the flags below are 9p's).  Its
# default is no cache: every lookup a round trip to the host.  Under TCG with
# the KASAN kernel that made udev's coldplug outlast virtme-ng's 300 s settle
# and a pytest collection take 407 s (2026-12-07; the boot of make check then
# passed its VM_TIMEOUT).  cache=loose keeps dentries, inodes and pages in the
# guest: settle 46 s, the same collection 206 s.  The guest does not see host
# changes to a file it has read; the results folder (--rwdir) is a mount of
# its own, without this cache.  The last rootflags= on the command line wins.
ROOTFLAGS=rootflags=version=9p2000.L,trans=virtio,access=any,msize=512000,cache=loose
vng_base=(vng --run "$KBUILD" --user root --cpus "$VM_CPUS" --memory "$VM_MEMORY" --cwd "$ROOT"
	--force-9p --append "no5lvl $ROOTFLAGS")

# KVM hangs on some hosts while the guest decompresses the kernel: only use it
# when a trivial command comes back within the probe time.
pick_accel() {
	case $ACCEL in
	kvm | tcg) printf '%s\n' "$ACCEL"; return ;;
	auto) ;;
	*) die "ACCEL must be auto, kvm or tcg, not '$ACCEL'" ;;
	esac
	if [[ -w /dev/kvm ]] &&
		timeout -k 5 "$KVM_PROBE_TIMEOUT" "${vng_base[@]}" --exec true </dev/null >/dev/null 2>&1; then
		printf 'kvm\n'
	else
		printf 'tcg\n'
	fi
}

accel=$(pick_accel)
accel_args=()
clock=wall
# Multi-threaded TCG runs each vCPU in its own host thread; with 4 vCPUs a
# guest sometimes dies on an int3 oops while the kernel patches its own text
# (static keys: seen on the patched and on the bare base kernel, at boot and
# in netif_rx_internal).  Single-threaded TCG never runs two vCPUs at once,
# so the race cannot happen there (icount implies it).
if [[ $accel == tcg ]]; then
	accel_args=(--disable-kvm)
	if [[ ${VM_ICOUNT:-0} == 1 ]]; then
		accel_args+=(--qemu-opts='-icount shift=0')
		clock=icount
	elif [[ ${VM_TCG_THREAD:-multi} == single ]]; then
		accel_args+=(--qemu-opts='-accel tcg,thread=single')
	fi
fi

if [[ ${1:-} == --shell ]]; then
	log "interactive VM on $(cat "$KBUILD/include/config/kernel.release") ($accel); exit the shell to stop it"
	exec "${vng_base[@]}" "${accel_args[@]}"
fi

[[ $# -gt 0 ]] || die "usage: vm/run.sh SUITE... | --shell"
suites=("$@")
mkdir -p "$RESULTS"
rm -f "$RESULTS"/dmesg.txt "$RESULTS"/console.log "$RESULTS"/vm.status

# The guest's manifest: what it must find (this build's release and build
# id), where things are and what to run with.
release=$(cat "$KBUILD/include/config/kernel.release")
{
	manifest_kernel "$KBUILD"
	printf 'NLMMAP_NLBENCH=%s\n' "${NLBENCH:-$KBUILD/nlbench}"
	printf 'NLMMAP_BENCH_SCALE=%s\n' "${BENCH_SCALE:-smoke}"
	printf 'NLMMAP_FUZZ_SECONDS=%s\n' "${DURATION:-600}"
	printf 'NLMMAP_ACCEL=%s\n' "$accel"
	printf 'NLMMAP_VENV=%s\n' "$VENV"
} >"$RESULTS/expect.env"

boot() {
	timeout -k 10 "$VM_TIMEOUT" "${vng_base[@]}" "${accel_args[@]}" --verbose \
		--rwdir "$RESULTS" \
		--exec "env PYTHONPATH=$ROOT/vm $VENV/bin/python3 -m harness.guest $RESULTS ${suites[*]}" </dev/null 2>&1 |
		tee "$RESULTS/console.log" | sed -u -n '/^nlmmap-guest:/s/^nlmmap-guest: //p'
	return "${PIPESTATUS[0]}"
}

log "booting $release ($accel, $clock clock, $VM_CPUS vCPUs, $VM_MEMORY) for: ${suites[*]}"
start=$(date +%s)
# Under multi-threaded TCG a guest sometimes dies while the kernel patches
# its own text at boot (an int3 oops in early code, seen 1 boot in 3 with 4
# vCPUs), before any test runs.  Such a boot, and only such a boot, is
# retried once; its console is kept and the summary says so.
boot_retries=0
set +e
boot
rc=$?
if [[ $rc -ne 0 ]] && ! grep -q '^nlmmap-guest: kernel .* up' "$RESULTS/console.log"; then
	mv "$RESULTS/console.log" "$RESULTS/console.boot-failure.log"
	log "the guest died before the tests started (exit $rc): booting again (console kept in console.boot-failure.log)"
	boot_retries=1
	boot
	rc=$?
fi
set -e
secs=$(($(date +%s) - start))
timed_out=0
[[ $rc -eq 124 || $rc -eq 137 ]] && timed_out=1
{
	printf 'vm_used=1\nvm_rc=%s\ntimed_out=%s\nseconds=%s\naccel=%s\nclock=%s\ncpus=%s\nkernel=%s\nboot_retries=%s\n' \
		"$rc" "$timed_out" "$secs" "$accel" "$clock" "$VM_CPUS" "$release" "$boot_retries"
} >"$RESULTS/vm.status"
