"""The project's shell scripts stay shellcheck-clean."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def shell_scripts() -> list[Path]:
    scripts = sorted((ROOT / "vm").rglob("*.sh")) + [ROOT / ".ci" / "run"]
    return [s for s in scripts if "tests" not in s.relative_to(ROOT).parts]


def test_there_are_scripts_to_check() -> None:
    assert len(shell_scripts()) >= 7


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed (make setup installs it)")
def test_shellcheck_clean() -> None:
    proc = subprocess.run(["shellcheck", "-x", *map(str, shell_scripts())], cwd=ROOT,
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
