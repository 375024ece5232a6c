"""Judge a selftest run on the bare base, the kernel without a fix.

A fix's test counts only if it fails where the bug is.  The suite names the
tests that must fail on the unfixed kernel (Suite.fails_unfixed); there

  a named test fails                 -> ok: the bug is there and the test sees it
  a named test passes                -> not ok: the test cannot see the bug
  a named test is missing            -> not ok
  any other test passes (or skips)   -> ok, as it is
  any other test fails               -> not ok: it fails for another reason

The first "ok" of a named test quotes the first lines the programs printed
on stderr (the harness's failed expectations), so the verdict shows what
the unfixed kernel did.

  python -m harness.unfixed [--log SUITE.log] SUITE.tap TEST... > VERDICT.tap
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from harness import results

# lines of a failure quoted under its point
QUOTED = 4


def quoted(log: str) -> list[str]:
    """The first lines the programs printed on stderr (the kselftest
    harness's failed expectations and TH_LOG lines), each file name
    without its folder."""
    lines = [re.sub(r"^#\s*\S*/", "", line).strip() for line in log.splitlines() if line.strip()]
    return lines[:QUOTED]


def judge(run: results.SuiteResult, must_fail: tuple[str, ...], log: str = "") -> str:
    """The verdict on a merged kselftest run of the unfixed kernel; `log`
    is what its programs printed on stderr, quoted under the first test
    that failed as it must."""
    points: list[str] = []

    def point(ok: bool, text: str, comments: list[str] | None = None, directive: str = "") -> None:
        points.append(f"{'ok' if ok else 'not ok'} {len(points) + 1} {text}{directive}"
                      + "".join(f"\n#   {line.lstrip('# ')}" for line in comments or []))

    failed, passed = set(run.failed), set(run.passed)
    quote = quoted(log)
    for test in must_fail:
        if test in failed:
            point(True, f"{test} fails on the unfixed kernel (the bug is there)", quote)
            quote = []
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
            point(False, f"{test} fails on the unfixed kernel, which it should not")
    if run.error:
        point(False, f"the run on the unfixed kernel did not finish: {run.error}")
    return results.tap_document(points)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="unfixed", description="judge a selftest run on the unfixed kernel")
    parser.add_argument("--log", type=Path, help="what the programs printed on stderr, for the quote")
    parser.add_argument("merged", type=Path, metavar="SUITE.tap")
    parser.add_argument("tests", nargs="+", metavar="TEST", help="tests that must fail there")
    args = parser.parse_args(argv)
    log = args.log.read_text(errors="replace") if args.log and args.log.is_file() else ""
    sys.stdout.write(judge(results.load(args.merged.stem, args.merged.parent), tuple(args.tests), log))
    return 0


if __name__ == "__main__":
    sys.exit(main())
