"""The benchmark's tables, ratios and smoke verdicts, from made-up runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness import benchreport as bench
from harness import results


def nfq(path: str, verdict: str, size: int, guest_ns: int, lost: int = 0, rep: int = 1) -> bench.Run:
    return {"workload": "nfq", "mode": "drain", "path": path, "verdict": verdict, "size": size, "flows": 4,
            "packets": 1000, "verdicted": 1000 - lost, "lost": lost, "queue_drops": 0,
            "guest_ns": guest_ns, "user_ns": 2_000_000, "sys_ns": 8_000_000, "generator_ns": 1,
            "cpu_busy_ns": 20_000_000, "rep": rep}


def dump(path: str, guest_ns: int, rep: int = 1) -> bench.Run:
    return {"workload": "dump", "path": path, "messages": 1000, "reads": 10, "guest_ns": guest_ns,
            "user_ns": 1, "sys_ns": 1, "rep": rep}


def test_stat_is_median_and_spread() -> None:
    stat = bench.Stat.of([3.0, 1.0, 2.0, 10.0, 4.0])
    assert (stat.median, stat.low, stat.high, stat.n) == (3.0, 1.0, 10.0, 5)
    assert stat.show() == "3 (1..10)"
    assert bench.Stat.of([1500.0]).show() == "1,500"


def test_ratios_use_medians_and_judge_targets() -> None:
    runs = []
    for rep, jitter in enumerate((0, 1_000_000, -1_000_000), 1):
        runs += [nfq("sock", "each", 64, 100_000_000 + jitter, rep=rep),
                 nfq("sock", "batch", 64, 80_000_000 + jitter, rep=rep),
                 nfq("ring", "each", 64, 25_000_000 + jitter, rep=rep),
                 nfq("ring", "batch", 64, 20_000_000 + jitter, rep=rep)]
    (line,) = [row for row in bench.nfq_ratios(runs, "drain") if row.startswith("| 64 ")]
    assert "| 4.00x (vs sock) | 4.00x (vs sock) | >= 3.0x: met | 5.00x |" in line


def test_the_headline_is_the_best_socket_path_per_verdict_style() -> None:
    """A faster socket-side variant (recvmmsg(), io_uring, packed verdicts)
    is what the ring is measured against; the libnetfilter_queue default
    (one sendmsg() per verdict) keeps its own column."""
    runs = [nfq("sock", "each", 64, 100), nfq("packed", "each", 64, 60), nfq("mmsg", "each", 64, 50),
            nfq("uring", "each", 64, 80), nfq("sock", "batch", 64, 70), nfq("mmsg", "batch", 64, 90),
            nfq("uring", "batch", 64, 40), nfq("ring", "each", 64, 25), nfq("ring", "batch", 64, 20)]
    (line,) = [row for row in bench.nfq_ratios(runs, "drain") if row.startswith("| 64 ")]
    assert "| 2.00x (vs mmsg) | 2.00x (vs uring) | >= 3.0x: missed | 5.00x |" in line


def test_missed_target_is_reported_as_missed() -> None:
    runs = [nfq("sock", "each", 1500, 100), nfq("sock", "batch", 1500, 100),
            nfq("ring", "each", 1500, 60), nfq("ring", "batch", 1500, 40)]
    (line,) = [row for row in bench.nfq_ratios(runs, "drain") if row.startswith("| 1500 ")]
    assert "missed" in line


def test_dump_ratio_and_base_comparison() -> None:
    patched = [dump("sock", 100), dump("ring", 50), nfq("sock", "each", 64, 101)]
    base = [dump("sock", 100), nfq("sock", "each", 64, 100)]
    assert any("ring/sock: 2.00x" in line and "met" in line for line in bench.dump_table(patched))
    rows = bench.base_table(patched, base)
    assert any(r.startswith("| nfq drain sock each 64 B") and "| 0.990 | yes |" in r for r in rows)
    assert any(r.startswith("| dump sock") and "| 1.000 | yes |" in r for r in rows)


def test_smoke_points_fail_on_loss_and_failed_runs(tmp_path: Path) -> None:
    runs = [nfq("ring", "batch", 64, 100), nfq("sock", "each", 64, 100, lost=3),
            {"failed": "nfq ring each 64 400 4", "error": "rings: Operation not permitted", "rep": 1}]
    path = tmp_path / "smoke.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in runs))
    suite = results.parse_tap("bench", results.tap_document(bench.smoke_points(bench.load(path), ("sock", "ring"))))
    assert suite.passed == ["nfq ran in the sock path, each verdicts", "nfq ran in the ring path, batch verdicts",
                            "nfq drain ring batch 64"]
    assert suite.failed == ["nfq ran in the sock path, batch verdicts", "nfq ran in the ring path, each verdicts",
                            "nfq forwarded in the sock path", "nfq forwarded in the ring path",
                            "dump ran in the sock path", "dump ran in the ring path",
                            "events ran in the sock path", "events ran in the ring path",
                            "nfq drain sock each 64", "nfq ring each 64 400 4"]


def test_a_path_that_never_ran_fails() -> None:
    runs = [nfq("sock", "each", 64, 100), nfq("sock", "batch", 64, 100), nfq("packed", "each", 64, 100),
            {**nfq("sock", "each", 64, 100), "series": "forward"},
            {**nfq("packed", "each", 64, 100), "series": "forward"},
            dump("sock", 100), {"workload": "events", "path": "sock", "delivered": 5, "guest_ns": 9}]
    assert [p for p in bench.smoke_points(runs, ("sock", "packed")) if p.startswith("not ok")] == []
    failed = [p for p in bench.smoke_points(runs, ("sock", "uring", "ring")) if p.startswith("not ok")]
    assert failed == ["not ok 3 nfq ran in the uring path, each verdicts",
                      "not ok 4 nfq ran in the uring path, batch verdicts",
                      "not ok 5 nfq ran in the ring path, each verdicts",
                      "not ok 6 nfq ran in the ring path, batch verdicts",
                      "not ok 8 nfq forwarded in the uring path", "not ok 9 nfq forwarded in the ring path",
                      "not ok 11 dump ran in the ring path", "not ok 13 events ran in the ring path"]
    assert not any("packed path, batch" in p for p in bench.smoke_points(runs)), "packed batch is the sock path"


def test_report_lists_failed_runs(tmp_path: Path) -> None:
    runs = [nfq("sock", "each", 64, 100), {"failed": "dump ring", "error": "stalled", "rep": 1}]
    text = bench.report(tmp_path, runs, [], "# Bench")
    assert "## Runs that failed" in text and "`dump ring`: stalled" in text


def test_ring_size_runs_stay_out_of_the_main_tables() -> None:
    small = {**nfq("ring", "batch", 64, 10), "series": "ringsize", "ring_frames": 64}
    large = {**nfq("ring", "batch", 64, 20), "series": "ringsize", "ring_frames": 2048}
    runs = [nfq("sock", "batch", 64, 100), nfq("ring", "batch", 64, 50), small, large]
    (line,) = [row for row in bench.nfq_ratios(runs, "drain") if row.startswith("| 64 ")]
    assert "| 2.00x (vs sock) |" in line
    table = bench.ringsize_table(runs)
    assert [row.split(" | ")[1] for row in table[2:]] == ["64", "2048"]


def test_matrix_is_the_one_list_of_sizes(tmp_path: Path) -> None:
    """vm/bench/matrix.txt: sizes in order, each with full and smoke packet counts;
    the report's targets name sizes the matrix has."""
    for line in bench.MATRIX.read_text().splitlines():
        fields = line.split()
        if fields and not fields[0].startswith("#"):
            size, full, smoke = (int(field) for field in fields)
            assert 0 < smoke <= full, line
    assert bench.SIZES == bench.read_sizes()
    assert set(bench.TARGET_NFQ) <= set(bench.SIZES)
    matrix = tmp_path / "matrix.txt"
    matrix.write_text("# size full smoke\n\n128 10 5\n  # indented comment\n4096 8 4\n")
    assert bench.read_sizes(matrix) == (128, 4096)
    matrix.write_text("# nothing\n")
    with pytest.raises(ValueError, match="no payload sizes"):
        bench.read_sizes(matrix)


