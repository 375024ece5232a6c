"""vm/tree.sh and vm/series.sh on a tiny fake kernel tree (KSRC)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

VM = Path(__file__).resolve().parents[1]
GIT_ENV = {"GIT_AUTHOR_NAME": "Dev", "GIT_AUTHOR_EMAIL": "dev@localhost",
           "GIT_COMMITTER_NAME": "Dev", "GIT_COMMITTER_EMAIL": "dev@localhost"}


def git(cwd: Path, *args: str, date: str = "2026-01-01T00:00:00Z") -> str:
    env = {**os.environ, **GIT_ENV, "GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout


class Workspace:
    def __init__(self, tmp: Path) -> None:
        self.ksrc = tmp / "ksrc"
        self.build = tmp / "build"
        self.patches = tmp / "patches"
        self.env = {**os.environ, "KSRC": str(self.ksrc), "BUILD": str(self.build),
                    "PATCHES": str(self.patches), "NLMMAP_CACHE": str(tmp / "cache"),
                    "VENV": sys.prefix}
        (self.ksrc / "net" / "netlink").mkdir(parents=True)
        (self.ksrc / "Makefile").write_text("VERSION = 7\n")
        (self.ksrc / "net" / "netlink" / "Kconfig").write_text("config NETLINK_DIAG\n\tbool\n")
        git(self.ksrc, "init", "-q", "-b", "master")
        git(self.ksrc, "add", "-A")
        git(self.ksrc, "commit", "-q", "-m", "base")

    def run(self, script: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["bash", str(VM / script)], env={**self.env, **extra},
                              capture_output=True, text=True, check=False)

    @property
    def tree(self) -> Path:
        return self.build / "linux"

    def commit_in_tree(self, path: str, text: str, subject: str, date: str) -> None:
        (self.tree / path).write_text(text)
        git(self.tree, "add", "-A")
        git(self.tree, "commit", "-q", "-s", "-m", f"{subject}\n\nWhy it is needed.", date=date)

    def snapshot(self) -> dict[str, bytes]:
        return {p.name: p.read_bytes() for p in sorted(self.patches.glob("*.patch"))}


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return Workspace(tmp_path)


def test_series_round_trip_is_byte_for_byte(ws: Workspace) -> None:
    assert ws.run("tree.sh").returncode == 0
    ws.commit_in_tree("net/netlink/Kconfig", "config NETLINK_DIAG\n\tbool\n\nconfig NETLINK_MMAP\n\tbool\n",
                      "netlink: add NETLINK_MMAP", "2026-02-01T10:00:00Z")
    ws.commit_in_tree("net/netlink/mmap.c", "/* rings */\n", "netlink: add the ring", "2026-02-02T10:00:00Z")
    first = ws.run("series.sh")
    assert first.returncode == 0, first.stderr
    cover = ws.patches / "0000-cover-letter.patch"
    text = cover.read_text().replace("*** SUBJECT HERE ***", "netlink: memory-mapped rings")
    cover.write_text(text.replace("*** BLURB HERE ***", "Rings at the socket boundary.\n\nSecond paragraph."))
    exported = ws.snapshot()
    assert list(exported) == ["0000-cover-letter.patch", "0001-netlink-add-NETLINK_MMAP.patch",
                              "0002-netlink-add-the-ring.patch"]

    # A fresh tree from patches/ exports exactly the same bytes.
    subprocess.run(["rm", "-rf", str(ws.tree)], check=True)
    assert ws.run("tree.sh").returncode == 0
    again = ws.run("series.sh")
    assert again.returncode == 0, again.stderr
    assert ws.snapshot() == exported
    assert "Rings at the socket boundary." in (ws.patches / "0000-cover-letter.patch").read_text()
    # and the tree is recognised as up to date
    assert "up to date" in ws.run("tree.sh").stderr


def test_the_net_fix_is_its_own_series_below_the_rfc(ws: Workspace) -> None:
    assert ws.run("tree.sh").returncode == 0
    ws.commit_in_tree("Makefile", "VERSION = 7\nFIXED = 1\n", "netlink: fix a bug", "2026-02-01T10:00:00Z")
    git(ws.tree, "branch", "-f", "net", "HEAD")
    ws.commit_in_tree("net/netlink/mmap.c", "/* rings */\n", "netlink: add the ring", "2026-02-02T10:00:00Z")
    first = ws.run("series.sh")
    assert first.returncode == 0, first.stderr
    fix = ws.patches / "net" / "0001-netlink-fix-a-bug.patch"
    rfc = ws.patches / "0001-netlink-add-the-ring.patch"
    assert "Subject: [PATCH net 1/1] netlink: fix a bug" in fix.read_text()
    assert "Subject: [RFC PATCH net-next 1/1] netlink: add the ring" in rfc.read_text()
    assert (ws.patches / "net" / "0000-cover-letter.patch").is_file()
    exported = {p.relative_to(ws.patches): p.read_bytes() for p in sorted(ws.patches.rglob("*.patch"))}

    # a fresh tree applies the fix first, ends branch net there and exports the same bytes
    subprocess.run(["rm", "-rf", str(ws.tree)], check=True)
    assert ws.run("tree.sh").returncode == 0
    assert git(ws.tree, "log", "--format=%s", "base..net").split("\n")[0] == "netlink: fix a bug"
    assert git(ws.tree, "log", "-1", "--format=%s", "HEAD").strip() == "netlink: add the ring"
    assert ws.run("series.sh").returncode == 0
    assert {p.relative_to(ws.patches): p.read_bytes() for p in sorted(ws.patches.rglob("*.patch"))} == exported
    assert "up to date" in ws.run("tree.sh").stderr
    # the bare base has neither
    bare = ws.run("tree.sh", SERIES="none", FORCE="1")
    assert bare.returncode == 0, bare.stderr
    assert git(ws.tree, "rev-list", "--count", "base..HEAD").strip() == "0"


def test_patch_that_does_not_apply_is_named(ws: Workspace) -> None:
    ws.patches.mkdir()
    assert ws.run("tree.sh").returncode == 0
    ws.commit_in_tree("Makefile", "VERSION = 8\n", "kbuild: bump", "2026-02-01T10:00:00Z")
    assert ws.run("series.sh").returncode == 0
    bad = ws.patches / "0002-netlink-broken.patch"
    bad.write_text((ws.patches / "0001-kbuild-bump.patch").read_text().replace("0002", "0001"))
    result = ws.run("tree.sh", FORCE="1")
    assert result.returncode != 0
    assert "patch does not apply: patches/0002-netlink-broken.patch" in result.stderr


def test_unexported_work_is_never_thrown_away(ws: Workspace) -> None:
    ws.patches.mkdir()
    assert ws.run("tree.sh").returncode == 0
    ws.commit_in_tree("Makefile", "VERSION = 8\n", "kbuild: local work", "2026-02-01T10:00:00Z")
    refused = ws.run("tree.sh")
    assert refused.returncode != 0 and "make series" in refused.stderr
    assert ws.run("series.sh").returncode == 0
    assert "up to date" in ws.run("tree.sh").stderr


def test_ksrc_that_is_not_a_kernel_tree_is_refused(ws: Workspace, tmp_path: Path) -> None:
    result = ws.run("tree.sh", KSRC=str(tmp_path))
    assert result.returncode != 0 and "is not a kernel tree" in result.stderr


def test_author_signs_the_exported_series(ws: Workspace) -> None:
    assert ws.run("tree.sh").returncode == 0
    section = "NETLINK MEMORY-MAPPED RINGS\nM:\tDev <dev@localhost>\nL:\tnetdev@vger.kernel.org\n"
    ws.commit_in_tree("MAINTAINERS", section, "netlink: add the ring", "2026-02-01T10:00:00Z")
    person = "Ann Poster <ann@example.org>"
    result = ws.run("series.sh", AUTHOR=person)
    assert result.returncode == 0, result.stderr
    text = (ws.patches / "0001-netlink-add-the-ring.patch").read_text()
    assert f"\nFrom: {person}\n" in text
    assert f"\nSigned-off-by: {person}\n" in text and "Signed-off-by: Dev" not in text
    assert f"\n+M:\t{person}\n" in text and "dev@localhost" not in text


def test_author_that_is_not_a_person_is_refused(ws: Workspace) -> None:
    assert ws.run("tree.sh").returncode == 0
    ws.commit_in_tree("Makefile", "VERSION = 8\n", "kbuild: bump", "2026-02-01T10:00:00Z")
    result = ws.run("series.sh", AUTHOR="root")
    assert result.returncode != 0
    assert "AUTHOR must be 'Full Name <address@domain>'" in result.stderr
