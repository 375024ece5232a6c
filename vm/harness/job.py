"""Run suites and judge them: python -m harness.job SUITE|GROUP...

vm/job.sh starts it after vm/lib.sh has checked the settings and chosen
the folders, which it passes as options (--root, --build, --results,
--tree, --venv): the environment stays the caller's, so the host tests and
the boots see what they saw before.
The suites and groups (check, series-check) are those of harness.suites.

The results layout (RESULTS, default build/results):

  suites.txt              the suites of this job, one per line
  <suite>.tap / .xml      each suite's verdict, read by harness.report
  <suite>.log             its output
  vm.status, dmesg.txt, console.log, expect.env
                          the test kernel's boot (vm/run.sh)
  perf/                   the performance kernel's boot (its suites' raw
                          results; a judged suite's TAP becomes
                          <suite>.patched.tap here and its verdict <suite>.tap)
  perf-kernel.log, nommap-kernel.log
                          the builds of the performance kernel and of the
                          nommap kernel (the same with CONFIG_NETLINK_MMAP=n),
                          in the background beside the host suites (stopped
                          while the test kernel boots)
  nommap/, nommap2/, perf2/, nommap3/, perf3/
                          the boots that judge a failure of nft_queue, in
                          that order while it is not explained: the nommap
                          kernel's and the performance kernel's again
                          (results.NOMMAP_ROUNDS)
  perf-ring2/, perf-ring3/  both nfqueue modes again, while ring mode fails
                          where socket mode passed (results.RING_ROUNDS)
  base/                   the bare base's boot (no series, no net fix): its
                          suites' raw results, judged by harness.unfixed
                          into <suite>.tap; base-kernel.log its build
  summary.txt, summary.json  harness.report's verdict

Everything lands in RESULTS; the summary is printed last and the exit
status says whether the whole job passed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from harness import report, results, suites
from harness.results import BASE_BOOT, NOMMAP_ROUNDS, PATCHED, PERF_BOOT, REFERENCE, RING_ROUNDS, tap_document
from harness.suites import NOMMAP

# checkpatch asks "does MAINTAINERS need updating?" (FILE_PATH_CHANGES) for
# every patch that creates a file and does not touch MAINTAINERS itself.  The
# question is answered instead of ignored: each file a patch creates must
# belong to its series' MAINTAINERS section in the tree (the net fix adds a
# selftest to the networking maintainers' folder).
MAINTAINERS_SECTION = "NETLINK MEMORY-MAPPED RINGS"
NET_MAINTAINERS_SECTION = "NETWORKING [GENERAL]"
# checkpatch also looks up the commit a Fixes: tag names, in the tree's
# history; the base is Debian's source tarball, committed once, so it has
# none ("Unknown commit id").  The id and subject of the net fix's tag were
# checked against upstream history by hand (its commit message says how).
CHECKPATCH_IGNORE = "FILE_PATH_CHANGES,UNKNOWN_COMMIT_ID"
SELFTESTS = "tools/testing/selftests/net"
# what a background build gives (Job.built)
T = TypeVar("T")
# Folders and flavour a caller may set; the harness's own tests build fake
# trees and must never see the real ones.
PIPELINE_VARIABLES = ("TREE", "KBUILD", "RESULTS", "BUILD", "FLAVOUR", "SERIES", "KCONFIG_IGNORE")


def log(text: str) -> None:
    print(f"==> {text}", file=sys.stderr, flush=True)


def series_patches(root: Path) -> list[Path]:
    """Every patch in the order the tree applies them: the net fix
    (patches/net/), then the RFC (patches/)."""
    def folder(path: Path) -> list[Path]:
        return sorted(p for p in path.glob("[0-9][0-9][0-9][0-9]-*.patch") if not p.name.startswith("0000-"))
    return folder(root / "patches" / "net") + folder(root / "patches")


def patch_name(root: Path, patch: Path) -> str:
    """A patch as its path under patches/ (net/0001-... or 0001-...)."""
    return str(patch.relative_to(root / "patches"))


def created_files(patch: Path) -> list[str]:
    """The files a patch creates (its "new file mode" diffs)."""
    files, current = [], ""
    for line in patch.read_text(errors="replace").splitlines():
        if line.startswith("diff --git "):
            current = line.split()[3].removeprefix("b/")
        elif line.startswith("new file mode"):
            files.append(current)
    return files


def failed(tap: Path) -> bool:
    return tap.is_file() and any(line.startswith("not ok") for line in tap.read_text().splitlines())


def unfinished(tap: Path) -> bool:
    """A suite that did not run to the end: a failure no further run explains."""
    return results.load(tap.stem, tap.parent).error is not None


class Job:
    def __init__(self, env: Mapping[str, str], root: Path, build: Path, results: Path, tree: Path,
                 venv: Path) -> None:
        self.env = dict(env)
        self.root, self.build, self.results, self.tree = root, build, results, tree
        # vm/job.sh put the harness on PYTHONPATH to start this; the scripts,
        # builds and tests it starts do not get it (the harness tools do)
        paths = [p for p in self.env.pop("PYTHONPATH", "").split(":") if p and p != str(root / "vm")]
        if paths:
            self.env["PYTHONPATH"] = ":".join(paths)
        self.python = str(venv / "bin" / "python3")
        self.perf_cpus = env.get("PERF_VM_CPUS") or "4"
        # the kernels the perf boot and the nommap judgement need, built one
        # after the other in the background (start_builds); exit statuses
        self.builder = ThreadPoolExecutor(max_workers=1)
        self.perf_build: Future[int] | None = None
        self.nommap_build: Future[int] | None = None
        # the cached bare base's folder, "" when it did not build
        self.base_build: Future[str] | None = None
        self.running: list[subprocess.Popen[str]] = []
        self.lock = threading.Lock()
        self.resumed = threading.Condition(self.lock)
        self.stopping = self.paused = False

    # --- what the job starts; tests replace these -------------------------

    def boot(self, results: Path, names: list[str], env: Mapping[str, str]) -> int:
        """One VM (vm/run.sh) running `names`, results in `results`."""
        full = dict(self.env, RESULTS=str(results), **env)
        for unset in [key for key, value in env.items() if value == ""]:
            del full[unset]
        return subprocess.run([str(self.root / "vm/run.sh"), *names], env=full, check=False).returncode

    def build_env(self, flavour: str) -> dict[str, str]:
        # a caller's TREE and KBUILD name the test kernel's folders
        env = {k: v for k, v in self.env.items() if k not in ("TREE", "KBUILD")}
        return dict(env, FLAVOUR=flavour)

    def background(self, command: list[str], env: Mapping[str, str], log_name: str) -> tuple[int, str]:
        """A build in the background: (exit status, its stdout); stderr in
        log_name.  In a process group of its own, which builds_paused()
        stops and stop_builds() ends."""
        with (self.results / log_name).open("w") as err:
            with self.lock:
                while self.paused and not self.stopping:
                    self.resumed.wait()
                if self.stopping:
                    return 1, ""
                proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=err, text=True,
                                        start_new_session=True)
                self.running.append(proc)
            out, _ = proc.communicate()
        return proc.returncode, out

    def signal_builds(self, signum: int) -> None:
        for proc in self.running:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signum)
                except ProcessLookupError:
                    pass

    @contextmanager
    def builds_paused(self) -> Iterator[None]:
        """No build runs beside a boot: on 2 cores even an idle-priority
        build slowed the test boot by a quarter and pushed
        test_rx_bounded_work's irqs-off time over its bound (6985 us against
        843 + 5000, 2026-12-02).  The builds stop (SIGSTOP) for the boot and
        go on after it."""
        with self.lock:
            self.paused = True
            self.signal_builds(signal.SIGSTOP)
        try:
            yield
        finally:
            with self.lock:
                self.paused = False
                self.signal_builds(signal.SIGCONT)
                self.resumed.notify_all()

    def kernel(self, flavour: str) -> int:
        """vm/build-kernel.sh for a flavour, its output in <flavour>-kernel.log."""
        status, out = self.background([str(self.root / "vm/build-kernel.sh")], self.build_env(flavour),
                                      f"{flavour}-kernel.log")
        with (self.results / f"{flavour}-kernel.log").open("a") as log_file:
            log_file.write(out)
        return status

    def quiet_boot(self, results: Path, names: list[str], env: Mapping[str, str]) -> int:
        """A boot with the background builds stopped (builds_paused)."""
        with self.builds_paused():
            return self.boot(results, names, env)

    def base_kernel(self) -> str:
        """vm/base-kernel.sh: the bare base kernel (base-perf flavour), built
        once and cached; its folder, or "" when it did not build."""
        status, out = self.background([str(self.root / "vm/base-kernel.sh")], self.build_env("base-perf"),
                                      "base-kernel.log")
        lines = out.strip().splitlines()
        return lines[-1] if status == 0 and lines else ""

    def stop_builds(self) -> None:
        """The job is over (or stopped): a build still queued or running is
        one nothing waits for; it goes, with its compiler processes."""
        self.builder.shutdown(wait=False, cancel_futures=True)
        with self.lock:
            self.stopping = True
            self.resumed.notify_all()
            # a stopped build acts on SIGTERM once it runs again
            self.signal_builds(signal.SIGTERM)
            self.signal_builds(signal.SIGCONT)
        for proc in self.running:
            proc.wait()

    def harness_tool(self, module: str, args: list[str], name: str) -> None:
        """A harness module whose stdout is the suite's TAP, stderr its log."""
        with (self.results / f"{name}.tap").open("w") as out, (self.results / f"{name}.log").open("w") as err:
            subprocess.run([self.python, "-m", f"harness.{module}", *args], stdout=out, stderr=err,
                           env=dict(self.env, PYTHONPATH=str(self.root / "vm")), check=False)

    # --- host suites ----------------------------------------------------------

    def host(self) -> None:
        log("host: harness tests (vm/tests)")
        env = {k: v for k, v in self.env.items() if k not in PIPELINE_VARIABLES}
        with (self.results / "host.log").open("w") as out:
            subprocess.run([str(Path(self.python).parent / "pytest"), "-p", "no:cacheprovider", "-q",
                            f"--junitxml={self.results / 'host.xml'}", "-o", "junit_family=xunit1", "tests"],
                           cwd=self.root / "vm", stdout=out, stderr=subprocess.STDOUT, env=env, check=False)
        lines = (self.results / "host.log").read_text(errors="replace").strip().splitlines()
        log(lines[-1] if lines else "host: no output")

    def unmaintained(self, patch: Path, section: str) -> list[str]:
        missing = []
        for path in created_files(patch):
            proc = subprocess.run(["perl", "scripts/get_maintainer.pl", "--no-git", "--no-git-fallback",
                                   "--sections", "-f", path], cwd=self.tree, stdin=subprocess.DEVNULL,
                                  capture_output=True, text=True, check=False)
            if section not in proc.stdout.splitlines():
                missing.append(path)
        return missing

    def checkpatch(self) -> None:
        """One TAP point per patch: clean under checkpatch.pl --strict, or
        not.  One more: kselftest/ holds exactly the selftests the series adds."""
        log("checkpatch: --strict on patches/")
        points = []
        for number, patch in enumerate(series_patches(self.root), 1):
            proc = subprocess.run(["perl", "scripts/checkpatch.pl", "--strict", "--terse", "--no-summary",
                                   "--ignore", CHECKPATCH_IGNORE, str(patch)], cwd=self.tree,
                                  capture_output=True, text=True, check=False)
            name = patch_name(self.root, patch)
            section = NET_MAINTAINERS_SECTION if name.startswith("net/") else MAINTAINERS_SECTION
            missing = self.unmaintained(patch, section)
            point = f"{'ok' if proc.returncode == 0 and not missing else 'not ok'} {number} {name}"
            if proc.returncode:
                point += "".join(f"\n# {line}" for line in (proc.stdout + proc.stderr).splitlines())
            point += "".join(f"\n# not in MAINTAINERS section {section}: {m}" for m in missing)
            points.append(point)
        selftests = self.tree / SELFTESTS
        proc = subprocess.run(["diff", "-r", "-x", "rx_ring", "-x", "tx_ring", "-x", "README.md",
                               str(self.root / "kselftest"), str(selftests)],
                              capture_output=True, text=True, check=False)
        differences = [line for line in (proc.stdout + proc.stderr).splitlines()
                       if not line.startswith(f"Only in {selftests}: ")]
        what = "kselftest/ equals the selftests in the series"
        points.append(f"{'not ok' if differences else 'ok'} {len(points) + 1} {what}"
                      + "".join(f"\n# {line}" for line in differences))
        (self.results / "checkpatch.tap").write_text(tap_document(points))

    def series(self) -> None:
        log("series: per-patch checks without a build (harness.seriescheck)")
        self.harness_tool("seriescheck", [str(self.tree), "base", *map(str, series_patches(self.root)),
                                          "--want", "netdev@vger.kernel.org"], "series")

    def series_build(self, name: str) -> None:
        # make check: the whole series on x86_64 (NETLINK_MMAP=y and =n, W=1,
        # sparse) and the selftest sources as 64- and 32-bit programs; make
        # series-check: every patch on every target
        log(f"{name}: W=1, sparse, selftest and docs builds without new warnings (harness.seriesbuild)")
        args = ["--whole", "--targets", "x86_64,x86_64-nommap,selftests,selftests-m32"] \
            if name == "series-build" else []
        self.harness_tool("seriesbuild", [str(self.tree), "base", *map(str, series_patches(self.root)),
                                          "--work", str(self.build / "series-check"), *args], name)

    # --- boots ----------------------------------------------------------------

    def test_boot(self, chosen: list[suites.Suite]) -> None:
        env = {}
        if any(s.name == "fuzz" for s in chosen) and not self.env.get("VM_TIMEOUT"):
            env["VM_TIMEOUT"] = str(int(self.env.get("DURATION") or 600) + 1800)
        with self.builds_paused():
            self.boot(self.results, [s.request or s.name for s in chosen], env)
        # make fuzz: a failing sequence becomes a stored replay (test_stored_replay)
        for replay in sorted((self.results / "replays").glob("*.json")):
            shutil.copy(replay, self.root / "pytests/replays")
            log(f"fuzz: new replay pytests/replays/{replay.name}: the kernel and the model disagree; "
                "commit it with the fix")

    def perf_env(self) -> dict[str, str]:
        """The performance kernel: 4 vCPUs on single-threaded TCG (see vm/run.sh);
        a caller's TREE and KBUILD name the test kernel's folders."""
        return {"TREE": "", "KBUILD": "", "FLAVOUR": "perf", "VM_CPUS": self.perf_cpus,
                "VM_TCG_THREAD": "single"}

    def start_builds(self, in_perf: list[suites.Suite], in_base: list[suites.Suite] | None = None) -> None:
        """The performance kernel, then the nommap kernel when a suite is
        judged against it, then the bare base when a suite runs there,
        built in the background from the start of the job: beside the host
        suites, stopped during every boot, and waited for by the boot that
        needs them.  The nommap kernel is built before it is known to be
        needed (most emulated nft_queue runs need it); from a copy of the
        perf kernel's folder it costs a few compiles and a link.  The bare
        base is cached (vm/base-kernel.sh): a build once per base and
        config."""
        if in_perf:
            log(f"building the performance kernel in the background (log: {self.results}/perf-kernel.log)")
            self.perf_build = self.builder.submit(self.kernel, "perf")
            if any(s.judged_against == NOMMAP for s in in_perf):
                log(f"then the nommap kernel (log: {self.results}/nommap-kernel.log)")
                self.nommap_build = self.builder.submit(self.nommap_if_perf_built)
        if in_base:
            log(f"then the bare base kernel, unless cached (log: {self.results}/base-kernel.log)")
            self.base_build = self.builder.submit(self.base_kernel)

    def nommap_if_perf_built(self) -> int:
        # it starts from the perf kernel's folder, and is only worth
        # building for a perf kernel that boots
        assert self.perf_build is not None
        return self.kernel(NOMMAP) if self.perf_build.result() == 0 else 1

    @staticmethod
    def built(build: Future[T], not_built: T) -> T:
        """What a background build gave; a build that raised gives not_built."""
        try:
            return build.result()
        except Exception as error:  # noqa: BLE001 - any failure of the build is "did not build"
            log(f"a kernel build raised {error!r}")
            return not_built

    def perf_boot(self, chosen: list[suites.Suite]) -> None:
        perf = self.results / PERF_BOOT
        if self.perf_build is None:
            self.perf_build = self.builder.submit(self.kernel, "perf")
        if self.built(self.perf_build, 1):
            why = f"the performance kernel did not build: see {self.results}/perf-kernel.log"
            log(why)
            for suite in chosen:
                (self.results / f"{suite.name}.tap").write_text(tap_document([f"not ok 1 {why}"]))
            return
        if self.nommap_build is not None:
            # the perf boot's timing checks are judged against nommap boots
            # that run alone: this one does too
            log("waiting for the nommap kernel's build before the perf boot")
            self.built(self.nommap_build, 1)
        self.quiet_boot(perf, [s.request or s.name for s in chosen], self.perf_env())
        for suite in chosen:
            raw = perf / suite.output
            if not raw.is_file():
                continue
            target = self.results / (f"{suite.name}.patched.tap" if suite.judged_against else suite.output)
            shutil.move(raw, target)
        for suite in chosen:
            if suite.judged_against and suite.judged_against != NOMMAP:
                self.judge_in_boot(suite)
        for suite in chosen:
            if suite.judged_against == NOMMAP:
                self.judge_against_nommap(suite)

    def basediff(self, args: list[str], verdict: Path) -> None:
        with verdict.open("w") as out:
            subprocess.run([self.python, "-m", "harness.basediff", *args], stdout=out,
                           env=dict(self.env, PYTHONPATH=str(self.root / "vm")), check=False)

    def judge_in_boot(self, suite: suites.Suite) -> None:
        """Ring mode must pass exactly where socket mode passes in the same
        boot: a check the reference suite fails too becomes a skip.  Timing
        varies between boots (CI of 2026-12-06: the requeue check printed
        "lost packets during requeue?!" in ring mode only, then passed 40 of
        40 times looped in ring mode; it has failed in socket mode on the
        base before), so while that judgement fails both modes run once more
        in one boot (RING_ROUNDS), and a check counts against the rings only
        when it failed on every ring run and on no socket run
        (harness.basediff)."""
        patched = self.results / f"{suite.name}.patched.tap"
        reference = self.results / f"{suite.judged_against}.patched.tap"
        verdict = self.results / f"{suite.name}.tap"
        if not patched.is_file():
            return
        if not (reference.is_file() and failed(patched)):
            shutil.copy(patched, verdict)
            return
        what = ["--reference", f"{suite.judged_against} in the same boots"]
        other = suites.lookup(suite.judged_against)
        references, again = [str(reference)], []
        self.basediff([*what, *references, str(patched)], verdict)
        if unfinished(patched):
            log(f"{suite.name} did not run to the end: no more runs can explain that")
            return
        for run in RING_ROUNDS:
            if not failed(verdict):
                return
            log(f"{suite.name} judged against {suite.judged_against}: failures; booting both once more ({run})")
            if self.quiet_boot(self.results / run, [other.request or other.name, suite.request or suite.name],
                               self.perf_env()):
                log(f"the run of both modes failed; see {self.results / run}")
            references.append(str(self.results / run / other.output))
            again += ["--again", str(self.results / run / suite.output)]
            self.basediff([*what, *again, *references, str(patched)], verdict)

    def judge_against_nommap(self, suite: suites.Suite) -> None:
        """The series must do as well with the rings as with them compiled
        out (the nommap kernel: the same config otherwise, the same vCPUs):
        under emulation some checks fail either way.  Timing varies between
        boots, so while that judgement fails, the nommap kernel and the
        performance kernel boot again in turn (NOMMAP_ROUNDS; a patched
        round that the ring rounds' runs of the suite already made is not
        booted again): a check counts against the rings only when it failed
        on every patched run and on no nommap run (harness.basediff)."""
        patched = self.results / f"{suite.name}.patched.tap"
        verdict = self.results / f"{suite.name}.tap"
        if not patched.is_file():
            return
        shutil.copy(patched, verdict)
        if not failed(patched):
            return
        if unfinished(patched):
            log(f"{suite.name} did not run to the end: no nommap run can explain that")
            return
        if self.nommap_build is None:
            self.nommap_build = self.builder.submit(self.kernel, NOMMAP)
        if self.built(self.nommap_build, 1):
            log(f"the nommap kernel did not build (see {self.results}/nommap-kernel.log): "
                f"{suite.name}'s failures stand")
            return
        reference = ["--reference", "the series with CONFIG_NETLINK_MMAP=n"]
        env = {REFERENCE: dict(self.perf_env(), FLAVOUR=NOMMAP), PATCHED: self.perf_env()}
        references: list[str] = []
        # the ring rounds' runs of this suite are patched runs too
        again = [arg for run in RING_ROUNDS if (self.results / run / suite.output).is_file()
                 for arg in ("--again", str(self.results / run / suite.output))]
        patched_rounds = 0
        for run, side in NOMMAP_ROUNDS:
            if references and not failed(verdict):
                return
            if side == PATCHED:
                patched_rounds += 1
                if len(again) // 2 >= patched_rounds:
                    continue
            log(f"{suite.name}: failures not explained yet; booting the "
                f"{'nommap' if side == REFERENCE else 'performance'} kernel ({run})")
            if self.quiet_boot(self.results / run, [suite.name], env[side]):
                log(f"that run failed; see {self.results / run}")
            output = str(self.results / run / suite.output)
            if side == REFERENCE:
                references.append(output)
            else:
                again += ["--again", output]
            self.basediff([*reference, *again, *references, str(patched)], verdict)

    def base_boot(self, chosen: list[suites.Suite]) -> None:
        """The suites of the bare base (no series, no net fix): the fix's
        selftest must fail there where the bug is (harness.unfixed).  The
        programs are those the test kernel's build made in the series'
        tree: the guest runs them from there (TREE of the perf flavour)."""
        base = self.results / BASE_BOOT
        if self.base_build is None:
            self.base_build = self.builder.submit(self.base_kernel)
        folder = self.built(self.base_build, "")
        if not folder:
            why = f"the bare base kernel did not build: see {self.results}/base-kernel.log"
            log(why)
            for suite in chosen:
                (self.results / f"{suite.name}.tap").write_text(tap_document([f"not ok 1 {why}"]))
            return
        self.quiet_boot(base, [s.request or s.name for s in chosen],
                        {"TREE": "", "KBUILD": folder, "FLAVOUR": "perf"})
        for suite in chosen:
            self.harness_tool("unfixed", [f"--log={base / f'{suite.name}.log'}", str(base / suite.output),
                                          *suite.fails_unfixed], suite.name)

    # --- the job --------------------------------------------------------------

    def run(self, names: list[str]) -> int:
        chosen = suites.expand(names)
        shutil.rmtree(self.results, ignore_errors=True)
        self.results.mkdir(parents=True)
        (self.results / "suites.txt").write_text("".join(f"{s.name}\n" for s in chosen))
        in_perf = [s for s in chosen if s.where == "perf"]
        in_base = [s for s in chosen if s.where == "base"]
        try:
            self.start_builds(in_perf, in_base)
            for suite in chosen:
                if suite.where != "host":
                    continue
                if suite.name in ("series-build", "series-build-all"):
                    self.series_build(suite.name)
                else:
                    getattr(self, suite.name)()
            in_test = [s for s in chosen if s.where == "test"]
            if in_test:
                self.test_boot(in_test)
            if in_perf:
                self.perf_boot(in_perf)
            if in_base:
                self.base_boot(in_base)
        finally:
            self.stop_builds()
        return report.main([str(self.results)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vm/job.sh", description="run suites and judge them")
    for folder in ("root", "build", "results", "tree", "venv"):
        parser.add_argument(f"--{folder}", type=Path, required=True)
    parser.add_argument("suites", nargs="+", metavar="SUITE|GROUP", help="see vm/harness/suites.py")
    args = parser.parse_args(argv)
    try:
        suites.expand(args.suites)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return Job(os.environ, args.root, args.build, args.results, args.tree, args.venv).run(args.suites)


if __name__ == "__main__":
    sys.exit(main())
