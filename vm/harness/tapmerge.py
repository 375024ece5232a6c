"""Merge the TAP of several kselftest-harness programs into one suite.

Each program's top-level test points are renumbered into one document and
named "program: test"; SKIP directives and their reasons stay.  A program
that did not finish (no plan, bail out, a plan it did not keep) or exited
with a failure code no failing point explains gets a failing point of its
own, so a crash cannot pass.
"""

from __future__ import annotations

import sys
from pathlib import Path

from harness.results import parse_tap, tap_document

KSFT_PASS, KSFT_SKIP = 0, 4


def merge(programs: list[tuple[str, str, int]]) -> str:
    """programs: (name, TAP text, exit code) per program, in run order."""
    points: list[str] = []

    def add(ok: bool, desc: str, directive: str = "") -> None:
        points.append(f"{'ok' if ok else 'not ok'} {len(points) + 1} {desc.replace('#', '')}{directive}")

    for name, text, code in programs:
        result = parse_tap(name, text)
        for test in result.passed:
            add(True, f"{name}: {test}")
        for test, reason in result.skipped:
            add(True, f"{name}: {test}", f" # SKIP {reason}")
        for test in result.failed:
            add(False, f"{name}: {test}")
        if result.error:
            add(False, f"{name}: {result.error} (exit {code})")
        elif code not in (KSFT_PASS, KSFT_SKIP) and not result.failed:
            add(False, f"{name}: exited with status {code} without a failing test")
    return tap_document(points)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or len(args) % 3:
        print("usage: tapmerge NAME TAPFILE EXIT_CODE [NAME TAPFILE EXIT_CODE ...]", file=sys.stderr)
        return 2
    programs = []
    for i in range(0, len(args), 3):
        path = Path(args[i + 1])
        text = path.read_text(errors="replace") if path.is_file() else ""
        programs.append((args[i], text, int(args[i + 2])))
    sys.stdout.write(merge(programs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
