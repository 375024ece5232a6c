"""Judge an upstream selftest on the patched kernel against the bare base.

Some checks of the upstream nft_queue.sh cannot pass under software
emulation with KASAN even on the unpatched base (its listeners give up after
5 s of silence, and the guest is slower than that).  The series must not
make anything worse, so each check of the patched run is judged against the
same check on the base kernel, booted with the same config:

  patched PASS                          -> ok
  patched FAIL, base FAIL too           -> skip, with the reason
  patched FAIL, base PASS or not there  -> not ok
  base PASS, never reached on patched   -> not ok

Check names are compared with the random netns suffixes removed.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from harness import results

_NETNS = re.compile(r"\b(ns\w*?)-[A-Za-z0-9]{6}\b")


def normalise(name: str) -> str:
    return _NETNS.sub(r"\1", name)


def compare(base: results.SuiteResult, patched: results.SuiteResult) -> str:
    base_failed = {normalise(n) for n in base.failed}
    base_passed = {normalise(n) for n in base.passed}
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
            point(True, name, " # SKIP fails on the unpatched base kernel too (emulation timing), see nft_queue.log")
        elif key in base_passed:
            point(False, f"{name} (passes on the unpatched base kernel)")
        else:
            point(False, f"{name} (not reached on the unpatched base kernel)")
    reached = {normalise(n) for n in patched.passed + patched.failed + [s[0] for s in patched.skipped]}
    for name in base.passed:
        if normalise(name) not in reached:
            point(False, f"{name} (passes on the unpatched base kernel, never reached on the patched one)")
    if base.error:
        point(False, f"base kernel run incomplete: {base.error}")
    if patched.error:
        point(False, f"patched kernel run incomplete: {patched.error}")
    return results.tap_document(points)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: basediff BASE.tap PATCHED.tap", file=sys.stderr)
        return 2
    base = results.load(Path(args[0]).stem, Path(args[0]).parent)
    patched = results.load(Path(args[1]).stem, Path(args[1]).parent)
    sys.stdout.write(compare(base, patched))
    return 0


if __name__ == "__main__":
    sys.exit(main())
