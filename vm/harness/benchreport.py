"""The benchmark's results: JSON lines from vm/bench/guest.sh in, tables,
plots and a TAP smoke verdict out.

  python -m harness.benchreport report OUTDIR PATCHED.jsonl [BASE.jsonl]
      results.md (tables, ratios, targets) and *.png in OUTDIR
  python -m harness.benchreport tap [--paths "sock packed mmsg uring ring"] RUN.jsonl
  python -m harness.benchreport costs PROFILE_DIR
      from make bench-profile's reports: each nfqueue variant's daemon time
      per packet, split into reinjection and transport
      TAP: every workload ran in every path, and one point per run: it
      finished, lost nothing, measured time (the smoke version in make check)

Times are guest nanoseconds (under QEMU -icount: executed instructions).
Every point is the median over the repetitions, with the spread (min..max)
beside it; ratios compare medians of variants measured in the same boot.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from harness.results import tap_document

Run = dict[str, object]
MATRIX = Path(__file__).resolve().parents[1] / "bench" / "matrix.txt"


def read_sizes(path: Path = MATRIX) -> tuple[int, ...]:
    """The payload sizes of the benchmark matrix (first column, in order)."""
    sizes = []
    for line in path.read_text().splitlines():
        fields = line.split()
        if fields and not fields[0].startswith("#"):
            sizes.append(int(fields[0]))
    if not sizes:
        raise ValueError(f"{path}: no payload sizes")
    return tuple(sizes)


SIZES = read_sizes()
# How the nfqueue daemon reads and verdicts (vm/bench/nlbench.c): the socket
# paths a user could pick without the rings, then the rings.  "packed" with
# batch verdicts is the sock path (one message per round either way).
NFQ_PATHS = ("sock", "packed", "mmsg", "uring", "ring")
SOCKET_PATHS = NFQ_PATHS[:-1]
NFQ_VARIANTS = tuple((p, v) for p in NFQ_PATHS for v in ("each", "batch") if (p, v) != ("packed", "batch"))
# the paths of the dump and events workloads
MSG_PATHS = ("sock", "ring")
# The targets: ring vs socket packets per guest-second at 64 and
# 1500 bytes, dumps, and the socket path against the unpatched base.
TARGET_NFQ = {64: 3.0, 1500: 2.0}
TARGET_DUMP = 1.5
TARGET_BASE = 0.02


def load(path: Path) -> list[Run]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def num(run: Run, key: str) -> float:
    value = run[key]
    if not isinstance(value, (int, float)):
        raise ValueError(f"{key} is not a number in {run}")
    return float(value)


@dataclass(frozen=True)
class Stat:
    """Median and spread of one measure over the repetitions."""

    median: float
    low: float
    high: float
    n: int

    @staticmethod
    def of(values: Iterable[float]) -> Stat:
        vals = sorted(values)
        if not vals:
            raise ValueError("no runs")
        return Stat(statistics.median(vals), vals[0], vals[-1], len(vals))

    def show(self, scale: float = 1.0, digits: int = 0) -> str:
        fmt = f"{{:,.{digits}f}}"
        if self.n == 1:
            return fmt.format(self.median / scale)
        return (f"{fmt.format(self.median / scale)} "
                f"({fmt.format(self.low / scale)}..{fmt.format(self.high / scale)})")


def pick(runs: list[Run], series: object = "main", **match: object) -> list[Run]:
    """The runs of the series that finished and match (runs without a series are main)."""
    return [r for r in runs if "failed" not in r and r.get("series", "main") == series
            and all(r.get(k) == v for k, v in match.items())]


def stat(runs: list[Run], measure: Callable[[Run], float], **match: object) -> Stat | None:
    chosen = pick(runs, **match)
    return Stat.of(measure(r) for r in chosen) if chosen else None


def pps(run: Run) -> float:
    return num(run, "verdicted") / num(run, "guest_ns") * 1e9


def cost_per_packet(run: Run) -> float:
    return (num(run, "user_ns") + num(run, "sys_ns")) / num(run, "verdicted")


def busy_per_packet(run: Run) -> float:
    return num(run, "cpu_busy_ns") / num(run, "verdicted")


def dump_rate(run: Run) -> float:
    return num(run, "messages") / num(run, "guest_ns") * 1e9


def copy_rate(run: Run) -> float:
    return num(run, "packets") / num(run, "guest_ns") * 1e9


def ratio(a: Stat | None, b: Stat | None) -> float | None:
    return a.median / b.median if a and b and b.median else None


def show_ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}x"


MODES = {"drain": "packets wait in the ring or the socket, the daemon alone is timed",
         "flood": "generators and daemon run together, the whole run is timed"}


def nfq_table(runs: list[Run], mode: str, series: str = "main") -> list[str]:
    lines = ["| size (B) | path | verdicts | packets/guest-s | MB/guest-s | daemon user+sys ns/pkt "
             "| all CPUs busy ns/pkt |", "|---|---|---|---|---|---|---|"]
    for size in SIZES:
        for path, verdict in NFQ_VARIANTS:
            match = {"series": series, "workload": "nfq", "mode": mode, "path": path, "verdict": verdict,
                     "size": size}
            rate = stat(runs, pps, **match)
            if rate is None:
                continue
            cost = stat(runs, cost_per_packet, **match)
            busy = stat(runs, busy_per_packet, **match)
            assert cost and busy
            mbps = Stat(rate.median * size, rate.low * size, rate.high * size, rate.n)
            lines.append(f"| {size} | {path} | {verdict} | {rate.show()} | {mbps.show(1e6, 1)} "
                         f"| {cost.show()} | {busy.show()} |")
        ceiling = stat(runs, copy_rate, workload="copy", size=size) if series == "main" else None
        if ceiling:
            ceiling_bytes = Stat(ceiling.median * size, ceiling.low * size, ceiling.high * size, ceiling.n)
            lines.append(f"| {size} | memcpy ceiling | - | {ceiling.show()} | "
                         f"{ceiling_bytes.show(1e6, 1)} | - | - |")
    return lines


def best_socket(rates: dict[tuple[str, str], Stat | None], verdict: str) -> tuple[str, Stat | None]:
    """The fastest socket-side path for a verdict style (median packets/guest-s)."""
    have = [(path, rates.get((path, verdict))) for path in SOCKET_PATHS]
    measured = [(path, st) for path, st in have if st]
    if not measured:
        return "-", None
    return max(measured, key=lambda item: item[1].median)


def nfq_ratios(runs: list[Run], mode: str, series: str = "main") -> list[str]:
    """The headline: the ring against the best socket-side path, per verdict
    style; then libnetfilter_queue's default (one sendmsg() per verdict)."""
    lines = ["| size (B) | ring / best socket path, per-packet verdicts | ring / best socket path, batch verdicts "
             "| target | ring batch / sock per-packet (libnetfilter_queue default) |",
             "|---|---|---|---|---|"]
    for size in SIZES:
        rates = {v: stat(runs, pps, series=series, workload="nfq", mode=mode, path=v[0], verdict=v[1], size=size)
                 for v in NFQ_VARIANTS}
        if not any(rates.values()):
            continue
        cells = []
        worst: float | None = None
        for verdict in ("each", "batch"):
            name, best = best_socket(rates, verdict)
            value = ratio(rates[("ring", verdict)], best)
            cells.append(f"{show_ratio(value)} (vs {name})")
            if value is not None:
                worst = value if worst is None else min(worst, value)
        target = TARGET_NFQ.get(size)
        met = "-"
        if target is not None and worst is not None:
            met = f">= {target:.1f}x: {'met' if worst >= target else 'missed'}"
        default = ratio(rates[("ring", "batch")], rates[("sock", "each")])
        lines.append(f"| {size} | {cells[0]} | {cells[1]} | {met} | {show_ratio(default)} |")
    return lines


