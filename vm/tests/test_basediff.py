"""Judging the upstream selftest on the patched kernel against the base."""

from __future__ import annotations

from harness import basediff, results, shelltap


def run(output: str, code: int) -> results.SuiteResult:
    return results.parse_tap("nft_queue", shelltap.to_tap(output, code))


BASE = run("PASS: ns1-AbC123 can reach ns2-xYz789\nPASS: ip: drop\nFAIL: Expected 10 packets total, but got 0\n", 1)


def judged(patched_output: str, code: int) -> results.SuiteResult:
    return results.parse_tap("nft_queue", basediff.compare(BASE, run(patched_output, code)))


def test_same_failure_as_base_is_a_skip_with_reason() -> None:
    res = judged("PASS: ns1-Qw12er can reach ns2-Ty34ui\nPASS: ip: drop\nFAIL: Expected 10 packets total, but got 0\n", 1)
    assert res.ok
    assert len(res.passed) == 2
    assert res.skipped and "unpatched base kernel too" in res.skipped[0][1]


def test_new_failure_fails() -> None:
    res = judged("PASS: ns1-Qw12er can reach ns2-Ty34ui\nFAIL: ip: drop\n", 1)
    assert res.failed == ["ip: drop (passes on the unpatched base kernel)"]
    assert not res.ok


def test_check_passing_on_base_but_never_reached_fails() -> None:
    res = judged("PASS: ns1-Qw12er can reach ns2-Ty34ui\n", 139)
    assert not res.ok
    assert "ip: drop (passes on the unpatched base kernel, never reached on the patched one)" in res.failed


def test_patched_passing_more_than_base_is_fine() -> None:
    res = judged("PASS: ns1-Qw12er can reach ns2-Ty34ui\nPASS: ip: drop\nPASS: Expected 10 packets total, but got 0\n"
                 "PASS: tcp forward\n", 0)
    assert res.ok and len(res.passed) == 4 and not res.skipped
