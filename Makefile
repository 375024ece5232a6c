# Memory-mapped netlink: build the patched kernel, boot it, run the tests.
#
#   make            set-up, patched kernel, boot it and show what the series does
#   make check      every suite: harness tests, checkpatch, the per-patch checks, the
#                   series built with W=1 and sparse against the base, in-guest
#                   pytest, the series' kselftests, a smoke run of every benchmark
#                   workload, and
#                   on the performance kernel (4 vCPUs): upstream nft_queue.sh in
#                   socket and ring mode and the nfqueue ordering test
#   make series-check  netdev's patch CI on every patch: checkpatch --strict,
#                   Signed-off-by, kernel-doc, MAINTAINERS, selftest lists, and
#                   W=1 builds (x86_64 with sparse and NETLINK_MMAP=y/=n, clang,
#                   i386, arm64 64K pages, s390x) without new warnings
#   make cross-check ARCH=arm64|s390x  the series built for arm64 (64 KiB
#                   pages) or s390x (big-endian), booted under TCG on a Debian
#                   root file system: pytest, kselftests (run_kselftest.sh),
#                   the net fix's selftest, nft_queue.sh in both modes
#   make bench      the benchmark in full: performance kernels with and without
#                   the series, every workload in every path, build/bench/results.md
#                   (guest clock: QEMU -icount, instructions)
#   make bench-wall the headline points again on a wall clock (TCG without
#                   -icount, 7 repetitions; run it on an idle machine),
#                   build/bench-wall/results.md
#   make fuzz       random operation sequences on the test kernel against the
#                   model (nlmmap/model.py) for DURATION seconds
#                   (default 600); a failing one is kept in pytests/replays/
#   make mutate     each deliberate bug in vm/mutants/ built into the test
#                   kernel; the tests named for it must fail (build/mutate/)
#   make bench-profile perf in the guest: where the instructions of the nfqueue
#                   and dump workloads go, per path (build/bench-profile/perf/profile/)
#   make tree       the kernel tree with patches/ applied (build/linux)
#   make series     export build/linux's commits back into patches/
#                   (AUTHOR="Name <address>": the person who posts them signs them)
#   make kernel     configure and build build/linux into build/kbuild (KASAN, lockdep)
#   make perf-kernel the same without the debug options into build/kbuild-perf
#   make shell      interactive VM on the built kernel
#   make host-test  the harness tests alone (no kernel, seconds)
#
# Variables: KSRC=/path/to/linux (another base tree), NLMMAP_CACHE (default
# /var/lib/nlmmap), ACCEL=auto|kvm|tcg, VM_TIMEOUT, JOBS, FORCE=1 (make tree),
# BENCH_SCALE=full|smoke and BENCH_CPUS (make bench), DURATION (make fuzz).

SHELL := /bin/bash
VM := vm
export KSRC NLMMAP_CACHE ACCEL VM_TIMEOUT JOBS FORCE SERIES BENCH_SCALE BENCH_CPUS BENCH_CLOCK DURATION AUTHOR

.PHONY: all demo check cross-check series-check fuzz mutate bench bench-wall bench-profile setup tree kernel perf-kernel series shell host-test clean

all: demo

setup:
	@$(VM)/setup.sh

tree: setup
	@$(VM)/tree.sh

kernel: tree
	@$(VM)/build-kernel.sh

perf-kernel: tree
	@FLAVOUR=perf $(VM)/build-kernel.sh

demo: kernel
	@$(VM)/job.sh demo

# the suites of each group: vm/harness/suites.py (CHECK, SERIES_CHECK)
# the job builds the performance and nommap kernels itself, in the background
# beside the host suites (never beside a boot)
check: kernel
	@$(VM)/job.sh check

series-check: tree
	@$(VM)/job.sh series-check

# the series on another architecture under TCG: ARCH=arm64 (64 KiB pages) or
# ARCH=s390x (big-endian); build/cross-ARCH/results (vm/cross/check.sh)
cross-check: setup
	@$(VM)/setup.sh $(VM)/cross/apt-packages.txt
	@CROSS_ARCH=$(ARCH) $(VM)/cross/check.sh

fuzz: kernel
	@$(VM)/job.sh fuzz

mutate: kernel
	@$(VM)/mutate.sh

bench: setup
	@$(VM)/bench/host.sh

bench-wall: setup
	@BENCH_SCALE=headline BENCH_CLOCK=wall $(VM)/bench/host.sh

# under -icount (guest time counts instructions), BENCH_CPUS vCPUs
bench-profile: tree
	@RESULTS=$(CURDIR)/build/bench-profile PERF_VM_CPUS=$${BENCH_CPUS:-4} VM_ICOUNT=1 $(VM)/job.sh profile; \
		status=$$?; cat build/bench-profile/profile.tap 2>/dev/null; exit $$status

series: setup
	@$(VM)/series.sh

shell: kernel
	@$(VM)/run.sh --shell

host-test: setup
	@$(VM)/job.sh host

clean:
	rm -rf build
