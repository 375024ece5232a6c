"""vm/setup.sh without root prints the commands to run instead, and stops."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

VM = Path(__file__).resolve().parents[1]


@pytest.fixture
def world_readable_copy() -> Iterator[Path]:
    """The set-up script and its inputs where an unprivileged user can read them
    (the checkout and pytest's tmp_path may be private to root)."""
    top = Path(tempfile.mkdtemp(prefix="nlmmap-setup-"))
    try:
        (top / "vm").mkdir()
        for name in ("setup.sh", "lib.sh", "flavours.sh", "apt-packages.txt", "requirements.txt"):
            shutil.copy(VM / name, top / "vm" / name)
        for path in (top, top / "vm", *(top / "vm").iterdir()):
            path.chmod(0o755)
        yield top
    finally:
        shutil.rmtree(top)


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None,
                    reason="needs root and setpriv to run the script as an unprivileged user")
def test_non_root_gets_the_commands(world_readable_copy: Path) -> None:
    venv = world_readable_copy / "no-venv"
    env = {"PATH": "/usr/bin:/bin", "VENV": str(venv), "NLMMAP_CACHE": str(world_readable_copy)}
    proc = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                           "bash", str(world_readable_copy / "vm" / "setup.sh")],
                          env=env, capture_output=True, text=True, check=False)
    assert proc.returncode == 1, proc.stderr
    assert "set-up needs root" in proc.stderr
    assert f"/usr/bin/python3 -m venv {venv}" in proc.stderr
    assert "pip install -r" in proc.stderr
