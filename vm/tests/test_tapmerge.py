"""Several kselftest programs' TAP merged into one suite."""

from __future__ import annotations

from harness import results, tapmerge

RX = "TAP version 13\n1..2\n# note\nok 1 usersock.a\nok 2 b # SKIP no thing\n"
TX = "TAP version 13\n1..2\nok 1 c\nnot ok 2 d\n"


def merged(*programs: tuple[str, str, int]) -> results.SuiteResult:
    return results.parse_tap("k", tapmerge.merge(list(programs)))


def test_points_are_renumbered_and_named_by_program() -> None:
    res = merged(("rx_ring", RX, 4), ("tx_ring", TX, 1))
    assert res.error is None
    assert res.passed == ["rx_ring: usersock.a", "tx_ring: c"]
    assert res.skipped == [("rx_ring: b", "no thing")]
    assert res.failed == ["tx_ring: d"]


def test_a_program_that_did_not_finish_fails() -> None:
    res = merged(("rx_ring", RX, 0), ("tx_ring", "TAP version 13\n1..3\nok 1 c\n", 139))
    assert res.failed == ["tx_ring: planned 3 tests, reported 1 (exit 139)"]
    assert merged(("tx_ring", "", 127)).failed == ["tx_ring: no TAP plan: the suite did not finish (exit 127)"]


def test_failure_exit_without_failing_point_fails() -> None:
    res = merged(("rx_ring", "TAP version 13\n1..1\nok 1 a\n", 1))
    assert res.failed == ["rx_ring: exited with status 1 without a failing test"]
