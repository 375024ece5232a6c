"""TAP and JUnit parsing, and the judgement of a whole results directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import report, results

SPLATS = Path(__file__).parent / "splats"

KSFT_TAP = """TAP version 13
1..3
# Starting 3 tests from 1 test cases.
#  RUN           ring.setup ...
#            OK  ring.setup
ok 1 ring.setup
not ok 2 ring.mmap_len
ok 3 ring.kasan_only # SKIP needs CONFIG_KASAN
# Totals: pass:1 fail:1 xfail:0 xpass:0 skip:1 error:0
"""

JUNIT = """<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest" errors="0"
failures="1" skipped="1" tests="4"><testcase classname="test_a" name="test_ok" time="0.1"/>
<testcase classname="test_a" name="test_bad"><failure message="assert 1 == 2">x</failure></testcase>
<testcase classname="test_a" name="test_err"><error message="fixture">y</error></testcase>
<testcase classname="test_b" name="test_skip"><skipped type="pytest.skip" message="no nft here">s</skipped>
</testcase></testsuite></testsuites>"""


def test_kselftest_tap() -> None:
    res = results.parse_tap("k", KSFT_TAP)
    assert res.passed == ["ring.setup"]
    assert res.failed == ["ring.mmap_len"]
    assert res.skipped == [("ring.kasan_only", "needs CONFIG_KASAN")]
    assert res.error is None and not res.ok


def test_truncated_tap_is_an_error() -> None:
    res = results.parse_tap("k", "TAP version 13\n1..3\nok 1 a\n")
    assert res.error == "planned 3 tests, reported 1"
    assert results.parse_tap("k", "ok 1 a\n").error is not None
    assert results.parse_tap("k", "1..2\nok 1 a\nBail out! VM gone\n").error == "bailed out: VM gone"


def test_junit() -> None:
    res = results.parse_junit("g", JUNIT)
    assert res.passed == ["test_a::test_ok"]
    assert res.failed == ["test_a::test_bad", "test_a::test_err"]
    assert res.skipped == [("test_b::test_skip", "no nft here")]
    assert results.parse_junit("g", "<testsuites/>").error == "no test ran"
    assert results.parse_junit("g", "<oops").error is not None


def test_a_failed_pytest_is_reported_with_why(tmp_path: Path) -> None:
    """The CI log keeps only the summary: a failure must say why there."""
    results_dir = make_results(tmp_path)
    (results_dir / "guest.xml").write_text(JUNIT)
    lines, ok, _ = report.judge(results_dir)
    assert not ok
    assert "  FAIL guest: test_a::test_bad: assert 1 == 2" in lines
    assert "  FAIL guest: test_a::test_err: fixture" in lines
    long = results.SuiteResult("g", failed=["t"], why_failed={"t": "x" * 500})
    assert len(long.failure_line("t")) < 200 and long.failure_line("t").endswith("...")


def make_results(tmp: Path, *, tap: str = "1..1\nok 1 a\n", dmesg: str = "",
                 status: str = "vm_used=1\nvm_rc=0\n") -> Path:
    (tmp / "suites.txt").write_text("kself guest\n")
    (tmp / "kself.tap").write_text(tap)
    (tmp / "guest.xml").write_text(JUNIT.replace('<failure message="assert 1 == 2">x</failure>', "")
                                   .replace('<error message="fixture">y</error>', ""))
    (tmp / "dmesg.txt").write_text(dmesg or (SPLATS / "clean-boot.txt").read_text())
    (tmp / "vm.status").write_text(status)
    return tmp


def test_clean_run_passes_and_counts(tmp_path: Path) -> None:
    lines, ok, _ = report.judge(make_results(tmp_path))
    assert ok
    assert lines[-1] == "result: 4 passed, 0 failed, 1 skipped"
    assert any("SKIP guest: test_b::test_skip: no nft here" in line for line in lines)


def test_splat_fails_a_green_run_and_is_named(tmp_path: Path) -> None:
    lines, ok, _ = report.judge(make_results(tmp_path, dmesg=(SPLATS / "warn-on.txt").read_text()))
    assert not ok
    assert any("SPLAT WARNING: WARNING: CPU: 0 PID: 231 at net/netlink/af_netlink.c:1732" in line for line in lines)


def test_failed_test_fails(tmp_path: Path) -> None:
    _, ok, _ = report.judge(make_results(tmp_path, tap="1..1\nnot ok 1 a\n"))
    assert not ok


def test_vm_timeout_or_missing_suite_fails(tmp_path: Path) -> None:
    _, ok, summary = report.judge(make_results(tmp_path, status="vm_used=1\nvm_rc=124\ntimed_out=1\nseconds=9\n"))
    assert not ok and summary["problems"] == ["VM timed out after 9 s"]
    (tmp_path / "kself.tap").unlink()
    _, ok, summary = report.judge(tmp_path)
    assert not ok
    assert "kself" in str(summary["suites"]) and "did not run" in str(summary["suites"])


def test_vm_that_never_came_up_fails(tmp_path: Path) -> None:
    results_dir = make_results(tmp_path, status="vm_used=1\nvm_rc=255\n")
    (results_dir / "dmesg.txt").unlink()
    _, ok, summary = report.judge(results_dir)
    assert not ok
    problems = summary["problems"]
    assert isinstance(problems, list)
    assert any("exited with status 255" in p for p in problems)
    assert "no kernel log came back from the guest" in problems


@pytest.mark.parametrize("boot", [b for b in results.JUDGED_BOOTS if b])
def test_performance_and_nommap_kernel_boots_are_judged_too(tmp_path: Path, boot: str) -> None:
    """A splat or a failed VM in any boot of a job (perf/, the judging rounds' perf2/, nommap3/,
    perf-ring2/ ...) fails the job like the main boot's (the nommap kernel carries the series'
    code that the option does not gate)."""
    results_dir = make_results(tmp_path)
    perf = results_dir / boot
    perf.mkdir()
    (perf / "vm.status").write_text("vm_used=1\nvm_rc=0\nseconds=7\n")
    (perf / "dmesg.txt").write_text((SPLATS / "warn-on.txt").read_text())
    lines, ok, _ = report.judge(results_dir)
    assert not ok
    assert any(line.startswith(f"kernel log: {boot}/dmesg.txt, 1 splat(s)") for line in lines)
    assert f"time in VM ({boot} kernel): 7 s" in lines
    (perf / "dmesg.txt").write_text((SPLATS / "clean-boot.txt").read_text())
    (perf / "vm.status").write_text("vm_used=1\nvm_rc=255\n")
    _, ok, summary = report.judge(results_dir)
    problems = summary["problems"]
    assert isinstance(problems, list)
    assert not ok and any(str(p).startswith(f"{boot} boot: VM exited with status 255") for p in problems)


def test_a_retried_boot_is_noted(tmp_path: Path) -> None:
    results_dir = make_results(tmp_path, status="vm_used=1\nvm_rc=0\nboot_retries=1\n")
    lines, ok, _ = report.judge(results_dir)
    assert ok
    assert any(line.startswith("  NOTE: main boot retried") for line in lines)


def test_failed_assertions_are_failures_not_errors_or_skips() -> None:
    xml = """<testsuite>
      <testcase classname="t" name="a"><failure message="x"/></testcase>
      <testcase classname="t" name="b"><error message="y"/></testcase>
      <testcase classname="t" name="c"><skipped message="z"/></testcase>
      <testcase classname="t" name="d"/>
    </testsuite>"""
    assert results.failed_assertions(xml) == ["t::a"]
    assert results.failed_assertions("not xml") == []


def test_the_judging_rounds_are_printed_for_the_cross_check(capsys: pytest.CaptureFixture[str]) -> None:
    """vm/cross/check.sh boots what `rounds` prints, in that order, as harness.job does."""
    assert results.main(["rounds", "nommap"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [f"{name} {side}" for name, side in results.NOMMAP_ROUNDS]
    assert [line.split()[1] for line in lines].count(results.PATCHED) == 2, "three patched runs with the first"
    assert results.main(["rounds", "ring"]) == 0
    assert capsys.readouterr().out.split() == [w for name in results.RING_ROUNDS for w in (name, results.PATCHED)]
    assert results.main(["rounds", "other"]) == 2


def test_why_a_suite_did_not_finish_is_printed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """vm/cross/check.sh asks this before it boots judging rounds for a suite."""
    (tmp_path / "whole.tap").write_text("TAP version 13\n1..1\nnot ok 1 a\n")
    (tmp_path / "cut.tap").write_text("TAP version 13\n1..2\nnot ok 1 a\n")
    assert results.main(["error", str(tmp_path / "whole.tap")]) == 0
    assert capsys.readouterr().out == "\n"
    assert results.main(["error", str(tmp_path / "cut.tap")]) == 0
    assert "planned 2 tests, reported 1" in capsys.readouterr().out
