"""The project's shell scripts stay shellcheck-clean; its Python passes ruff,
and mypy --strict on the harness and the clients (settings: pyproject.toml)."""

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


def _venv_tool(name: str) -> str | None:
    """A tool installed beside this interpreter (the venv), else on PATH."""
    import sys

    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else shutil.which(name)


@pytest.mark.skipif(_venv_tool("ruff") is None, reason="ruff is not installed (make setup installs it)")
def test_ruff_clean() -> None:
    proc = subprocess.run([str(_venv_tool("ruff")), "check", "--no-cache",
                           "vm/harness", "vm/tests", "pytests", "nlmmap"],
                          cwd=ROOT, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.skipif(_venv_tool("mypy") is None, reason="mypy is not installed (make setup installs it)")
@pytest.mark.parametrize("where, package", [("vm", "harness"), (".", "nlmmap")])
def test_mypy_strict(where: str, package: str) -> None:
    proc = subprocess.run([str(_venv_tool("mypy")), "--config-file", str(ROOT / "pyproject.toml"),
                           "--no-incremental", "--cache-dir", "/dev/null", package],
                          cwd=ROOT / where, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
