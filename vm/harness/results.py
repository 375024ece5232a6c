"""Parse test results: TAP (kselftests, converted shell tests) and JUnit XML (pytest)."""

from __future__ import annotations

import re
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

# "ok 3 name # SKIP reason", "not ok 4 name # TODO", nested ones indented or "# "-prefixed
_TAP_RESULT = re.compile(r"^(?P<ok>ok|not ok)\s+(?P<num>\d+)\s*-?\s*(?P<desc>[^#]*?)"
                         r"\s*(#\s*(?P<dir>SKIP|TODO|XFAIL)\S*\s*(?P<reason>.*))?$", re.I)
# The results folder's boots (harness.job writes them, harness.report judges
# their kernel logs and VM status): the test kernel's in the folder itself,
# the performance kernel's, and those that judge a contested failure of an
# upstream selftest there (the nommap kernel carries the series, with the
# rings compiled out: a splat there is the series' too).
PERF_BOOT = "perf"
# When nft_queue fails a check on the performance kernel: boots of the nommap
# kernel ("reference") and of the performance kernel again ("patched"), in
# this order, until the failures are explained or the list ends.  A check
# counts against the series only when it failed on every patched run and on
# no reference run (harness.basediff).  Three runs a side: a check that
# fails half the time under emulation on either kernel fails that judgement
# 1 time in 16 with two runs a side (CI of 2026-12-07: test_udp_gro_ct failed
# on both patched runs, passed on both nommap runs), 1 in 64 with three.
REFERENCE, PATCHED = "reference", "patched"
NOMMAP_ROUNDS = (("nommap", REFERENCE), ("nommap2", REFERENCE), ("perf2", PATCHED),
                 ("nommap3", REFERENCE), ("perf3", PATCHED))
# both nfqueue modes once more, in one boot each, when ring mode fails where
# socket mode passed in the same boot: socket mode is the reference there
RING_ROUNDS = ("perf-ring2", "perf-ring3")
# the bare base's boot, where a fix's selftest must fail (harness.unfixed)
BASE_BOOT = "base"
JUDGED_BOOTS = ("", PERF_BOOT, *RING_ROUNDS, *(name for name, _ in NOMMAP_ROUNDS), BASE_BOOT)


def rounds(which: str) -> list[tuple[str, str]]:
    """The judging boots of `which` (nommap or ring) as (folder, side):
    what vm/cross/check.sh boots, in the order harness.job does."""
    if which == "nommap":
        return list(NOMMAP_ROUNDS)
    if which == "ring":
        return [(name, PATCHED) for name in RING_ROUNDS]
    raise ValueError(f"no judging rounds named {which!r}: nommap or ring")


_TAP_PLAN = re.compile(r"^1\.\.(\d+)")
_TAP_BAIL = re.compile(r"^Bail out!\s*(.*)")


@dataclass
class SuiteResult:
    """One suite's outcome.  `error` is set when the suite did not run to the end."""

    name: str
    passed: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (test, reason)
    error: str | None = None
    why_failed: dict[str, str] = field(default_factory=dict)  # test -> first line of its failure

    def failure_line(self, test: str, width: int = 160) -> str:
        """`test`, with why it failed when the results file says so (the CI
        log shows only the summary, so this is often all there is to go on)."""
        why = self.why_failed.get(test, "")
        if not why:
            return test
        return f"{test}: {why if len(why) <= width else why[: width - 3] + '...'}"

    @property
    def ok(self) -> bool:
        return not self.failed and self.error is None


def tap_document(points: list[str]) -> str:
    """A TAP 13 document from its test point lines ("ok 1 name", ...)."""
    return "TAP version 13\n" + f"1..{len(points)}\n" + "".join(p + "\n" for p in points)


