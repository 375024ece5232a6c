"""Find kernel splats in a kernel log (dmesg or the VM console).

A splat is anything the kernel prints when it caught itself doing wrong:
KASAN and UBSAN reports, WARN()s, BUG()s, oopses, lockdep reports, RCU
stalls, hung tasks, sleeping in atomic context, memory leaks, panics.  Each
one found fails the run, named by its first line.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path

# (kind, pattern on a log line with the timestamp removed).  Order matters:
# the first pattern that matches names the splat.
PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("KASAN", re.compile(r"BUG: KASAN: |^KASAN: (null-ptr-deref|maybe wild-memory-access|wild-memory-access)")),
    ("UBSAN", re.compile(r"UBSAN: ")),
    ("kernel BUG", re.compile(r"kernel BUG at ")),
    ("lockdep", re.compile(
        r"WARNING: (possible (circular|recursive) locking|possible irq lock inversion|"
        r"inconsistent lock state|suspicious RCU usage|lock held when returning|"
        r"bad unlock balance|held lock freed|nested lock|lock held at task exit)|"
        r"INFO: possible (circular|recursive) locking|BUG: (lock held|bad unlock)|"
        r"INFO: trying to register non-static key|BUG: MAX_LOCK",
    )),
    ("sleep in atomic", re.compile(r"BUG: (sleeping function called|scheduling while atomic)|"
                                   r"BUG: workqueue leaked lock|BUG: using smp_processor_id")),
    ("RCU stall", re.compile(r"rcu: INFO: .*(stall|detected stalls)|rcu_(sched|preempt) detected stalls|"
                             r"self-detected stall on CPU")),
    ("hung task", re.compile(r"INFO: task .* blocked for more than \d+ seconds")),
    ("soft lockup", re.compile(r"watchdog: BUG: soft lockup|BUG: soft lockup|hard LOCKUP")),
    ("kmemleak", re.compile(r"kmemleak: \d+ new suspected memory leaks")),
    ("Oops", re.compile(r"\bOops\b|general protection fault|BUG: unable to handle|"
                        r"BUG: kernel NULL pointer dereference")),
    ("panic", re.compile(r"Kernel panic - not syncing")),
    ("WARNING", re.compile(r"WARNING: ")),
    ("BUG", re.compile(r"BUG: ")),
]

_TIMESTAMP = re.compile(r"^\s*(<\d+>)?\[\s*\d+\.\d+\]\s?(\[\s*[CT]\d+\]\s?)?")
# A report runs until the kernel's end marker; its follow-up lines (a KASAN
# report quoting "BUG:" again, a lockdep chain, the WARN's call trace) belong
# to it.  A new "cut here" starts the next report.
_REPORT_END = re.compile(r"^(={10,}|-*\[ end trace [0-9a-f]+ \]-*|---\[ end Kernel panic.*)\s*$")
_NEXT_REPORT = re.compile(r"^-+\[ cut here \]-+$")
_MAX_REPORT_LINES = 150


@dataclass(frozen=True)
class Splat:
    kind: str
    line: int  # 1-based line number in the log
    title: str  # the line that named it, without timestamp
    context: str  # the report's lines, for the results directory


def strip_timestamp(line: str) -> str:
    return _TIMESTAMP.sub("", line.rstrip("\r\n"))


def classify(line: str) -> str | None:
    """Return the splat kind this (timestamp-free) line opens, or None."""
    for kind, pattern in PATTERNS:
        if pattern.search(line):
            return kind
    return None


def scan(text: str) -> list[Splat]:
    """All splats in a log, in order, one per report."""
    lines = [strip_timestamp(line) for line in text.splitlines()]
    splats: list[Splat] = []
    index = 0
    while index < len(lines):
        kind = classify(lines[index])
        if kind is None:
            index += 1
            continue
        end = index + 1
        while end < len(lines) and end - index < _MAX_REPORT_LINES:
            if _NEXT_REPORT.match(lines[end].strip()):
                break
            end += 1
            if _REPORT_END.match(lines[end - 1].strip()):
                break
        splats.append(Splat(kind, index + 1, lines[index].strip(), "\n".join(lines[index:end])))
        index = end
    return splats


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="scan a kernel log for splats")
    parser.add_argument("log", type=Path)
    args = parser.parse_args(argv)
    found = scan(args.log.read_text(errors="replace"))
    for splat in found:
        print(f"{args.log}:{splat.line}: {splat.kind}: {splat.title}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
