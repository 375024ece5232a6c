"""Run VM suites inside the guest, as root: python -m harness.guest RESULTS SUITE...

vm/run.sh starts it in the guest (the host's root file system, read-only
with writable overlays) with the venv's python.  Everything it needs from
the host is in RESULTS/expect.env, the manifest vm/run.sh writes; nothing
of the host's scripts is sourced.  Each suite runs as harness.suites says and
writes RESULTS/<suite>.tap or .xml; kmemleak's report and the kernel log come
last.  Lines prefixed "nlmmap-guest: " are the progress the host shows.
"""

from __future__ import annotations

import gzip
import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

from harness import benchreport, ksft, shelltap, suites, tapmerge
from harness.results import tap_document

ROOT = Path(__file__).resolve().parents[2]
PREFIX = "nlmmap-guest: "


def say(text: str) -> None:
    print(PREFIX + text, flush=True)


def read_manifest(path: Path) -> dict[str, str]:
    """KEY=VALUE lines of expect.env."""
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip() and not key.startswith("#"):
            values[key.strip()] = value.strip()
    return values


def run_program(argv: list[str], log: IO[str], env: dict[str, str], stdout: IO[str] | None = None,
                cwd: Path | None = None) -> int:
    """Run one program of a suite; one that cannot start (missing, not
    executable) is exit status 127 with the reason in the suite's log, as a
    shell reports it, so the suite still writes a failing result."""
    try:
        return subprocess.run(argv, cwd=cwd, stdout=stdout or log, stderr=log, env=env, check=False).returncode
    except OSError as error:
        log.write(f"{argv[0]}: {error}\n")
        return 127


def run_piped(argv: list[str], log: IO[str], env: dict[str, str], cwd: Path) -> int:
    """run_program with the program's output read from a pipe into the log."""
    try:
        proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                                text=True, errors="replace")
    except OSError as error:
        log.write(f"{argv[0]}: {error}\n")
        return 127
    assert proc.stdout is not None
    for line in proc.stdout:
        log.write(line)
        log.flush()  # what a program that hangs printed stays
    return proc.wait()


def tap_counts(suite: str, code: int, tap: Path) -> None:
    lines = tap.read_text().splitlines() if tap.is_file() else []
    passed = sum(line.startswith("ok") for line in lines)
    failed = sum(line.startswith("not ok") for line in lines)
    say(f"{suite}: exit {code}, {passed} ok, {failed} not ok")


# A test that hangs fails after this long, with its stack (pytest-timeout),
# instead of taking the boot's VM_TIMEOUT and every later result with it
# (CI rehearsal of 2026-12-07: the guest suite stopped after 191 of 293 tests
# and the boot was killed at 3600 s).  The longest test, the derandomized
# model run, takes about 600 s and carries a longer mark of its own.  The
# plugin times with SIGALRM: test_tx_signal.py, which takes SIGALRM for
# itself, runs without a timeout (it restores the handler after).
TEST_TIMEOUT = 900


def timeout_options() -> list[str]:
    """pytest's per-test timeout option, where the plugin is installed (a
    cross root file system may not have it: then none, and the log says so)."""
    if importlib.util.find_spec("pytest_timeout") is None:
        say("pytest-timeout is not installed: no per-test timeout")
        return []
    return [f"--timeout={TEST_TIMEOUT}"]


