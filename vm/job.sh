#!/bin/bash
# Run suites and judge them: vm/job.sh SUITE|GROUP...
#
# The suites (what each runs, where, what it leaves) and the groups `check`
# and `series-check` are one table, vm/harness/suites.py; the orchestration
# (host suites, the test kernel's boot, the performance kernel's boot and the
# judgement against the nommap kernel, the summary) is vm/harness/job.py.  This
# wrapper checks the settings and picks the folders (vm/lib.sh) first.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

[[ $# -gt 0 ]] || die "usage: vm/job.sh SUITE|GROUP... (see vm/harness/suites.py)"
PYTHONPATH=$ROOT/vm exec "$VENV/bin/python3" -m harness.job --root "$ROOT" --build "$BUILD" \
	--results "$RESULTS" --tree "$TREE" --venv "$VENV" "$@"