def parse_tap(name: str, text: str) -> SuiteResult:
    """Top-level TAP results only; nested subtests are summarised by their parent line."""
    result = SuiteResult(name)
    planned: int | None = None
    seen = 0
    for raw in text.splitlines():
        if raw.startswith((" ", "\t", "#")):
            continue  # diagnostics and nested (indented) subtest output
        line = raw.strip()
        bail = _TAP_BAIL.match(line)
        if bail:
            result.error = f"bailed out: {bail.group(1) or 'no reason given'}"
            continue
        plan = _TAP_PLAN.match(line)
        if plan and planned is None:
            planned = int(plan.group(1))
            continue
        match = _TAP_RESULT.match(line)
        if not match:
            continue
        seen += 1
        desc = match.group("desc").strip() or f"test {match.group('num')}"
        directive = (match.group("dir") or "").upper()
        if directive == "SKIP":
            result.skipped.append((desc, match.group("reason").strip() or "no reason given"))
        elif match.group("ok").lower() == "ok" or directive in ("TODO", "XFAIL"):
            result.passed.append(desc)
        else:
            result.failed.append(desc)
    if planned is None and result.error is None:
        result.error = "no TAP plan: the suite did not finish"
    elif planned is not None and seen != planned and result.error is None:
        result.error = f"planned {planned} tests, reported {seen}"
    return result


def parse_junit(name: str, text: str) -> SuiteResult:
    """pytest's JUnit XML: every <testcase> is passed, failed (failure/error) or skipped."""
    result = SuiteResult(name)
    try:
        root = ET.fromstring(text)
    except ET.ParseError as err:
        result.error = f"unreadable JUnit XML: {err}"
        return result
    cases = root.iter("testcase")
    count = 0
    for case in cases:
        count += 1
        test = f"{case.get('classname', '')}::{case.get('name', '')}".strip(":")
        skipped = case.find("skipped")
        failure = case.find("failure")
        if failure is None:
            failure = case.find("error")
        if failure is not None:
            result.failed.append(test)
            text = failure.get("message") or failure.text or ""
            lines = [line.strip() for line in text.splitlines() if line.strip()]
            if lines:
                result.why_failed[test] = lines[0]
        elif skipped is not None:
            reason = skipped.get("message") or (skipped.text or "").strip() or "no reason given"
            result.skipped.append((test, reason))
        else:
            result.passed.append(test)
    if count == 0:
        result.error = "no test ran"
    return result


def load(name: str, directory: Path) -> SuiteResult:
    """The result of suite `name` from `directory`/name.tap or name.xml."""
    tap = directory / f"{name}.tap"
    xml = directory / f"{name}.xml"
    if tap.is_file():
        return parse_tap(name, tap.read_text(errors="replace"))
    if xml.is_file():
        return parse_junit(name, xml.read_text(errors="replace"))
    result = SuiteResult(name)
    result.error = "no results file: the suite did not run (VM down or timed out?)"
    return result


def failed_assertions(text: str) -> list[str]:
    """The tests of a JUnit XML that failed an assertion (<failure>), not
    those that errored in set-up or were skipped: what catches a mutant."""
    try:
        root = ET.fromstring(text)
    except ET.ParseError:
        return []
    return [f"{case.get('classname', '')}::{case.get('name', '')}".strip(":")
            for case in root.iter("testcase") if case.find("failure") is not None]


def main(argv: list[str]) -> int:
    """`failed-tests FILE.xml`: print the tests that failed an assertion;
    `error FILE.tap`: why that suite did not run to the end (empty if it did);
    `rounds nommap|ring`: the judging boots, a "folder side" line each."""
    if len(argv) == 2 and argv[0] == "failed-tests":
        for test in failed_assertions(Path(argv[1]).read_text(errors="replace")):
            print(test)
        return 0
    if len(argv) == 2 and argv[0] == "error":
        path = Path(argv[1])
        print(load(path.stem, path.parent).error or "")
        return 0
    if len(argv) == 2 and argv[0] == "rounds" and argv[1] in ("nommap", "ring"):
        for name, side in rounds(argv[1]):
            print(name, side)
        return 0
    print("usage: python -m harness.results failed-tests FILE.xml | error FILE.tap | rounds nommap|ring",
          file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
