"""A throw-away git repository for the series checks' host tests."""

from __future__ import annotations

import subprocess
from pathlib import Path


def git_tree(path: Path, commits: list[dict[str, str]]) -> list[str]:
    """A git repository with one commit per dict (path -> text); the commit ids."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(path), *args], capture_output=True, text=True, check=True).stdout

    path.mkdir()
    git("init", "-q")
    ids = []
    for files in commits:
        for name, text in files.items():
            (path / name).parent.mkdir(parents=True, exist_ok=True)
            (path / name).write_text(text)
        git("add", "-A")
        git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "c")
        ids.append(git("rev-parse", "HEAD").strip())
    return ids
