"""Fetching and pinning the base against a fake apt archive (a flat file: repository)."""

from __future__ import annotations

import hashlib
import io
import subprocess
import tarfile
from pathlib import Path

import pytest

from harness import fetch
from harness.pin import Pin, parse_pin

PIN_FILE = Path(__file__).resolve().parents[1] / "base.pin"


def make_deb(repo: Path, package: str, version: str) -> Path:
    """A linux-source .deb holding a tiny tarball, as Debian lays it out."""
    stage = repo / f"stage-{package}-{version}"
    (stage / "DEBIAN").mkdir(parents=True)
    (stage / "DEBIAN" / "control").write_text(
        f"Package: {package}\nVersion: {version}\nArchitecture: all\n"
        "Maintainer: test <t@localhost>\nDescription: fake kernel source\n")
    src = stage / "usr" / "src"
    src.mkdir(parents=True)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:xz") as tar:
        data = b"VERSION = 7\n"
        info = tarfile.TarInfo(f"{package}/Makefile")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    (src / f"{package}.tar.xz").write_bytes(buf.getvalue())
    deb = repo / f"{package}_{version}_all.deb"
    subprocess.run(["dpkg-deb", "-Zxz", "--build", str(stage), str(deb)], check=True, capture_output=True)
    return deb


def write_index(repo: Path, debs: list[tuple[Path, str, str]]) -> str:
    """Write the flat repository's Packages file; return its sources.list line."""
    entries = []
    for deb, package, version in debs:
        data = deb.read_bytes()
        entries.append(
            f"Package: {package}\nVersion: {version}\nArchitecture: all\n"
            f"Maintainer: test <t@localhost>\nFilename: ./{deb.name}\nSize: {len(data)}\n"
            f"SHA256: {hashlib.sha256(data).hexdigest()}\n"
            f"Description: Linux kernel source for version {package.rsplit('-', 1)[1]}\n")
    (repo / "Packages").write_text("\n".join(entries))
    return f"deb [trusted=yes] file:{repo} ./"


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    return repo


def pin_for(deb: Path | None, version: str = "7.3.4-1~bpo13+1") -> Pin:
    digest = hashlib.sha256(deb.read_bytes()).hexdigest() if deb else "0" * 64
    return Pin("linux-source-7.3", "7.3", version, digest, "trixie-backports")


def test_the_real_pin_file_is_complete() -> None:
    pin = parse_pin(PIN_FILE.read_text())
    assert pin.package == f"linux-source-{pin.series}"
    assert pin.version.startswith(pin.series + ".")
    assert len(pin.sha256) == 64 and int(pin.sha256, 16) >= 0


def test_pin_missing_key_is_an_error() -> None:
    with pytest.raises(ValueError, match="SHA256"):
        parse_pin("PACKAGE=a\nSERIES=1\nVERSION=1\nSUITE=s\n")


def test_pinned_version_is_fetched_and_verified(archive: Path, tmp_path: Path) -> None:
    deb = make_deb(archive, "linux-source-7.3", "7.3.4-1~bpo13+1")
    source = write_index(archive, [(deb, "linux-source-7.3", "7.3.4-1~bpo13+1")])
    got, version = fetch.fetch(pin_for(deb), tmp_path / "cache", source)
    assert version == "7.3.4-1~bpo13+1"
    assert got.read_bytes() == deb.read_bytes()
    # cached now: a second fetch needs no archive at all
    again, _ = fetch.fetch(pin_for(deb), tmp_path / "cache", "deb file:/nonexistent ./")
    assert again == got


def test_checksum_mismatch_fails_and_removes_the_download(archive: Path, tmp_path: Path) -> None:
    deb = make_deb(archive, "linux-source-7.3", "7.3.4-1~bpo13+1")
    source = write_index(archive, [(deb, "linux-source-7.3", "7.3.4-1~bpo13+1")])
    with pytest.raises(fetch.FetchError, match="sha256"):
        fetch.fetch(pin_for(None), tmp_path / "cache", source)
    assert not list((tmp_path / "cache" / "deb").glob("*.deb"))


def test_only_a_newer_upload_warns_and_is_used(archive: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    deb = make_deb(archive, "linux-source-7.3", "7.3.5-1~bpo13+1")
    source = write_index(archive, [(deb, "linux-source-7.3", "7.3.5-1~bpo13+1")])
    got, version = fetch.fetch(pin_for(None), tmp_path / "cache", source)
    assert version == "7.3.5-1~bpo13+1"
    assert got.is_file()
    assert "warning: linux-source-7.3 7.3.4-1~bpo13+1" in capsys.readouterr().err


def test_series_gone_names_the_newest_and_ksrc(archive: Path, tmp_path: Path) -> None:
    debs = [(make_deb(archive, f"linux-source-{s}", f"{s}.1-1"), f"linux-source-{s}", f"{s}.1-1")
            for s in ("7.2", "7.10", "7.4")]
    source = write_index(archive, debs)
    with pytest.raises(fetch.FetchError) as err:
        fetch.fetch(pin_for(None), tmp_path / "cache", source)
    assert "no linux-source-7.3 is left" in str(err.value)
    assert "newest series there is linux-source-7.10" in str(err.value)
    assert "KSRC=" in str(err.value)


def test_choose_prefers_the_newest_of_the_series() -> None:
    pin = pin_for(None)
    choice = fetch.choose(pin, ["7.3.5-1~bpo13+1", "7.3.10-1~bpo13+1", "7.3.9-1"], ["7.3"])
    assert choice.version == "7.3.10-1~bpo13+1" and not choice.exact and choice.warning


def test_machine_mirror_reads_deb822_and_one_line_sources(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\n\n"
        "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm\n")
    assert fetch.machine_mirror(tmp_path) == "http://mirror.example/debian"
    other = tmp_path / "other"
    other.mkdir()
    (other / "sources.list").write_text("deb [arch=amd64] http://m2.example/debian bookworm main\n")
    assert fetch.machine_mirror(other) == "http://m2.example/debian"
    assert fetch.machine_mirror(tmp_path / "none") == fetch.DEFAULT_MIRROR