# A current x86 core copies cached data at up to 32 bytes per cycle (Intel
# 64 and IA-32 Architectures Optimization Reference Manual, Skylake client
# cache parameters: L1D peak 64 bytes loaded plus 32 bytes stored per
# cycle; a copy is bound by the stores).
HW_COPY_BYTES_PER_CYCLE = 32


def clock_table(runs: list[Run]) -> list[str]:
    """What a copied byte costs on this run's clock: glibc memcpy() and the
    kernel's copy_to_user() (nlbench copy), per size."""
    lines = ["| size (B) | memcpy() guest-ns/byte | copy_to_user() guest-ns/byte "
             f"| a current x86 core, cycles/byte (cached, {HW_COPY_BYTES_PER_CYCLE} B/cycle) |",
             "|---|---|---|---|"]
    for size in SIZES:
        chosen = [r for r in pick(runs, workload="copy", size=size) if "copy_to_user_ns" in r]
        if not chosen:
            continue
        user = Stat.of(num(r, "guest_ns") / num(r, "packets") / size for r in chosen)
        kernel = Stat.of(num(r, "copy_to_user_ns") / num(r, "packets") / size for r in chosen)
        lines.append(f"| {size} | {user.show(digits=3)} | {kernel.show(digits=3)} "
                     f"| {1 / HW_COPY_BYTES_PER_CYCLE:.3f} |")
    return lines