def test_the_clock_table_shows_what_a_copied_byte_costs() -> None:
    runs: list[bench.Run] = [{"workload": "copy", "size": 64, "packets": 1000, "guest_ns": 64_000,
                              "copy_to_user_ns": 128_000},
                             {"workload": "copy", "size": 65000, "packets": 10, "guest_ns": 65_000,
                              "copy_to_user_ns": 6_500_000}]
    table = bench.clock_table(runs)
    assert table[2] == "| 64 | 1.000 | 2.000 | 0.031 |"
    assert table[3] == "| 65000 | 0.100 | 10.000 | 0.031 |"
    assert bench.clock_table([{"workload": "copy", "size": 64, "packets": 1, "guest_ns": 1}])[2:] == [], \
        "runs without copy_to_user_ns (before the clock study) have no row"


PERF_CALLS = """# Samples: 43K of event 'cpu-clock:ppp'
# Event count (approx.): {count}
#
# Children      Self       Samples  Symbol
     {sendmsg:.2f}%     0.00%             0  [k] netlink_sendmsg
     {reinject:.2f}%     0.19%            84  [k] nfqnl_reinject
     {fork:.2f}%     0.01%             4  [.] _Fork
#
# Overhead  Command          Symbol
    41.06%  swapper          [k] pv_native_safe_halt
"""


def profiled(folder: Path, name: str, daemon: float, reinject: float, fork: float) -> None:
    """A made-up profile of 1,000 packets over 10^8 guest-ns: shares in %."""
    (folder / f"{name}.txt").write_text(PERF_CALLS.format(count=100_000_000, sendmsg=reinject + 1,
                                                          reinject=reinject, fork=fork))
    (folder / f"{name}.comms").write_text(f"# Overhead  Command\n    {daemon:.2f}%  nlbench\n    50.00%  swapper\n")
    (folder / f"{name}.json").write_text(json.dumps(nfq("x", "each", 64, 1)))


def test_costs_split_the_daemon_into_reinjection_and_transport(tmp_path: Path) -> None:
    profiled(tmp_path, "nfq-drain-64-sock-batch", daemon=10.0, reinject=4.0, fork=1.0)
    profiled(tmp_path, "nfq-drain-64-mmsg-batch", daemon=8.0, reinject=4.0, fork=1.0)
    profiled(tmp_path, "nfq-drain-64-ring-batch", daemon=5.0, reinject=4.0, fork=1.0)
    cost = bench.profile_costs(tmp_path, "nfq-drain-64-ring-batch")
    assert cost is not None
    # 10^8 guest-ns over 1,000 packets: 1 % is 1,000 guest-ns per packet;
    # a fork in the report is the spawner's, not the daemon's
    assert (cost.daemon, cost.reinject, cost.transport) == (5000, 4000, 1000)
    lines = bench.costs_table(tmp_path)
    assert "| ring | batch | 5,000 | 4,000 | 1,000 |" in lines
    assert lines[-1] == ("batch verdicts: the ring's transport is 25% of the best socket path's "
                         "(mmsg: 4,000 guest-ns/pkt)")
    assert bench.profile_costs(tmp_path, "nfq-drain-64-uring-batch") is None, "no reports, no costs"
