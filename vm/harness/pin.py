"""Read vm/base.pin, the one place that pins the base kernel source."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

REQUIRED = ("PACKAGE", "SERIES", "VERSION", "SHA256", "SUITE")


@dataclass(frozen=True)
class Pin:
    package: str
    series: str
    version: str
    sha256: str
    suite: str


def parse_pin(text: str) -> Pin:
    """Parse KEY=VALUE lines; '#' starts a comment.  Missing keys are an error."""
    values: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise ValueError(f"base.pin line {number}: expected KEY=VALUE, got {raw!r}")
        values[key.strip()] = value.strip()
    missing = [k for k in REQUIRED if not values.get(k)]
    if missing:
        raise ValueError(f"base.pin: missing {', '.join(missing)}")
    return Pin(
        package=values["PACKAGE"],
        series=values["SERIES"],
        version=values["VERSION"],
        sha256=values["SHA256"].lower(),
        suite=values["SUITE"],
    )


def read_pin(path: Path) -> Pin:
    return parse_pin(path.read_text())
