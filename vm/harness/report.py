"""Judge a test run and print its one-screen summary.

Reads the results directory the runner filled:
  suites.txt       the suites that were meant to run, one per line
  <suite>.tap/.xml each suite's results
  vm.status        key=value lines from the runner (vm_rc, timed_out, seconds, accel)
  dmesg.txt        the guest's full kernel log (console.log if the guest died)
  perf/ and the other boots of results.JUDGED_BOOTS: the same two, for each
                   boot there was
and writes summary.txt and summary.json beside them.  Exit status 0 only
when every suite ran to the end without a failure, the VM came up and went
down cleanly, and the kernel log holds no splat.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from harness import results, splat


def read_status(path: Path) -> dict[str, str]:
    status: dict[str, str] = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            key, sep, value = line.partition("=")
            if sep:
                status[key.strip()] = value.strip()
    return status


def kernel_log(directory: Path) -> tuple[str, str]:
    """(name, text) of the best kernel log: the guest's dmesg, else the console."""
    for name in ("dmesg.txt", "console.log"):
        path = directory / name
        if path.is_file() and path.stat().st_size:
            return name, path.read_text(errors="replace")
    return "", ""


# Boots whose kernel log and VM status are judged, each if it happened.
BOOTS = results.JUDGED_BOOTS


def boot_problems(status: dict[str, str], log_text: str, label: str) -> list[str]:
    problems: list[str] = []
    if status.get("vm_used") == "1":
        if status.get("timed_out") == "1":
            problems.append(f"{label}VM timed out after {status.get('seconds', '?')} s")
        elif status.get("vm_rc") not in ("0", None):
            problems.append(f"{label}VM exited with status {status.get('vm_rc')} "
                            "(did not come up, or the guest runner failed)")
        if not log_text:
            problems.append(f"{label}no kernel log came back from the guest")
    return problems


def judge(directory: Path) -> tuple[list[str], bool, dict[str, object]]:
    """Return (summary lines, ok, machine-readable summary)."""
    suites_file = directory / "suites.txt"
    names = suites_file.read_text().split() if suites_file.is_file() else []
    status = read_status(directory / "vm.status")
    outcomes = [results.load(name, directory) for name in names]
    problems: list[str] = []
    if not names:
        problems.append("no suites were selected")
    logs: list[tuple[str, list[splat.Splat]]] = []
    for boot in BOOTS:
        boot_dir = directory / boot
        boot_status = read_status(boot_dir / "vm.status")
        if boot and not boot_status:
            continue
        name, text = kernel_log(boot_dir)
        logs.append((f"{boot}/{name}" if boot and name else name, splat.scan(text) if text else []))
        problems += boot_problems(boot_status, text, f"{boot} boot: " if boot else "")
    splats = [found for _, found_in_log in logs for found in found_in_log]

    width = max([len(o.name) for o in outcomes] + [5])
    lines = ["", "=" * 72, "test summary"
             + (f"  (kernel {status['kernel']}, {status.get('accel', '?')})" if status.get("kernel") else ""),
             "-" * 72,
             f"{'suite':<{width}}  {'passed':>6} {'failed':>6} {'skipped':>7}  status"]
    for outcome in outcomes:
        state = "ok" if outcome.ok else ("ERROR: " + outcome.error if outcome.error else "FAILED")
        if outcome.failed and outcome.error:
            state = "FAILED; " + outcome.error
        lines.append(f"{outcome.name:<{width}}  {len(outcome.passed):>6} {len(outcome.failed):>6} "
                     f"{len(outcome.skipped):>7}  {state}")
    total_pass = sum(len(o.passed) for o in outcomes)
    total_fail = sum(len(o.failed) for o in outcomes)
    total_skip = sum(len(o.skipped) for o in outcomes)
    for outcome in outcomes:
        for test in outcome.failed:
            lines.append(f"  FAIL {outcome.name}: {outcome.failure_line(test)}")
    for outcome in outcomes:
        for test, reason in outcome.skipped:
            lines.append(f"  SKIP {outcome.name}: {test}: {reason}")
    for log_name, found_in_log in logs:
        lines.append(f"kernel log: {log_name or 'none'}, {len(found_in_log)} splat(s)")
        for found in found_in_log:
            lines.append(f"  SPLAT {found.kind}: {found.title} ({log_name}:{found.line})")
    for problem in problems:
        lines.append(f"  PROBLEM: {problem}")
    ok = bool(names) and all(o.ok for o in outcomes) and not splats and not problems
    for boot in BOOTS:
        boot_status = read_status(directory / boot / "vm.status")
        if boot_status.get("seconds"):
            lines.append(f"time in VM{' (' + boot + ' kernel)' if boot else ''}: {boot_status['seconds']} s")
        if boot_status.get("boot_retries", "0") != "0":
            lines.append(f"  NOTE: {boot or 'main'} boot retried: the guest died before the tests started "
                         f"(see {boot + '/' if boot else ''}console.boot-failure.log)")
    lines.append("-" * 72)
    lines.append("RESULT: " + ("PASS" if ok else "FAIL"))
    # The closing line CI reads: 'N passed, N failed, N skipped'.
    lines.append(f"result: {total_pass} passed, {total_fail} failed, {total_skip} skipped")
    summary = {
        "ok": ok,
        "passed": total_pass,
        "failed": total_fail,
        "skipped": total_skip,
        "suites": {o.name: {"passed": o.passed, "failed": o.failed,
                            "skipped": [list(s) for s in o.skipped], "error": o.error} for o in outcomes},
        "splats": [{"kind": s.kind, "title": s.title, "line": s.line} for s in splats],
        "problems": problems,
        "status": status,
    }
    return lines, ok, summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="judge a results directory and print the summary")
    parser.add_argument("directory", type=Path)
    args = parser.parse_args(argv)
    lines, ok, summary = judge(args.directory)
    text = "\n".join(lines) + "\n"
    (args.directory / "summary.txt").write_text(text)
    (args.directory / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    contexts = [found.context for boot in BOOTS for found in splat.scan(kernel_log(args.directory / boot)[1])]
    if contexts:
        (args.directory / "splats.txt").write_text("\n\n".join(contexts) + "\n")
    print(text, end="")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
