"""Carry a hand-written cover letter over to a freshly generated one.

`git format-patch --cover-letter` writes placeholders ("*** SUBJECT HERE ***",
"*** BLURB HERE ***") and today's date.  The subject, date and blurb of the
existing cover letter replace them; the shortlog and diffstat stay fresh.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

_SHORTLOG_HEAD = re.compile(r"^\S.* \(\d+\):$")


def split_cover(text: str) -> tuple[list[str], list[str]]:
    """(header lines, body lines) of a cover letter."""
    lines = text.split("\n")
    blank = lines.index("")
    return lines[:blank], lines[blank + 1 :]


def header_value(headers: list[str], name: str) -> str | None:
    """A header's value with folded continuation lines joined."""
    for index, line in enumerate(headers):
        if line.startswith(name + ":"):
            value = line[len(name) + 1 :].strip()
            for cont in headers[index + 1 :]:
                if not cont.startswith((" ", "\t")):
                    break
                value += " " + cont.strip()
            return value
    return None


def blurb(body: list[str]) -> list[str]:
    """The free text of a cover letter: everything before the shortlog."""
    for index, line in enumerate(body):
        if _SHORTLOG_HEAD.match(line) and index + 1 < len(body) and body[index + 1].startswith("  "):
            end = index
            while end > 0 and body[end - 1] == "":
                end -= 1
            return body[:end]
    return body


def merge(old: str, new: str) -> str:
    old_headers, old_body = split_cover(old)
    new_headers, new_body = split_cover(new)
    subject = header_value(old_headers, "Subject") or ""
    subject = re.sub(r"^\[[^]]*\]\s*", "", subject)
    date = header_value(old_headers, "Date")
    headers: list[str] = []
    skip_folded = False
    for line in new_headers:
        if skip_folded and line.startswith((" ", "\t")):
            continue
        skip_folded = False
        if line.startswith("Subject:") and "*** SUBJECT HERE ***" in line:
            line = line.replace("*** SUBJECT HERE ***", subject)
            skip_folded = True
        elif line.startswith("Date:") and date:
            line = f"Date: {date}"
        headers.append(line)
    body: list[str] = []
    for line in new_body:
        if line == "*** BLURB HERE ***":
            body.extend(blurb(old_body))
        else:
            body.append(line)
    return "\n".join(headers) + "\n\n" + "\n".join(body)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: cover OLD_COVER NEW_COVER (NEW_COVER is rewritten)", file=sys.stderr)
        return 2
    old, new = Path(args[0]), Path(args[1])
    new.write_text(merge(old.read_text(), new.read_text()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
