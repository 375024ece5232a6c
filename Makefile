# Memory-mapped netlink: build the patched kernel, boot it, run the tests.
#
#   make            set-up, patched kernel, boot it and show what the series does
#   make check      every suite: harness tests, checkpatch, in-guest pytest, the series'
#                   kselftests, upstream nft_queue.sh (socket mode and ring mode)
#   make tree       the kernel tree with patches/ applied (build/linux)
#   make series     export build/linux's commits back into patches/
#   make kernel     configure and build build/linux into build/kbuild
#   make shell      interactive VM on the built kernel
#   make host-test  the harness tests alone (no kernel, seconds)
#
# Variables: KSRC=/path/to/linux (another base tree), NLMMAP_CACHE (default
# /var/lib/nlmmap), ACCEL=auto|kvm|tcg, VM_TIMEOUT, JOBS, FORCE=1 (make tree).

SHELL := /bin/bash
VM := vm
export KSRC NLMMAP_CACHE ACCEL VM_TIMEOUT JOBS FORCE SERIES

.PHONY: all demo check setup tree kernel series shell host-test clean

all: demo

setup:
	@$(VM)/setup.sh

tree: setup
	@$(VM)/tree.sh

kernel: tree
	@$(VM)/build-kernel.sh

demo: kernel
	@$(VM)/job.sh demo

check: kernel
	@$(VM)/job.sh host checkpatch guest kselftest nft_queue nft_queue_ring

series: setup
	@$(VM)/series.sh

shell: kernel
	@$(VM)/run.sh --shell

host-test: setup
	@$(VM)/job.sh host

clean:
	rm -rf build
