"""What the running guest kernel is: release, build id, config."""

from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

NT_GNU_BUILD_ID = 3


def build_id_from_notes(notes: bytes) -> str | None:
    """The GNU build id in an ELF note section (/sys/kernel/notes), as hex."""
    offset = 0
    while offset + 12 <= len(notes):
        namesz, descsz, ntype = struct.unpack_from("=III", notes, offset)
        offset += 12
        name = notes[offset : offset + namesz]
        offset += (namesz + 3) & ~3
        desc = notes[offset : offset + descsz]
        offset += (descsz + 3) & ~3
        if ntype == NT_GNU_BUILD_ID and name.rstrip(b"\0") == b"GNU":
            return desc.hex()
    return None


def running_build_id() -> str | None:
    return build_id_from_notes(Path("/sys/kernel/notes").read_bytes())


def running_config() -> dict[str, str]:
    """CONFIG_X -> value of the running kernel (needs CONFIG_IKCONFIG_PROC)."""
    values: dict[str, str] = {}
    with gzip.open("/proc/config.gz", "rt") as fh:
        for line in fh:
            name, sep, value = line.strip().partition("=")
            if sep and name.startswith("CONFIG_"):
                values[name] = value
    return values


def expected(name: str) -> str:
    """A value the host runner exported for the guest (vm/run.sh, expect.env)."""
    value = os.environ.get(name)
    if not value:
        raise RuntimeError(f"{name} is not set: run the guest suites through vm/run.sh")
    return value