def dump_table(runs: list[Run]) -> list[str]:
    # reads: recv() calls (sock) or frames read (ring); system calls: the
    # request and the reads (sock), or the request, the zero-length reads
    # that move the dump on and the poll()s (ring)
    lines = ["| path | messages | messages/guest-s | guest ms to complete | reads (sock) or frames (ring) "
             "| system calls |", "|---|---|---|---|---|---|"]
    for path in MSG_PATHS:
        chosen = pick(runs, workload="dump", path=path)
        if not chosen:
            continue
        rate = Stat.of(dump_rate(r) for r in chosen)
        took = Stat.of(num(r, "guest_ns") for r in chosen)
        calls = f"{int(statistics.median(num(r, 'syscalls') for r in chosen)):,}" if "syscalls" in chosen[0] else "-"
        lines.append(f"| {path} | {int(num(chosen[0], 'messages')):,} | {rate.show()} | {took.show(1e6, 1)} "
                     f"| {int(statistics.median(num(r, 'reads') for r in chosen)):,} | {calls} |")
    rings = stat(runs, dump_rate, workload="dump", path="ring")
    socks = stat(runs, dump_rate, workload="dump", path="sock")
    value = ratio(rings, socks)
    if value is not None:
        lines.append("")
        lines.append(f"ring/sock: {value:.2f}x (target >= {TARGET_DUMP}x: "
                     f"{'met' if value >= TARGET_DUMP else 'missed'})")
    return lines


def ringsize_table(runs: list[Run]) -> list[str]:
    """64-byte packets, ring path, batch verdicts, with a small and a large RX ring."""
    chosen = pick(runs, series="ringsize")
    if not chosen:
        return []
    lines = ["| mode | RX frames | packets/guest-s | daemon user+sys ns/pkt |", "|---|---|---|---|"]
    for mode in MODES:
        for frames in sorted({int(num(r, "ring_frames")) for r in chosen}):
            match = {"series": "ringsize", "mode": mode, "ring_frames": frames}
            rate, cost = stat(runs, pps, **match), stat(runs, cost_per_packet, **match)
            if rate and cost:
                lines.append(f"| {mode} | {frames} | {rate.show()} | {cost.show()} |")
    return lines


def events_table(runs: list[Run]) -> list[str]:
    # memory: the ring's bytes plus the least receive buffer it keeps, or
    # the socket's receive buffer of the same size
    lines = ["| path | memory (KiB) | events | delivered | lost | overruns reported |", "|---|---|---|---|---|---|"]
    for path in MSG_PATHS:
        chosen = pick(runs, workload="events", path=path)
        if not chosen:
            continue
        delivered = Stat.of(num(r, "delivered") for r in chosen)
        lost = Stat.of(num(r, "lost") for r in chosen)
        overruns = Stat.of(num(r, "overruns") for r in chosen)
        lines.append(f"| {path} | {int(num(chosen[0], 'memory')) >> 10} | {int(num(chosen[0], 'count')):,} "
                     f"| {delivered.show()} | {lost.show()} | {overruns.show()} |")
    return lines


