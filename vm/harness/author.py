"""Put the person who will post the series into exported patches.

  harness author "Name <address>" PATCH...

A Signed-off-by certifies the Developer's Certificate of Origin, so it must
name a real person: the patches' author (From:), their Signed-off-by lines
of that author, and the series' MAINTAINERS entry (an added "M:" line naming
the old author) become the given person.  Rewritten in place.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

PERSON = re.compile(r"^[^<>@\n]+ <[^<>@\s]+@[^<>@\s]+\.[^<>@\s]+>$")


def rewrite(text: str, person: str) -> str:
    header, sep, rest = text.partition("\n\n")
    unfolded = re.sub(r"\n[ \t]+", " ", header)
    old = re.search(r"^From: (.+)$", unfolded, re.M)
    if old is None:
        raise ValueError("no From: header")
    header = re.sub(r"^From: .+$", lambda _: f"From: {person}", unfolded, count=1, flags=re.M)
    rest = rest.replace(f"Signed-off-by: {old.group(1)}\n", f"Signed-off-by: {person}\n")
    rest = rest.replace(f"\n+M:\t{old.group(1)}\n", f"\n+M:\t{person}\n")
    return header + sep + rest


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    person, paths = argv[0], [Path(p) for p in argv[1:]]
    if not PERSON.match(person):
        print(f"AUTHOR must be 'Full Name <address@domain>', not {person!r}", file=sys.stderr)
        return 2
    for path in paths:
        path.write_text(rewrite(path.read_text(), person))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
