"""Judge a selftest run on the bare base, the kernel without a fix.

A fix's test counts only if it fails where the bug is.  The suite names the
tests that must fail on the unfixed kernel (Suite.fails_unfixed); there

  a named test fails                 -> ok: the bug is there and the test sees it
  a named test passes                -> not ok: the test cannot see the bug
  a named test is missing            -> not ok
  any other test passes (or skips)   -> ok, as it is
  any other test fails               -> not ok: it fails for another reason

Each "ok" of a named test quotes the first lines of the test's failure, so
the summary and the log show what the unfixed kernel did.

  python -m harness.unfixed [--program NAME=TAP]... SUITE.tap TEST... > VERDICT.tap
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness import results

# lines of a failure quoted under its point
QUOTED = 4


def failure_lines(tap: str, test: str) -> list[str]:
    """The first diagnostic lines a kselftest program printed for `test`
    (in its own TAP, before "not ok N test")."""
    lines = tap.splitlines()
    for index, line in enumerate(lines):
        if line.startswith("not ok") and line.rstrip().endswith(f" {test}"):
            block: list[str] = []
            for before in reversed(lines[:index]):
                if not before.startswith("#") or "RUN " in before:
                    break
                block.insert(0, before)
            return [b for b in block if "FAIL" not in b and "Test failed" not in b][:QUOTED]
    return []


def quote(test: str, programs: dict[str, str]) -> list[str]:
    """Why `test` ("program: test" in the merged TAP) failed, from its program's TAP."""
    program, _, own = test.partition(": ")
    return failure_lines(programs.get(program, ""), own) if own else []


def judge(run: results.SuiteResult, must_fail: tuple[str, ...], programs: dict[str, str]) -> str:
    """The verdict on a merged kselftest run of the unfixed kernel;
    `programs` holds each program's own TAP, for the quotes."""
    points: list[str] = []

    def point(ok: bool, text: str, quoted: list[str] | None = None, directive: str = "") -> None:
        points.append(f"{'ok' if ok else 'not ok'} {len(points) + 1} {text}{directive}"
                      + "".join(f"\n#   {line.lstrip('# ')}" for line in quoted or []))

    failed, passed = set(run.failed), set(run.passed)
    for test in must_fail:
        if test in failed:
            point(True, f"{test} fails on the unfixed kernel (the bug is there)", quote(test, programs))
        elif test in passed:
            point(False, f"{test} passes on the unfixed kernel: the test does not see the bug")
        else:
            point(False, f"{test} did not run on the unfixed kernel")
    for test in run.passed:
        if test not in must_fail:
            point(True, test)
    for test, reason in run.skipped:
        point(True, test, directive=f" # SKIP {reason}")
    for test in run.failed:
        if test not in must_fail:
            point(False, f"{test} fails on the unfixed kernel, which it should not", quote(test, programs))
    if run.error:
        point(False, f"the run on the unfixed kernel did not finish: {run.error}")
    return results.tap_document(points)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="unfixed", description="judge a selftest run on the unfixed kernel")
    parser.add_argument("--program", action="append", default=[], metavar="NAME=TAP",
                        help="a program's own TAP, for the failure quotes (repeatable)")
    parser.add_argument("merged", type=Path, metavar="SUITE.tap")
    parser.add_argument("tests", nargs="+", metavar="TEST", help="tests that must fail there")
    args = parser.parse_args(argv)
    programs = {}
    for item in args.program:
        name, _, path = item.partition("=")
        programs[name] = Path(path).read_text(errors="replace") if Path(path).is_file() else ""
    sys.stdout.write(judge(results.load(args.merged.stem, args.merged.parent), tuple(args.tests), programs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