def base_table(patched: list[Run], base: list[Run]) -> list[str]:
    lines = ["| workload | base | patched | patched/base | within 2 % |", "|---|---|---|---|---|"]
    rows: list[tuple[str, Stat | None, Stat | None]] = []
    for mode in MODES:
        for size in SIZES:
            for path, verdict in NFQ_VARIANTS:
                if path not in SOCKET_PATHS:
                    continue
                match = {"workload": "nfq", "mode": mode, "path": path, "verdict": verdict, "size": size}
                rows.append((f"nfq {mode} {path} {verdict} {size} B (packets/guest-s)", stat(base, pps, **match),
                             stat(patched, pps, **match)))
    rows.append(("dump sock (messages/guest-s)", stat(base, dump_rate, workload="dump", path="sock"),
                 stat(patched, dump_rate, workload="dump", path="sock")))
    for name, b, p in rows:
        value = ratio(p, b)
        if b is None or p is None or value is None:
            continue
        lines.append(f"| {name} | {b.show()} | {p.show()} | {value:.3f} "
                     f"| {'yes' if value >= 1 - TARGET_BASE else 'no'} |")
    return lines


def failures(runs: list[Run]) -> list[str]:
    return [f"- `{r['failed']}`: {r.get('error', '')}" for r in runs if "failed" in r]