class Guest:
    def __init__(self, results: Path, manifest: dict[str, str]) -> None:
        self.results = results
        self.manifest = manifest
        # the venv whose python runs this (vm/run.sh starts it so)
        self.venv = Path(manifest.get("NLMMAP_VENV") or sys.prefix)
        # the suites' environment: the manifest's settings, the venv first on
        # PATH; not the PYTHONPATH that started this runner (pytests/ has its
        # own, the demo gets its own)
        self.env = dict(os.environ, **{k: v for k, v in manifest.items() if k.startswith("NLMMAP_")},
                        PYTHONDONTWRITEBYTECODE="1",
                        PATH=f"{self.venv / 'bin'}:{os.environ.get('PATH', '/usr/bin:/bin')}")
        self.env.pop("PYTHONPATH", None)

    def folder(self, base: str, folder: str) -> Path:
        return Path(self.manifest["NLMMAP_TREE" if base == "tree" else "NLMMAP_KBUILD"]) / folder

    def pytest(self, name: str, runner: suites.Pytest, env: dict[str, str] | None = None) -> None:
        log = self.results / f"{name}.log"
        with log.open("w") as out:
            run_program([str(self.venv / "bin" / "pytest"), "-p", "no:cacheprovider", "-q", "-rs",
                         "--durations=20", f"--junitxml={self.results / f'{name}.xml'}",
                         "-o", "junit_family=xunit1", *timeout_options(), *runner.options,
                         *(str(ROOT / path) for path in runner.paths)], out, env or self.env)
        last = log.read_text(errors="replace").strip().splitlines()
        say(f"{name}: {last[-1] if last else 'no output'}")

    def kselftests(self, name: str, runner: suites.Kselftests) -> None:
        folder = self.folder(runner.base, runner.folder)
        tap = self.results / f"{name}.tap"
        if runner.missing and not all(os.access(folder / p, os.X_OK) for p in runner.programs):
            why = runner.missing.format(folder=folder)
            tap.write_text(tap_document([f"ok 1 {' and '.join(runner.programs)} # SKIP {why}"]))
            say(f"{name}: skipped, {why}")
            return
        merged: list[tuple[str, str, int]] = []
        code = 0
        with (self.results / f"{name}.log").open("w") as log:
            for program in runner.programs:
                # straight into the file: a program that hangs leaves what it printed
                own = self.results / f"{name}-{program}.tap"
                with own.open("w") as out:
                    code = run_program([str(folder / program)], log, self.env, stdout=out)
                merged.append((program, own.read_text(errors="replace"), code))
        tap.write_text(tapmerge.merge(merged))
        tap_counts(name, code, tap)

    def selftest_env(self) -> dict[str, str]:
        # Under emulation the upstream scripts get KSFT_MACHINE_SLOW=yes, as
        # NIPA gives its slow runners: nft_queue.sh then moves 25 MB instead
        # of 200 MB per TCP/SCTP test (200 MB took 48-55 s of its 60 s
        # timeout under TCG).
        slow = "no" if self.manifest.get("NLMMAP_ACCEL") == "kvm" else "yes"
        return dict(self.env, KSFT_MACHINE_SLOW=slow)

    def shell_selftest(self, name: str, runner: suites.ShellSelftest) -> None:
        log = self.results / f"{name}.log"
        with log.open("w") as out:
            code = run_program([f"./{runner.script}"], out, self.selftest_env(),
                               cwd=self.folder("tree", runner.folder))
        tap = self.results / f"{name}.tap"
        tap.write_text(shelltap.to_tap(log.read_text(errors="replace"), code))
        tap_counts(name, code, tap)

    def framework(self, name: str, runner: suites.Framework) -> None:
        """run_kselftest.sh of the installed selftests, as kernel CI runs it."""
        installed = Path(self.manifest.get("NLMMAP_KSFT") or self.folder("kbuild", "kselftest/kselftest_install"))
        log = self.results / f"{name}.log"
        # through a pipe, as kernel CI reads it: runner.sh writes each
        # program's output through a descriptor of its own opened on
        # /dev/stdout (">>"), and on a file ours would write over it
        with log.open("w") as out:
            code = run_piped([str(installed / "run_kselftest.sh"), *runner.args], out, self.selftest_env(),
                             cwd=installed)
        tap = self.results / f"{name}.tap"
        tap.write_text(ksft.to_tap(log.read_text(errors="replace"), runner.nested, runner.programs))
        tap_counts(name, code, tap)

    def bench(self, name: str) -> None:
        """Every benchmark workload, once and small (smoke) or in full."""
        try:
            with gzip.open("/proc/config.gz", "rt") as config:
                mmap = "CONFIG_NETLINK_MMAP=y\n" in config.readlines()
        except OSError:  # no IKCONFIG_PROC: a kernel without the series is measured as such
            mmap = False
        paths = " ".join(benchreport.NFQ_PATHS if mmap else benchreport.NFQ_PATHS[:-1])
        runs = self.results / f"{name}.jsonl"
        with (self.results / f"{name}.log").open("w") as log:
            code = run_program([str(ROOT / "vm/bench/guest.sh"), self.manifest["NLMMAP_NLBENCH"], str(runs),
                                self.manifest.get("NLMMAP_BENCH_SCALE", "smoke"), paths], log, self.env)
        tap = self.results / f"{name}.tap"
        tap.write_text(tap_document(benchreport.smoke_points(benchreport.load(runs) if runs.is_file() else [],
                                                       tuple(paths.split()))))
        tap_counts(name, code, tap)

    def profile(self, name: str) -> None:
        tap = self.results / f"{name}.tap"
        with tap.open("w") as out, (self.results / f"{name}.log").open("w") as log:
            code = run_program([str(ROOT / "vm/bench/profile.sh"), self.manifest["NLMMAP_NLBENCH"],
                                str(self.results / "profile")], log, self.env, stdout=out)
        # each nfqueue variant's daemon time: reinjection and transport
        profile = self.results / "profile"
        if profile.is_dir():
            (profile / "costs.md").write_text("\n".join(benchreport.costs_table(profile)) + "\n")
        tap_counts(name, code, tap)

    def demo(self, name: str) -> None:
        env = dict(self.env, PYTHONPATH=f"{ROOT}:{ROOT / 'vm'}")
        proc = subprocess.Popen([str(self.venv / "bin/python3"), str(ROOT / "vm/guest/demo.py"),
                                 str(self.results / f"{name}.tap")], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, env=env)
        assert proc.stdout is not None
        for line in proc.stdout:
            say(line.rstrip("\n"))
        proc.wait()

    def run(self, name: str) -> None:
        suite = suites.lookup(name, cross=self.manifest.get("NLMMAP_CROSS") == "1")
        runner = suite.runner
        if suite.name == "fuzz":
            # random sequences for a while; a failing one, shrunk, lands in
            # replays/ for the host to keep
            env = dict(self.env, NLMMAP_FUZZ_SECONDS=self.manifest.get("NLMMAP_FUZZ_SECONDS", "600"),
                       NLMMAP_REPLAY_DIR=str(self.results / "replays"))
            assert isinstance(runner, suites.Pytest)
            self.pytest(suite.name, runner, env)
        elif isinstance(runner, suites.Pytest):
            self.pytest(suite.name, runner)
        elif isinstance(runner, suites.Kselftests):
            self.kselftests(suite.name, runner)
        elif isinstance(runner, suites.ShellSelftest):
            self.shell_selftest(suite.name, runner)
        elif isinstance(runner, suites.Framework):
            self.framework(suite.name, runner)
        elif suite.where != "host":  # a runner of its own: the method of its name
            getattr(self, suite.name)(suite.name)
        else:
            say(f"{name} is not a VM suite")

    def finish(self) -> None:
        """Leaks no test asserts: kmemleak (test kernel) reports objects
        nothing points to any more, if they stay so over two scans; its
        summary line goes to the kernel log, where the splat scan fails the
        run on it.  Then the kernel log."""
        leaks = kmemleak()
        if leaks is not None:
            say("kmemleak: scanning")
            try:
                leaks.write_text("scan")
                time.sleep(6)
                leaks.write_text("scan")
                report = leaks.read_text(errors="replace")
            except OSError as error:  # kmemleak turned itself off: the kernel log says why
                say(f"kmemleak: no scan ({error})")
            else:
                (self.results / "kmemleak.txt").write_text(report)
                objects = sum(line.startswith("unreferenced object") for line in report.splitlines())
                say(f"kmemleak: {objects} unreferenced objects")
        dmesg = subprocess.run(["dmesg"], capture_output=True, text=True, errors="replace", check=False)
        (self.results / "dmesg.txt").write_text(dmesg.stdout)


