"""Every script sources vm/lib.sh, which stops on a setting of the wrong
form with the setting's name and what it takes (docs/pipeline.md, Settings)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

LIB = Path(__file__).resolve().parents[1] / "lib.sh"


def source_lib(**settings: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in settings} | settings
    return subprocess.run(["bash", "-c", f"set -euo pipefail; source {LIB}; echo sourced"],
                          capture_output=True, text=True, env=env)


@pytest.mark.parametrize(("name", "value", "takes"), [
    ("ACCEL", "qemu", "auto, kvm or tcg"),
    ("VM_CPUS", "two", "a positive whole number"),
    ("VM_TIMEOUT", "0", "a positive whole number"),
    ("DURATION", "10m", "a positive whole number"),
    ("VM_MEMORY", "3GB", "a size such as 3G or 2048M"),
    ("BENCH_SCALE", "huge", "full, smoke or headline"),
    ("BENCH_CLOCK", "tsc", "icount or wall"),
    ("SERIES", "all", "series or none"),
])
def test_a_bad_setting_stops_with_its_name_and_what_it_takes(name: str, value: str, takes: str) -> None:
    proc = source_lib(**{name: value})
    assert proc.returncode == 1
    assert f"error: {name} must be {takes}, not '{value}'" in proc.stderr


def test_a_missing_kernel_tree_is_named() -> None:
    proc = source_lib(KSRC="/no/such/tree")
    assert proc.returncode == 1
    assert "KSRC must be a kernel tree, but '/no/such/tree' is not a directory" in proc.stderr


def test_good_and_empty_settings_pass() -> None:
    proc = source_lib(ACCEL="tcg", VM_CPUS="4", VM_MEMORY="2048M", DURATION="", KSRC="", BENCH_SCALE="smoke")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "sourced"


def test_a_moved_cache_moves_every_cached_thing(tmp_path: Path) -> None:
    cache = tmp_path / "elsewhere"
    env = {k: v for k, v in os.environ.items() if k not in ("VENV", "CCACHE_DIR")} | {"NLMMAP_CACHE": str(cache)}
    proc = subprocess.run(["bash", "-c", f"source {LIB}; echo $CACHE $VENV $CCACHE_DIR"],
                          capture_output=True, text=True, env=env, check=True)
    assert proc.stdout.split() == [str(cache), str(cache / "venv"), str(cache / "ccache")]


def test_a_moved_cache_reaches_the_guest(tmp_path: Path) -> None:
    """virtme-ng passes no environment: the guest learns the venv from the
    command line and the manifest, never from a default path."""
    cache, kbuild, results, bin_dir = (tmp_path / n for n in ("cache", "kbuild", "results", "bin"))
    (kbuild / "arch/x86/boot").mkdir(parents=True)
    (kbuild / "arch/x86/boot/bzImage").write_bytes(b"")
    (kbuild / "include/config").mkdir(parents=True)
    (kbuild / "include/config/kernel.release").write_text("7.3.4+\n")
    (kbuild / "vmlinux").write_bytes(Path("/bin/true").read_bytes())
    bin_dir.mkdir()
    (bin_dir / "vng").write_text(f"#!/bin/sh\nprintf '%s\\n' \"$@\" > {tmp_path}/vng.args\n"
                                 "echo 'nlmmap-guest: kernel 7.3.4+ up, 2 CPUs'\n")
    (bin_dir / "vng").chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k not in ("VENV", "CCACHE_DIR", "TREE", "KBUILD")} | {
        "NLMMAP_CACHE": str(cache), "KBUILD": str(kbuild), "RESULTS": str(results), "ACCEL": "tcg",
        "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    subprocess.run([str(LIB.parent / "run.sh"), "kselftest"], capture_output=True, text=True, env=env, check=True)
    assert f"NLMMAP_VENV={cache / 'venv'}\n" in (results / "expect.env").read_text()
    exec_line = (tmp_path / "vng.args").read_text().split("--exec\n")[1].splitlines()[0]
    assert f"{cache / 'venv'}/bin/python3 -m harness.guest {results} kselftest" in exec_line