def plot(outdir: Path, patched: list[Run], caption: str = "") -> list[str]:
    """PNG plots, captioned (kernel, date); their file names (none if
    matplotlib is missing)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("bench: matplotlib is not installed: no plots", file=sys.stderr)
        return []
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for path, verdict in NFQ_VARIANTS:
        points = [(s, stat(patched, pps, workload="nfq", mode="drain", path=path, verdict=verdict, size=s))
                  for s in SIZES]
        have = [(s, st) for s, st in points if st]
        if not have:
            continue
        xs = [str(s) for s, _ in have]
        ax.errorbar(xs, [st.median for _, st in have],
                    yerr=[[st.median - st.low for _, st in have], [st.high - st.median for _, st in have]],
                    marker="o", capsize=3, label=f"{path}, {verdict} verdicts")
    ax.set_yscale("log")
    ax.set_xlabel("UDP payload (bytes)")
    ax.set_ylabel("packets per guest-second")
    ax.set_title("nfnetlink_queue daemon: socket path vs rings (drain, median, min..max)"
                 + (f"\n{caption}" if caption else ""), fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(outdir / "nfqueue.png", dpi=100)
    plt.close(fig)
    return ["nfqueue.png"]


def report(outdir: Path, patched: list[Run], base: list[Run], header: str, caption: str = "") -> str:
    parts = [header, "",
             "The memcpy ceiling is glibc's memcpy() of the packet's bytes in the same guest.  Under "
             "QEMU -icount each iteration of a `rep movsb` counts as one instruction, so for large "
             "sizes this ceiling sits below what the kernel's own copies reach; it is a real "
             "ceiling only on a wall clock (KVM).", ""]
    for mode, what in MODES.items():
        parts += [f"## nfnetlink_queue, {mode}: {what}", "", *nfq_table(patched, mode), "",
                  "Ratios:", "", *nfq_ratios(patched, mode), ""]
    forward = pick(patched, series="forward")
    if forward:
        parts += ["## nfnetlink_queue, forwarded: the queue in a router's forward chain", "",
                  "UDP from one netns to another through a router netns (veth pairs, MTU 65535) whose "
                  "forward chain queues it: an accepted packet is forwarded, as through an IPS, instead of "
                  "delivered to a local socket in the daemon's system call.", ""]
        for mode in MODES:
            parts += [f"### {mode}", "", *nfq_table(patched, mode, "forward"), "", "Ratios:", "",
                      *nfq_ratios(patched, mode, "forward"), ""]
    sizes = ringsize_table(patched)
    if sizes:
        parts += ["## RX ring size (64 B, ring path, batch verdicts)", "",
                  "An idle poll() reads no frame, whatever the ring's size.  A small ring "
                  "leaves more messages in the receive queue, to be moved into frames on the "
                  "next poll() or recvmsg(), so it is expected to be the slower one.",
                  "", *sizes, ""]
    clock = clock_table(patched)
    if len(clock) > 2:
        parts += ["## The clock: what a copied byte costs", "",
                  "Under QEMU -icount a guest-ns is one executed instruction.  A hardware core runs "
                  "networking code at about one instruction per cycle but copies cached data at up to "
                  f"{HW_COPY_BYTES_PER_CYCLE} bytes per cycle, so where a byte costs more guest-ns than "
                  f"1/{HW_COPY_BYTES_PER_CYCLE} here, copies weigh more in these numbers than on hardware "
                  "by that factor, and the large-size ratios (where the copies dominate) are the clock's as "
                  "much as the paths'.", "", *clock, ""]
    parts += ["## Route dump", "", *dump_table(patched), "",
              "## Route events to one listener at the same memory", "", *events_table(patched), ""]
    if base:
        parts += ["## Socket path: patched vs unpatched base", "", *base_table(patched, base), ""]
    broken = failures(patched + base)
    if broken:
        parts += ["## Runs that failed", "", *broken, ""]
    for name in plot(outdir, patched, caption):
        parts += [f"![{name}]({name})", ""]
    return "\n".join(parts)


# The daemon's time in a profile (vm/bench/profile.sh), per packet: what
# reinjection takes (nfqnl_reinject(): the accepted packet goes on through
# the stack in the verdict sender's system call) and the rest, the
# transport: what reading packets and sending verdicts cost.  The daemon
# (comm nlbench) never forks: a spawner forks the generators.
REINJECT = "nfqnl_reinject"


@dataclass(frozen=True)
class Costs:
    """guest-ns per packet of one profiled nfqueue run."""

    name: str
    daemon: float
    reinject: float

    @property
    def transport(self) -> float:
        return self.daemon - self.reinject


def _shares(text: str) -> dict[str, float]:
    """A perf report's lines as name (the last field) -> the first column's share."""
    shares: dict[str, float] = {}
    for line in text.splitlines():
        fields = line.split()
        if fields and fields[0].endswith("%") and not line.startswith("#"):
            shares.setdefault(fields[-1], float(fields[0].rstrip("%")) / 100)
    return shares


def profile_costs(profile: Path, name: str) -> Costs | None:
    """A variant's costs from its reports (name.txt, name.comms, name.json)."""
    paths = [profile / f"{name}{ext}" for ext in (".txt", ".comms", ".json")]
    if not all(p.is_file() for p in paths):
        return None
    report, comms, run = paths[0].read_text(), paths[1].read_text(), json.loads(paths[2].read_text())
    counts = [line.split(":")[1] for line in report.splitlines() if line.startswith("# Event count")]
    if not counts:
        return None
    per_packet = float(counts[0]) / num(run, "verdicted")
    # first report: the daemon's calls, inclusive ("Children" first)
    first = report.split("# Overhead")[0]
    calls = _shares(first)
    daemon = _shares(comms).get("nlbench", 0.0)
    return Costs(name, daemon * per_packet, calls.get(REINJECT, 0.0) * per_packet)


