"""run_kselftest.sh output (the kselftest framework, as kernel CI runs it) to TAP."""

from __future__ import annotations

from harness import ksft, results, suites


def section(program: str, nested: list[str], close: str) -> list[str]:
    """One program's part of run_kselftest.sh's output (kselftest/runner.sh)."""
    return ["# timeout set to 45", f"# selftests: net/netlink_mmap: {program}",
            *(f"# {line}" for line in nested), close]


def framework(*parts: list[str]) -> str:
    return "\n".join(["TAP version 13", f"1..{len(parts)}", *(line for part in parts for line in part)]) + "\n"


RX_PASSES = section("rx_ring", ["TAP version 13", "1..2", "# Starting 2 tests", "ok 1 setup.geometry",
                                "ok 2 setup.mapping", "# PASSED: 2 / 2 tests passed."],
                    "ok 1 selftests: net/netlink_mmap: rx_ring")


def judge(output: str, nested: ksft.Nested = "tap",
          programs: tuple[str, ...] = ("rx_ring", "tx_ring")) -> results.SuiteResult:
    return results.parse_tap("t", ksft.to_tap(output, nested, programs))


def test_each_programs_nested_points_become_named_points() -> None:
    tx = section("tx_ring", ["TAP version 13", "1..2", "ok 1 tx.batch", "not ok 2 tx.errors"],
                 "not ok 2 selftests: net/netlink_mmap: tx_ring # exit=1")
    res = judge(framework(RX_PASSES, tx))
    assert res.passed == ["rx_ring: setup.geometry", "rx_ring: setup.mapping", "tx_ring: tx.batch"]
    assert res.failed == ["tx_ring: tx.errors"]


def test_a_program_killed_at_the_framework_timeout_fails_though_its_points_passed() -> None:
    tx = section("tx_ring", ["TAP version 13", "1..1", "ok 1 tx.batch"],
                 "not ok 2 selftests: net/netlink_mmap: tx_ring # TIMEOUT 45 seconds")
    res = judge(framework(RX_PASSES, tx))
    assert "tx_ring: tx.batch" in res.passed
    assert res.failed == [f"tx_ring: exited with status {ksft.TIMEOUT_CODE} without a failing test"]


def test_a_program_that_did_not_run_or_was_cut_short_fails() -> None:
    cut = ["# selftests: net/netlink_mmap: tx_ring", "# TAP version 13", "# 1..3", "# ok 1 tx.batch"]
    res = judge(framework(RX_PASSES, cut))
    assert any("never reported its result" in name for name in res.failed)
    res = judge(framework(RX_PASSES))
    assert res.failed == ["tx_ring: run_kselftest.sh did not run it"]


def test_a_skipped_program_is_a_skip_not_a_pass() -> None:
    tx = section("tx_ring", ["TAP version 13", "1..0 # SKIP no rings"],
                 "ok 2 selftests: net/netlink_mmap: tx_ring # SKIP")
    res = judge(framework(RX_PASSES, tx))
    assert res.ok and not res.failed
    assert not any(name.startswith("tx_ring") for name in res.passed)


def test_a_shell_selftests_pass_fail_lines_are_judged_as_when_run_directly() -> None:
    out = framework(["# timeout set to 1800", "# selftests: net/netfilter: nft_queue_ring.sh",
                     "# PASS: tcp via loopback", "# FAIL: udp via veth",
                     "not ok 1 selftests: net/netfilter: nft_queue_ring.sh # exit=1"])
    res = judge(out, "shell", ("nft_queue_ring.sh",))
    assert res.passed == ["tcp via loopback"]
    assert res.failed == ["udp via veth"]


def test_the_cross_check_suites_run_their_own_programs() -> None:
    cross = suites.CROSS_SUITES
    assert list(cross) == ["guest", "kselftest", "mcast_filter", "nft_queue", "nft_queue_ring"]
    # the tree's programs are x86's: a cross suite runs the install or its build folder
    for suite in cross.values():
        assert not isinstance(suite.runner, suites.ShellSelftest)
        if isinstance(suite.runner, suites.Kselftests):
            assert suite.runner.base == "kbuild"
    assert suites.lookup("nft_queue", cross=True).runner != suites.lookup("nft_queue").runner
