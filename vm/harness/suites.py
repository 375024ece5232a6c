"""Every suite of the pipeline in one table: its name, where it runs, what
runs it and what it leaves in the results folder.

The orchestrator (harness.job) dispatches by `where`: on the host, in the
test kernel's boot, in the performance kernel's boot, or in a boot of the
bare base.  The guest runner
(harness.guest) runs a VM suite by its `runner`.  `make check` runs CHECK and
`make series-check` SERIES_CHECK.  Adding a suite is one entry here (and a
row in docs/testing.md); a new kind of runner is a class here and its branch
in harness.guest or harness.job.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Final, Literal

# base: the bare base kernel (no series, no net fix), cached (vm/base-kernel.sh)
Where = Literal["host", "test", "perf", "base"]
# judged_against: the performance kernel with CONFIG_NETLINK_MMAP=n (vm/flavours.sh)
NOMMAP: Final = "nommap"


@dataclass(frozen=True)
class Pytest:
    """pytest over paths of the checkout (or node ids), JUnit XML out."""

    paths: tuple[str, ...]
    options: tuple[str, ...] = ()


@dataclass(frozen=True)
class Kselftests:
    """kselftest-harness programs, each one's TAP merged into one.  `folder`
    is under the kernel tree ("tree") or the build folder ("kbuild");
    `missing` is the skip reason when the programs were not built ({folder}:
    where they should be)."""

    base: Literal["tree", "kbuild"]
    folder: str
    programs: tuple[str, ...]
    missing: str = ""


@dataclass(frozen=True)
class ShellSelftest:
    """An upstream shell selftest of the tree, its PASS:/FAIL:/SKIP: lines as TAP."""

    folder: str
    script: str


@dataclass(frozen=True)
class Framework:
    """The kselftest framework as kernel CI runs it: run_kselftest.sh of the
    installed selftests (`make kselftest-install`, vm/build-kernel.sh) with
    `args`; each program's nested output judged as its kind ("tap": a
    kselftest-harness program, "shell": PASS:/FAIL: lines) by harness.ksft."""

    args: tuple[str, ...]
    programs: tuple[str, ...]
    nested: Literal["tap", "shell"]


@dataclass(frozen=True)
class Special:
    """A runner of its own, named after the suite (harness.guest or harness.job)."""


Runner = Pytest | Kselftests | ShellSelftest | Framework | Special


@dataclass(frozen=True)
class Suite:
    name: str
    where: Where
    runner: Runner
    about: str
    # "nommap": a failure is judged against the nommap kernel (the same
    # kernel with CONFIG_NETLINK_MMAP=n, vm/flavours.sh) booted the same way
    # (harness.basediff); another suite's name: against that suite in the
    # same boot
    judged_against: str = ""
    # what the guest runner is asked for, when not the name ("pytest:A,B")
    request: str = ""
    # on the bare base: the tests that must fail there (the bug a fix of
    # the series removes is present and the test sees it); every other test
    # must pass (harness.unfixed)
    fails_unfixed: tuple[str, ...] = ()

    @property
    def output(self) -> str:
        """The file the summary reads, in the results folder."""
        return f"{self.name}.xml" if isinstance(self.runner, Pytest) or self.name == "host" else f"{self.name}.tap"


NETFILTER = "tools/testing/selftests/net/netfilter"
# the net fix's selftest (patches/net), built by vm/build-kernel.sh
MCAST_FILTER = Kselftests("tree", "tools/testing/selftests/net", ("netlink_mcast_filter",))

SUITES: dict[str, Suite] = {suite.name: suite for suite in (
    Suite("host", "host", Special(), "pytest of the harness itself (vm/tests), no VM"),
    Suite("checkpatch", "host", Special(),
          "scripts/checkpatch.pl --strict on every patch; files a patch creates are in the series' "
          "MAINTAINERS section; kselftest/ equals the selftests of the series"),
    Suite("series", "host", Special(),
          "per patch: Signed-off-by, kernel-doc, get_maintainer.pl, selftest lists (harness.seriescheck)"),
    Suite("series-build", "host", Special(),
          "the whole series against the base: x86_64 W=1 and sparse, NETLINK_MMAP=y and =n, the "
          "selftest sources as 64- and 32-bit programs; no new warning (harness.seriesbuild)"),
    Suite("series-build-all", "host", Special(),
          "every patch, also clang, i386, arm64 64K pages, s390x, and Sphinx over the Documentation "
          "folders the series touches"),
    Suite("guest", "test", Pytest(("pytests",)), "the in-guest pytest suites (pytests/)"),
    Suite("kselftest", "test", Framework(("-c", "net/netlink_mmap"), ("rx_ring", "tx_ring"), "tap"),
          "the series' C selftests as kernel CI runs them: kselftest-install, run_kselftest.sh -c "
          "net/netlink_mmap, the collection's timeout"),
    Suite("kselftest32", "test",
          Kselftests("kbuild", "kselftest32", ("rx_ring", "tx_ring"),
                     missing="no 32-bit build (gcc-multilib missing: see {folder}/build.log)"),
          "the same built as 32-bit programs (the compat system calls)"),
    Suite("mcast_filter", "test", MCAST_FILTER,
          "the net fix's selftest: a listener's socket filter trims only its own multicast copy"),
    Suite("mcast_filter_unfixed", "base", MCAST_FILTER,
          "the same on the bare base, where the bug is: the tests of a filter bound last must fail, "
          "the others pass",
          fails_unfixed=tuple(f"netlink_mcast_filter: mcast_filter.{case}.others_get_whole_messages"
                              for case in ("trim_bound_last", "trim_bound_last_overrun"))),
    Suite("bench", "test", Special(), "every benchmark workload once, small (vm/bench/guest.sh smoke)"),
    Suite("demo", "test", Special(), "the main job's show (vm/guest/demo.py)"),
    Suite("fuzz", "test", Pytest(("pytests/test_model_random.py::test_random_operation_sequences",)),
          "random operation sequences against the model for DURATION seconds; failures become "
          "pytests/replays/"),
    Suite("nft_queue", "perf", ShellSelftest(NETFILTER, "nft_queue.sh"),
          "the upstream nfqueue selftest, unchanged, on the performance kernel (its timeouts are "
          "not met under KASAN)", judged_against=NOMMAP),
    Suite("nft_queue_ring", "perf",
          Framework(("-t", "net/netfilter:nft_queue_ring.sh"), ("nft_queue_ring.sh",), "shell"),
          "nft_queue.sh again with every nf_queue listener on the rings (patch 5's wrapper), as kernel "
          "CI runs it: kselftest-install, run_kselftest.sh -t net/netfilter:nft_queue_ring.sh",
          judged_against="nft_queue"),
    Suite("nfq_smp", "perf", Pytest(("pytests/test_nfq_ring.py",), ("-k", "test_ring_order_is_packet_id_order")),
          "the nfqueue ordering test with PERF_VM_CPUS (default 4) vCPUs"),
    Suite("profile", "perf", Special(),
          "perf in the guest: where the instructions of the nfqueue and dump workloads go (make bench-profile)"),
)}

# make cross-check (vm/cross/check.sh): one boot of the series built for
# another architecture, on a Debian root file system of that architecture;
# the programs are those cross-compiled into its build folder (the tree's
# are x86's), nft_queue.sh too runs from the kselftest install.
CROSS_SUITES: dict[str, Suite] = {suite.name: suite for suite in (
    SUITES["guest"],
    SUITES["kselftest"],
    Suite("mcast_filter", "test", Kselftests("kbuild", ".", ("netlink_mcast_filter",)),
          "the net fix's selftest, cross-compiled"),
    Suite("nft_queue", "test", Framework(("-t", "net/netfilter:nft_queue.sh"), ("nft_queue.sh",), "shell"),
          "the upstream nfqueue selftest, unchanged, from the kselftest install"),
    SUITES["nft_queue_ring"],
)}

CHECK = ("host", "checkpatch", "series", "series-build", "guest", "kselftest", "kselftest32", "mcast_filter",
         "bench", "nft_queue", "nft_queue_ring", "nfq_smp", "mcast_filter_unfixed")
SERIES_CHECK = ("checkpatch", "series", "series-build-all")
GROUPS = {"check": CHECK, "series-check": SERIES_CHECK}

# Named tests of pytests/, comma-separated (vm/mutate.sh, vm/run.sh).
NAMED_TESTS = "pytest:"


def lookup(name: str, cross: bool = False) -> Suite:
    """The suite called `name` (of make cross-check's table when `cross`);
    "pytest:A,B" is a test-kernel pytest run of those node ids under
    pytests/.  ValueError names the known suites."""
    if name.startswith(NAMED_TESTS):
        nodes = tuple(f"pytests/{node}" for node in name[len(NAMED_TESTS):].split(",") if node)
        if not nodes:
            raise ValueError("pytest: needs test files or node ids, e.g. pytest:test_rx_poll.py")
        return Suite("pytest", "test", Pytest(nodes), "named tests of pytests/", request=name)
    try:
        return (CROSS_SUITES if cross else SUITES)[name]
    except KeyError:
        known = ", ".join([*SUITES, *GROUPS, NAMED_TESTS + "NODE,..."])
        raise ValueError(f"unknown suite '{name}' (known: {known})") from None


def expand(names: list[str]) -> list[Suite]:
    """Suites and groups to suites, in order, each once."""
    chosen: dict[str, Suite] = {}
    for name in names:
        for member in GROUPS.get(name, (name,)):
            suite = lookup(member)
            chosen.setdefault(suite.name, suite)
    return list(chosen.values())


def main(argv: list[str] | None = None) -> int:
    """python -m harness.suites cross: the suites of make cross-check, one a line."""
    args = sys.argv[1:] if argv is None else argv
    if args != ["cross"]:
        print("usage: python -m harness.suites cross", file=sys.stderr)
        return 2
    print("\n".join(CROSS_SUITES))
    return 0


if __name__ == "__main__":
    sys.exit(main())
