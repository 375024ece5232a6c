"""Judge a run of the kselftest framework's run_kselftest.sh as one suite.

Kernel CI (KernelCI, LKFT, netdev's CI) installs the selftests with `make
kselftest-install` and runs them with `run_kselftest.sh -c COLLECTION` or
`-t COLLECTION:PROGRAM`, under the timeouts of each collection's `settings`.
Its output is TAP with one point per program; each program's own output is
nested in it as "# " comment lines.  Here each program's nested output is
judged as the harness judges the same program run directly: a kselftest
harness program's TAP by harness.tapmerge ("program: test" points), a shell
selftest's PASS:/FAIL:/SKIP: lines by harness.shelltap.  The framework's
verdict on the program (its exit code, a timeout) counts too, so a program
killed at its timeout after passing checks still fails.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from harness import shelltap, tapmerge
from harness.results import tap_document

Nested = Literal["tap", "shell"]

# runner.sh: "# selftests: net/netlink_mmap: rx_ring" opens a program's
# section, "ok 1 selftests: net/netlink_mmap: rx_ring" (or "not ok ... #
# exit=1", "# TIMEOUT 45 seconds", "# SKIP") closes it
_OPEN = re.compile(r"^# selftests: (?P<collection>\S+): (?P<program>\S+)\s*$")
_CLOSE = re.compile(r"^(?P<verdict>ok|not ok) \d+ selftests: \S+: (?P<program>\S+)(?:\s*#\s*(?P<directive>.*))?$")
_EXIT = re.compile(r"exit=(\d+)")
TIMEOUT_CODE = 124


@dataclass
class Program:
    name: str
    output: list[str]
    code: int | None = None  # None: the framework never closed its section


def exit_code(verdict: str, directive: str) -> int:
    """The program's exit code as runner.sh reports it."""
    if directive.upper().startswith("SKIP"):
        return tapmerge.KSFT_SKIP
    if directive.upper().startswith("TIMEOUT"):
        return TIMEOUT_CODE
    match = _EXIT.search(directive)
    if match:
        return int(match.group(1))
    return tapmerge.KSFT_PASS if verdict == "ok" else 1


def sections(output: str) -> list[Program]:
    """Each program's nested output ("# " taken off) and exit code."""
    programs: list[Program] = []
    current: Program | None = None
    for line in output.splitlines():
        opened = _OPEN.match(line)
        if opened:
            current = Program(opened.group("program"), [])
            programs.append(current)
            continue
        closed = _CLOSE.match(line)
        if closed and current is not None and closed.group("program") == current.name:
            current.code = exit_code(closed.group("verdict"), closed.group("directive") or "")
            current = None
            continue
        if current is not None and line.startswith("#"):
            current.output.append(line[2:] if line.startswith("# ") else line[1:])
    return programs


def to_tap(output: str, nested: Nested, expected: tuple[str, ...]) -> str:
    """One TAP document: every expected program's points, a failing point for
    a program that did not run or whose section the framework never closed."""
    found = {program.name: program for program in sections(output)}
    merged: list[tuple[str, str, int]] = []
    shell_points: list[str] = []
    missing: list[str] = []
    for name in expected:
        program = found.get(name)
        if program is None:
            missing.append(f"{name}: run_kselftest.sh did not run it")
            continue
        text = "\n".join(program.output) + "\n"
        if program.code is None:
            missing.append(f"{name}: run_kselftest.sh never reported its result (the run was cut short)")
            code = 1
        else:
            code = program.code
        if nested == "tap":
            merged.append((name, text, code))
        else:
            shell_points.append(shelltap.to_tap(text, code))
    if nested == "tap":
        document = tapmerge.merge(merged) if merged else ""
        points = [line for line in document.splitlines() if line.startswith(("ok", "not ok"))]
    else:
        points = [line for doc in shell_points for line in doc.splitlines() if line.startswith(("ok", "not ok"))]
    points += [f"not ok 0 {why}" for why in missing]
    return renumber(points)


_POINT = re.compile(r"^(ok|not ok) \d+ ")


def renumber(points: list[str]) -> str:
    """The points numbered 1..N in order."""
    return tap_document([_POINT.sub(rf"\g<1> {number} ", point, count=1)
                         for number, point in enumerate(points, 1)])


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) < 3 or args[1] not in ("tap", "shell"):
        print("usage: ksft OUTPUT tap|shell PROGRAM...", file=sys.stderr)
        return 2
    sys.stdout.write(to_tap(Path(args[0]).read_text(errors="replace"), "tap" if args[1] == "tap" else "shell",
                            tuple(args[2:])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
