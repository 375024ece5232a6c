"""The kernel config fragment (vm/kernel.config) and its check against .config.

Kconfig silently drops a request it cannot honour (a missing dependency, a
symbol that does not exist in this tree), so after `olddefconfig` every line
of the fragment is compared with the final .config and the build stops on any
difference, naming the option.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

_LINE = re.compile(r"^(CONFIG_[A-Za-z0-9_]+)=(.*)$")
_UNSET = re.compile(r"^# (CONFIG_[A-Za-z0-9_]+) is not set$")


def parse_fragment(text: str) -> dict[str, str]:
    """Map CONFIG_X to its wanted value ('n' for off).  Rejects junk lines."""
    wanted: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        unset = _UNSET.match(line)
        if unset:
            wanted[unset.group(1)] = "n"
            continue
        if not line or line.startswith("#"):
            continue
        match = _LINE.match(line)
        if not match:
            raise ValueError(f"fragment line {number}: not CONFIG_X=value: {raw!r}")
        wanted[match.group(1)] = match.group(2)
    return wanted


def parse_config(text: str) -> dict[str, str]:
    """Map CONFIG_X to its value in a .config; unset options map to 'n'."""
    values: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        unset = _UNSET.match(line)
        if unset:
            values[unset.group(1)] = "n"
            continue
        match = _LINE.match(line)
        if match:
            values[match.group(1)] = match.group(2)
    return values


def mismatches(wanted: dict[str, str], actual: dict[str, str]) -> list[str]:
    """Human-readable lines for every fragment option that did not stick."""
    problems = []
    for name, value in wanted.items():
        got = actual.get(name, "n")
        if got != value:
            shown = "not set" if got == "n" else got
            problems.append(f"{name}: wanted {value}, .config has {shown}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="check a config fragment against a .config")
    parser.add_argument("fragment", type=Path)
    parser.add_argument("config", type=Path)
    parser.add_argument("--ignore", action="append", default=[], metavar="CONFIG_X",
                        help="an option this tree does not have (the base tree lacks the series' own)")
    args = parser.parse_args(argv)
    wanted = parse_fragment(args.fragment.read_text())
    for name in args.ignore:
        wanted.pop(name, None)
    problems = mismatches(wanted, parse_config(args.config.read_text()))
    for line in problems:
        print(f"kconfig: {line}", file=sys.stderr)
    if problems:
        print(f"kconfig: {len(problems)} option(s) of {args.fragment} did not stick; "
              "a dependency is missing or the symbol does not exist in this tree", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
