"""Fetch the pinned base kernel source (Debian's linux-source-X.Y) with apt.

apt runs with a private sources list and state directory under the cache, so
the system's apt configuration is never touched.  The pinned version must
match vm/base.pin exactly, checksum included; when the archive only has a
newer upload of the same series we warn and use it; when the series is gone
we fail and name the newest series that is there.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from harness.pin import Pin, read_pin

DEFAULT_MIRROR = "http://deb.debian.org/debian"


class FetchError(RuntimeError):
    """A failure the user has to act on; the message says how."""


@dataclass(frozen=True)
class Choice:
    """Which upload of the pinned series to use, and why."""

    version: str
    exact: bool
    warning: str | None


def machine_mirror(sources_dir: Path = Path("/etc/apt")) -> str:
    """Return the Debian mirror named by the machine's own apt sources."""
    texts: list[str] = []
    for path in sorted(sources_dir.glob("sources.list.d/*.sources")):
        texts.append(path.read_text(errors="replace"))
    for path in [sources_dir / "sources.list", *sorted(sources_dir.glob("sources.list.d/*.list"))]:
        if path.is_file():
            texts.append(path.read_text(errors="replace"))
    pattern = re.compile(r"(?:URIs:\s*|^deb\s+(?:\[[^]]*\]\s+)?)(https?://\S+/debian)/?\s", re.M)
    for text in texts:
        for match in pattern.finditer(text + "\n"):
            if "security" not in match.group(1):
                return match.group(1)
    return DEFAULT_MIRROR


def version_key(version: str) -> list[tuple[int, object]]:
    """Order Debian versions well enough for uploads of one series.

    Uses dpkg's own comparison where dpkg is there; the fallback splits
    digits from the rest, with '~' sorting before anything.
    """
    parts: list[tuple[int, object]] = []
    for token in re.findall(r"\d+|~|[^\d~]+", version):
        if token == "~":
            parts.append((-1, ""))
        elif token.isdigit():
            parts.append((1, int(token)))
        else:
            parts.append((0, token))
    return parts


def newer(a: str, b: str) -> bool:
    """True when Debian version a sorts after b."""
    try:
        return subprocess.run(["dpkg", "--compare-versions", a, "gt", b], check=False).returncode == 0
    except FileNotFoundError:
        return version_key(a) > version_key(b)


def choose(pin: Pin, available: list[str], series_found: list[str]) -> Choice:
    """Pick the upload to fetch from what the archive offers.

    available: versions of pin.package in the archive.
    series_found: X.Y of every linux-source-X.Y package in the archive.
    """
    if pin.version in available:
        return Choice(pin.version, True, None)
    same_series = [v for v in available if v.startswith(pin.series + ".")]
    if same_series:
        best = same_series[0]
        for version in same_series[1:]:
            if newer(version, best):
                best = version
        return Choice(
            best,
            False,
            f"warning: {pin.package} {pin.version} (pinned in vm/base.pin) is no longer in "
            f"the archive; using the newer upload {best}. Its checksum cannot be checked "
            f"against the pin: bump VERSION and SHA256 in vm/base.pin to pin it.",
        )
    newest = sorted(series_found, key=lambda s: [int(x) for x in s.split(".")])
    hint = (f"the newest series there is linux-source-{newest[-1]}" if newest
            else "no linux-source package is there at all")
    raise FetchError(
        f"error: no {pin.package} is left in {pin.suite}; {hint}. "
        f"Build on another tree with KSRC=/path/to/linux (e.g. `make check KSRC=~/net-next`), "
        f"or move the base deliberately by editing vm/base.pin."
    )


class Apt:
    """apt-get/apt-cache with a private sources list and state directory."""

    def __init__(self, state: Path, source_line: str) -> None:
        self.state = state
        self.source_line = source_line
        (state / "lists" / "partial").mkdir(parents=True, exist_ok=True)
        (state / "cache" / "archives" / "partial").mkdir(parents=True, exist_ok=True)
        (state / "sources.list").write_text(source_line + "\n")

    def options(self) -> list[str]:
        s = self.state
        return [
            "-o", f"Dir::Etc::sourcelist={s / 'sources.list'}",
            "-o", "Dir::Etc::sourceparts=-",
            "-o", f"Dir::State::Lists={s / 'lists'}",
            "-o", f"Dir::Cache={s / 'cache'}",
            "-o", "APT::Sandbox::User=root",
            "-o", "Debug::NoLocking=1",
        ]

    def run(self, tool: str, *args: str, cwd: Path | None = None) -> str:
        cmd = [tool, *self.options(), *args]
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise FetchError(f"error: `{' '.join([tool, *args])}` failed:\n{proc.stderr.strip()}")
        return proc.stdout

    def update(self) -> None:
        self.run("apt-get", "-q", "update")

    def versions(self, package: str) -> list[str]:
        out = self.run("apt-cache", "madison", package)
        return [line.split("|")[1].strip() for line in out.splitlines() if line.count("|") >= 2]

    def series(self) -> list[str]:
        out = self.run("apt-cache", "search", "--names-only", r"^linux-source-[0-9]+\.[0-9]+$")
        return sorted({m.group(1) for m in re.finditer(r"^linux-source-(\d+\.\d+)\s", out, re.M)})

    def download(self, package: str, version: str, dest: Path) -> Path:
        dest.mkdir(parents=True, exist_ok=True)
        self.run("apt-get", "-q", "download", f"{package}={version}", cwd=dest)
        debs = sorted(dest.glob(f"{package}_*.deb"))
        wanted = [d for d in debs if version.split(":")[-1] in d.name.replace("%7e", "~")]
        if not wanted:
            raise FetchError(f"error: apt-get download left no {package} {version} .deb in {dest}")
        return wanted[0]


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch(pin: Pin, cache: Path, source_line: str) -> tuple[Path, str]:
    """Return (path of the verified .deb, its version), downloading if needed."""
    debdir = cache / "deb"
    cached = debdir / f"{pin.package}_{pin.version.split(':')[-1]}_all.deb"
    if cached.is_file() and sha256(cached) == pin.sha256:
        return cached, pin.version
    apt = Apt(cache / "apt", source_line)
    apt.update()
    choice = choose(pin, apt.versions(pin.package), apt.series())
    if choice.warning:
        print(choice.warning, file=sys.stderr)
    deb = apt.download(pin.package, choice.version, debdir)
    digest = sha256(deb)
    if choice.exact and digest != pin.sha256:
        deb.unlink()
        raise FetchError(
            f"error: {deb.name} has sha256 {digest}, vm/base.pin says {pin.sha256}; "
            "the download was removed. Check the mirror, or re-pin deliberately."
        )
    print(f"base: {deb.name} sha256 {digest}", file=sys.stderr)
    return deb, choice.version


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pin", type=Path, required=True)
    parser.add_argument("--cache", type=Path, required=True)
    parser.add_argument("--source", help="apt source line (default: trixie-backports on the machine's mirror)")
    args = parser.parse_args(argv)
    pin = read_pin(args.pin)
    source = args.source or f"deb {machine_mirror()} {pin.suite} main"
    try:
        deb, version = fetch(pin, args.cache, source)
    except FetchError as err:
        print(err, file=sys.stderr)
        return 2
    print(f"{deb}\t{version}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
