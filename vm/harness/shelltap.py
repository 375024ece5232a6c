"""Turn the output of an upstream netfilter shell selftest into TAP.

Those scripts print one "PASS: what", "FAIL: what" or "SKIP: what" line per
check and exit with the kselftest codes (0 pass, 1 fail, 4 skip).  Each such
line becomes a TAP test point; a non-zero exit that no FAIL line explains
becomes a failing point of its own, so a crash half way cannot pass.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from harness.results import tap_document

KSFT_PASS, KSFT_FAIL, KSFT_SKIP = 0, 1, 4
_LINE = re.compile(r"^\s*(PASS|FAIL|SKIP)\s*:\s*(.*?)\s*$")


def to_tap(output: str, exit_code: int) -> str:
    points: list[str] = []
    failures = 0
    for raw in output.splitlines():
        match = _LINE.match(raw)
        if not match:
            continue
        verdict, what = match.group(1), match.group(2).replace("#", "") or "(unnamed)"
        number = len(points) + 1
        if verdict == "PASS":
            points.append(f"ok {number} {what}")
        elif verdict == "SKIP":
            points.append(f"ok {number} {what} # SKIP {what}")
        else:
            failures += 1
            points.append(f"not ok {number} {what}")
    if exit_code not in (KSFT_PASS, KSFT_SKIP) and failures == 0:
        points.append(f"not ok {len(points) + 1} script exited with status {exit_code} without a FAIL line")
    if exit_code == KSFT_SKIP and not points:
        points.append("ok 1 whole script # SKIP the script skipped itself (exit 4), see its log")
    if not points:
        points.append("not ok 1 the script printed no PASS/FAIL/SKIP line")
    return tap_document(points)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: shelltap LOGFILE EXIT_CODE", file=sys.stderr)
        return 2
    sys.stdout.write(to_tap(Path(args[0]).read_text(errors="replace"), int(args[1])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
