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
    ("BENCH_SCALE", "huge", "full or smoke"),
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
