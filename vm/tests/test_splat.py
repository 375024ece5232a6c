"""The splat scanner on kernel log texts of every kind it must catch."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import splat

SPLATS = Path(__file__).parent / "splats"

# fixture file -> (kind, start of the title)
EXPECTED = {
    "kasan-uaf.txt": ("KASAN", "BUG: KASAN: slab-use-after-free in netlink_recvmsg"),
    "warn-on.txt": ("WARNING", "WARNING: CPU: 0 PID: 231 at net/netlink/af_netlink.c:1732"),
    "lockdep-circular.txt": ("lockdep", "WARNING: possible circular locking dependency detected"),
    "sleep-in-atomic.txt": ("sleep in atomic", "BUG: sleeping function called from invalid context"),
    "oops-null.txt": ("Oops", "BUG: kernel NULL pointer dereference"),
    "rcu-stall.txt": ("RCU stall", "rcu: INFO: rcu_preempt detected stalls"),
    # seen on our 7.3.4 KASAN build under TCG at boot (see vm/run.sh, no5lvl)
    "kasan-wild-boot-7.3.txt": ("KASAN", "BUG: KASAN: wild-memory-access in do_raw_spin_lock"),
    # the deliberately broken kernel's WARN_ON_ONCE, as 7.3 prints it
    "warn-on-7.3.txt": ("WARNING", "WARNING: ../linux/net/netlink/af_netlink.c:1682 at netlink_setsockopt"),
    "hung-task.txt": ("hung task", "INFO: task nf_queue:431 blocked for more than 122 seconds."),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_splat_is_found_once(name: str) -> None:
    found = splat.scan((SPLATS / name).read_text())
    kind, title = EXPECTED[name]
    assert [(s.kind, s.title[: len(title)]) for s in found] == [(kind, title)]


def test_clean_boot_log_has_no_splat() -> None:
    assert splat.scan((SPLATS / "clean-boot.txt").read_text()) == []


def test_splats_inside_a_long_log_are_all_found_in_order() -> None:
    clean = (SPLATS / "clean-boot.txt").read_text()
    log = clean + (SPLATS / "warn-on.txt").read_text() + clean + (SPLATS / "kasan-uaf.txt").read_text() + clean
    found = splat.scan(log)
    assert [s.kind for s in found] == ["WARNING", "KASAN"]
    assert found[1].line > found[0].line


def test_kasan_report_quoting_bug_again_is_one_splat() -> None:
    text = (SPLATS / "kasan-uaf.txt").read_text().replace("Allocated by task", "BUG: still the same report")
    assert len(splat.scan(text)) == 1


def test_timestamps_and_caller_ids_are_stripped() -> None:
    assert splat.strip_timestamp("[   12.503766] [  T231] WARNING: CPU: 0") == "WARNING: CPU: 0"
    assert splat.strip_timestamp("<4>[    1.000000] BUG: foo") == "BUG: foo"


def test_cli_exit_status(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "dmesg.txt"
    log.write_text((SPLATS / "oops-null.txt").read_text())
    assert splat.main([str(log)]) == 1
    assert "Oops" in capsys.readouterr().out
    log.write_text((SPLATS / "clean-boot.txt").read_text())
    assert splat.main([str(log)]) == 0