def kmemleak() -> Path | None:
    """kmemleak's control file (debugfs mounted first), if it is on."""
    debugfs = Path("/sys/kernel/debug")
    if not os.path.ismount(debugfs):
        subprocess.run(["mount", "-t", "debugfs", "none", str(debugfs)], capture_output=True, check=False)
    leaks = debugfs / "kmemleak"
    return leaks if os.access(leaks, os.W_OK) else None


def no_leak_scans_during_tests() -> None:
    """kmemleak's thread scans all memory every 10 minutes; under TCG a scan
    of the test kernel takes a vCPU for minutes, beside the tests.  Off while
    the suites run: the two scans of Guest.finish() find every object that
    leaked, whenever it did."""
    leaks = kmemleak()
    if leaks is None:
        return
    try:
        leaks.write_text("scan=off")
    except OSError as error:
        say(f"kmemleak: automatic scans stay on ({error})")


def standard_streams() -> None:
    """/dev/stdout and its kin as on any Linux system, links to the calling
    process's own descriptors: virtme-ng points them at its console ports,
    and kselftest's runner.sh writes each program's output to
    ">>/dev/stdout", which must be the pipe the suite reads."""
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
                         ("stderr", "/proc/self/fd/2")):
        path = Path("/dev") / name
        if path.is_symlink() and os.readlink(path) == target:
            continue
        if path.is_symlink() or path.is_file():
            path.unlink()
        if not path.exists():
            path.symlink_to(target)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) < 2:
        print("usage: python -m harness.guest RESULTS SUITE...", file=sys.stderr)
        return 2
    results = Path(args[0])
    guest = Guest(results, read_manifest(results / "expect.env"))
    standard_streams()
    no_leak_scans_during_tests()
    say(f"kernel {os.uname().release} up, {os.cpu_count()} CPUs")
    for name in args[1:]:
        say(f"running {name}")
        try:
            guest.run(name)
        except Exception as error:  # one broken suite must not cost the others
            say(f"{name}: the runner failed: {error!r}")
    guest.finish()
    say("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
