"""Each kernel flavour is defined once (vm/flavours.sh): its tree, build
folder, fragments, series and ignored options follow from the name."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHOW = ('source vm/lib.sh; printf "%s\\n" "$TREE" "$KBUILD" "${FRAGMENTS[*]}" "$SERIES" "$KCONFIG_IGNORE" '
        '"$SEED" "$PROGRAMS"')


def flavour(name: str | None, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in ("FLAVOUR", "TREE", "KBUILD", "SERIES", "BUILD")}
    clean.update(env, BUILD="/b")
    if name is not None:
        clean["FLAVOUR"] = name
    return subprocess.run(["bash", "-c", SHOW], cwd=ROOT, env=clean, capture_output=True, text=True, check=False)


def settings(name: str | None, **env: str) -> list[str]:
    proc = flavour(name, **env)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()


TEST_FRAGMENT = f"{ROOT}/vm/kernel.config"
PERF_FRAGMENTS = f"{TEST_FRAGMENT} {ROOT}/vm/kernel-perf.config"
NOMMAP_FRAGMENTS = f"{PERF_FRAGMENTS} {ROOT}/vm/kernel-nommap.config"


@pytest.mark.parametrize("name, expected", [
    (None, ["/b/linux", "/b/kbuild", TEST_FRAGMENT, "series", "", "", "1"]),
    ("test", ["/b/linux", "/b/kbuild", TEST_FRAGMENT, "series", "", "", "1"]),
    ("nommap", ["/b/linux", "/b/kbuild-nommap", NOMMAP_FRAGMENTS, "series", "", "/b/kbuild-perf", "0"]),
    ("perf", ["/b/linux", "/b/kbuild-perf", PERF_FRAGMENTS, "series", "", "", "1"]),
    ("base", ["/b/base/linux", "/b/base/kbuild", TEST_FRAGMENT, "none", "CONFIG_NETLINK_MMAP", "", "1"]),
    ("base-perf", ["/b/base/linux", "/b/base/kbuild-perf", PERF_FRAGMENTS, "none", "CONFIG_NETLINK_MMAP", "",
                   "1"]),
])
def test_everything_follows_from_the_name(name: str | None, expected: list[str]) -> None:
    assert settings(name) == expected


def test_an_override_applies_to_test_and_perf_only() -> None:
    """The judging and reference kernels never build in a caller's folders."""
    assert settings("perf", KBUILD="/mutant")[1] == "/mutant"
    assert settings("base-perf", KBUILD="/mutant", TREE="/other")[:2] == ["/b/base/linux", "/b/base/kbuild-perf"]
    assert settings("nommap", KBUILD="/mutant", TREE="/other")[:2] == ["/b/linux", "/b/kbuild-nommap"]


def test_the_bare_base_in_the_test_folders_may_lack_the_series_option() -> None:
    assert settings("test", SERIES="none")[3:5] == ["none", "CONFIG_NETLINK_MMAP"]


def test_an_unknown_flavour_is_refused_with_the_list() -> None:
    proc = flavour("debug")
    assert proc.returncode != 0
    assert "FLAVOUR must be one of test perf nommap base base-perf, not 'debug'" in proc.stderr


def seed(tmp_path: Path, seed_folder: str, kbuild: Path) -> subprocess.CompletedProcess[str]:
    script = f'source vm/lib.sh; seed_build_folder "{seed_folder}" "{kbuild}"'
    env = {k: v for k, v in os.environ.items() if k not in ("FLAVOUR", "TREE", "KBUILD", "BUILD")}
    return subprocess.run(["bash", "-c", script], cwd=ROOT, env=dict(env, BUILD=str(tmp_path), FLAVOUR="nommap"),
                          capture_output=True, text=True, check=False)


def test_a_seeded_build_folder_starts_as_a_copy_without_the_seeds_kernel(tmp_path: Path) -> None:
    perf, nommap = tmp_path / "kbuild-perf", tmp_path / "kbuild-nommap"
    (perf / "net/netlink").mkdir(parents=True)
    (perf / "arch/x86/boot").mkdir(parents=True)
    for name in (".config", "net/netlink/af_netlink.o", "vmlinux", "arch/x86/boot/bzImage", "nlmmap-build.txt"):
        (perf / name).write_text(name)
    (nommap / "stale").mkdir(parents=True)
    proc = seed(tmp_path, str(perf), nommap)
    assert proc.returncode == 0, proc.stderr
    assert (nommap / "net/netlink/af_netlink.o").read_text() == "net/netlink/af_netlink.o"
    assert (nommap / ".config").is_file() and not (nommap / "stale").exists()
    # a build that then fails must not leave perf's kernel bootable as nommap's
    assert not any((nommap / name).exists() for name in ("vmlinux", "arch/x86/boot/bzImage", "nlmmap-build.txt"))
    assert (perf / "vmlinux").is_file(), "the seed stays as it was"


def test_no_seed_or_an_unbuilt_seed_copies_nothing(tmp_path: Path) -> None:
    nommap = tmp_path / "kbuild-nommap"
    assert seed(tmp_path, "", nommap).returncode == 0 and not nommap.exists()
    (tmp_path / "kbuild-perf").mkdir()
    proc = seed(tmp_path, str(tmp_path / "kbuild-perf"), nommap)
    assert proc.returncode == 0 and not nommap.exists()
    assert "builds from scratch" in proc.stderr
    same = seed(tmp_path, str(nommap), nommap)
    assert same.returncode != 0 and "cannot be its own seed" in same.stderr
