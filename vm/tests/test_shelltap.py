"""Upstream shell selftest output to TAP."""

from __future__ import annotations

from harness import results, shelltap


def parse(output: str, code: int) -> results.SuiteResult:
    return results.parse_tap("t", shelltap.to_tap(output, code))


def test_pass_fail_skip_lines_become_points() -> None:
    out = "setup\nPASS: one\nFAIL: two # bad\nSKIP: three\n"
    res = parse(out, 1)
    assert res.passed == ["one"]
    assert res.failed == ["two  bad"]
    assert res.skipped == [("three", "three")]
    assert res.error is None


def test_nonzero_exit_without_fail_line_fails() -> None:
    res = parse("PASS: one\nSegmentation fault\n", 139)
    assert res.passed == ["one"]
    assert res.failed == ["script exited with status 139 without a FAIL line"]


def test_silent_script_fails_and_whole_skip_is_a_skip() -> None:
    assert parse("", 0).failed == ["the script printed no PASS/FAIL/SKIP line"]
    res = parse("SKIP: Could not run test without nft tool\n", 4)
    assert res.ok and res.skipped and not res.passed