def costs_table(profile: Path) -> list[str]:
    """Per nfqueue variant of the profile: daemon, reinjection, transport,
    and the ring's transport against the best socket path's."""
    found = {}
    for path, verdict in NFQ_VARIANTS:
        for report in sorted(profile.glob(f"nfq-drain-*-{path}-{verdict}.txt")):
            cost = profile_costs(profile, report.stem)
            if cost:
                found[(path, verdict)] = cost
    lines = ["| path | verdicts | daemon guest-ns/pkt | of that, reinjection | transport (the rest) |",
             "|---|---|---|---|---|"]
    for (path, verdict), c in found.items():
        lines.append(f"| {path} | {verdict} | {c.daemon:,.0f} | {c.reinject:,.0f} | {c.transport:,.0f} |")
    for verdict in ("each", "batch"):
        ring = found.get(("ring", verdict))
        sockets = [(p, found[(p, verdict)]) for p in SOCKET_PATHS if (p, verdict) in found]
        if ring and sockets:
            name, best = min(sockets, key=lambda item: item[1].transport)
            lines.append("")
            lines.append(f"{verdict} verdicts: the ring's transport is {ring.transport / best.transport:.0%} "
                         f"of the best socket path's ({name}: {best.transport:,.0f} guest-ns/pkt)")
    return lines


# the workloads besides nfq, run in MSG_PATHS
MSG_WORKLOADS = ("dump", "events")


def smoke_points(runs: list[Run], paths: tuple[str, ...] = NFQ_PATHS) -> list[str]:
    """TAP points: every workload ran in every path it has (nfq: every
    variant), every run finished, lost no packet, and measured time."""
    points: list[str] = []
    for path, verdict in NFQ_VARIANTS:
        if path in paths:
            ran = bool(pick(runs, workload="nfq", path=path, verdict=verdict))
            points.append(f"{'ok' if ran else 'not ok'} {len(points) + 1} nfq ran in the {path} path, "
                          f"{verdict} verdicts")
    for path in paths:
        ran = bool(pick(runs, series="forward", workload="nfq", path=path))
        points.append(f"{'ok' if ran else 'not ok'} {len(points) + 1} nfq forwarded in the {path} path")
    for workload in MSG_WORKLOADS:
        for path in (p for p in paths if p in MSG_PATHS):
            ran = bool(pick(runs, workload=workload, path=path))
            points.append(f"{'ok' if ran else 'not ok'} {len(points) + 1} {workload} ran in the {path} path")
    for number, run in enumerate(runs, len(points) + 1):
        if "failed" in run:
            points.append(f"not ok {number} {run['failed']}")
            continue
        name = " ".join(str(run[k]) for k in ("workload", "mode", "path", "verdict", "size") if k in run)
        if run.get("series") == "ringsize":
            name += f" (ringsize, {run.get('ring_frames')} frames)"
        elif run.get("series", "main") != "main":
            name += f" ({run['series']})"
        problems = []
        if num(run, "guest_ns") <= 0:
            problems.append("no time measured")
        if run["workload"] == "nfq" and num(run, "lost"):
            problems.append(f"{int(num(run, 'lost'))} packets lost")
        if run["workload"] == "dump" and num(run, "messages") <= 0:
            problems.append("empty dump")
        if run["workload"] == "events" and num(run, "delivered") <= 0:
            problems.append("no event delivered")
        points.append(f"{'not ok' if problems else 'ok'} {number} {name}" + "".join(f"\n# {p}" for p in problems))
    return points


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    rep = sub.add_parser("report")
    rep.add_argument("outdir", type=Path)
    rep.add_argument("patched", type=Path)
    rep.add_argument("base", type=Path, nargs="?")
    rep.add_argument("--header", default="# Benchmark")
    rep.add_argument("--caption", default="", help="the plots' second title line (kernel, date)")
    tap = sub.add_parser("tap")
    tap.add_argument("runs", type=Path)
    tap.add_argument("--paths", default=" ".join(NFQ_PATHS), help="the paths every workload must have run in")
    costs = sub.add_parser("costs")
    costs.add_argument("profile", type=Path)
    args = parser.parse_args(argv)
    if args.command == "costs":
        print("\n".join(costs_table(args.profile)))
        return 0
    if args.command == "tap":
        runs = load(args.runs) if args.runs.is_file() else []
        sys.stdout.write(tap_document(smoke_points(runs, tuple(args.paths.split()))))
        return 0
    patched = load(args.patched)
    base = load(args.base) if args.base else []
    text = report(args.outdir, patched, base, args.header, args.caption)
    (args.outdir / "results.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

