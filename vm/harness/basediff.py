"""Judge an upstream selftest on the patched kernel against reference runs.

Some checks of the upstream nft_queue.sh cannot pass under software
emulation even without the rings (its listeners give up after 5 s of
silence, and the guest is slower than that).  The rings must not make
anything worse, so each check of the patched run is judged against the same
check on a reference kernel booted the same way: in make check the nommap
kernel (the series with CONFIG_NETLINK_MMAP=n, vm/flavours.sh), or ring mode
against socket mode in the same boot ("base" below is the reference):

  patched PASS                          -> ok
  patched FAIL, base FAIL too           -> skip, with the reason
  patched FAIL, base PASS or not there  -> not ok
  base PASS, never reached on patched   -> not ok

Timing under emulation also varies between boots: the base sometimes gets
further than usual.  So the judge takes several base runs (the pipeline
boots more only while the comparison fails: results.NOMMAP_ROUNDS and
RING_ROUNDS): a check counts as failing on the base when any base run
failed it, and a check that some base run never reached either is not held
against the patched run.  The same holds the other way (the pipeline boots
the patched kernel again in those rounds): a check that failed on one
patched run and passed on another is a skip that names both runs, and so is
a failure message of its own that some other finished patched run did not
print.  A regression the series causes (it fails every time) still fails,
and a 5 s timeout that a loaded emulator missed once does not.  The price:
a regression that also fails at random on the base is excused whenever one
base run fails it.

Check names are compared with the random netns suffixes and the measured
durations and counts removed.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from harness import results

_NETNS = re.compile(r"\b(ns\w*?)-[A-Za-z0-9]{6}\b")
# Measurements the script prints in a check's name: how long a transfer took,
# how many packets were counted.
_MEASURED = [
    (re.compile(r"\s*\(duration: \d+s\)"), ""),
    (re.compile(r"\bhad \d+ and \d+\b"), "had N and N"),
    (re.compile(r"\bgot \d+"), "got N"),
    (re.compile(r"\bdistribution: \d+ \d+"), "distribution: N N"),
    (re.compile(r": -?\d+$"), ": N"),
]


def normalise(name: str) -> str:
    name = _NETNS.sub(r"\1", name)
    for pattern, replacement in _MEASURED:
        name = pattern.sub(replacement, name)
    return name


def _reached(run: results.SuiteResult) -> set[str]:
    return {normalise(n) for n in run.passed + run.failed + [s[0] for s in run.skipped]}


BASE = "the reference kernel"


def compare(bases: list[results.SuiteResult], patched: results.SuiteResult, reference: str = BASE,
            again: list[results.SuiteResult] | None = None) -> str:
    """The patched run judged against one or more runs of the reference (the
    base kernel, or socket mode in the same boot for the ring-mode run);
    `again` are further runs of the patched kernel."""
    base_failed = {normalise(n) for base in bases for n in base.failed}
    base_passed = {normalise(n) for base in bases for n in base.passed}
    passed_again = {normalise(n) for run in again or [] for n in run.passed}
    # A failure message of its own (nft_queue.sh prints "lost packets during
    # requeue?!" instead of the check's name) has no pass to match: it is a
    # one-off when some other patched run that finished did not print it.
    finished_again = [{normalise(n) for n in run.failed} for run in again or [] if not run.error]
    points: list[str] = []

    def point(ok: bool, name: str, directive: str = "") -> None:
        points.append(f"{'ok' if ok else 'not ok'} {len(points) + 1} {name}{directive}")

    for name in patched.passed:
        point(True, name)
    for name, reason in patched.skipped:
        point(True, name, f" # SKIP {reason}")
    for name in patched.failed:
        key = normalise(name)
        if key in base_failed:
            point(True, name, f" # SKIP fails on {reference} too, see its log")
        elif key in passed_again or (key not in base_passed and any(key not in f for f in finished_again)):
            point(True, name, " # SKIP failed on one run of the patched kernel and not on another "
                  "(emulation timing), see both logs")
        elif key in base_passed:
            point(False, f"{name} (passes on {reference})")
        else:
            point(False, f"{name} (not reached on {reference})")
    reached = _reached(patched) | passed_again
    seen: set[str] = set()
    for name in (n for base in bases for n in base.passed):
        key = normalise(name)
        if key in reached or key in seen:
            continue
        seen.add(key)
        if any(key not in _reached(base) for base in bases):
            point(True, name, f" # SKIP not reached on a run of {reference} either (emulation timing)")
        else:
            point(False, f"{name} (passes on {reference}, never reached on the patched one)")
    # An incomplete base run (a timeout, say) still tells what it reached; only
    # when no base run finished is there nothing to judge against.
    for number, base in enumerate(bases, 1):
        if base.error:
            complete = [b for b in bases if not b.error]
            point(bool(complete), f"run {number} of {reference} incomplete: {base.error}",
                  " # SKIP another reference run finished" if complete else "")
    if patched.error:
        point(False, f"patched kernel run incomplete: {patched.error}")
    return results.tap_document(points)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="basediff", description="judge a patched run against reference runs")
    parser.add_argument("--reference", default=BASE, help="what the reference runs are, for the skip reasons")
    parser.add_argument("--again", type=Path, action="append", default=[], metavar="PATCHED.tap",
                        help="a further run of the patched kernel (repeatable)")
    parser.add_argument("bases", type=Path, nargs="+", metavar="BASE.tap")
    parser.add_argument("patched", type=Path, metavar="PATCHED.tap")
    args = parser.parse_args(argv)

    def load(path: Path) -> results.SuiteResult:
        return results.load(path.stem, path.parent)

    sys.stdout.write(compare([load(p) for p in args.bases], load(args.patched), args.reference,
                             [load(p) for p in args.again]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
