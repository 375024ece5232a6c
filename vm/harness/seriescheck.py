"""The checks netdev's patch CI runs on every patch that need no kernel build:
Signed-off-by, kernel-doc, MAINTAINERS coverage, selftest lists.

  harness seriescheck TREE BASE PATCH...

TREE is a git tree whose commits after BASE are the patches, in order.
One TAP line per (patch, check); what a check found is quoted below it.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

SELFTESTS = "tools/testing/selftests/"


def shown_name(path: Path) -> str:
    """A patch file as the reports name it: the net fix's as net/NNNN-..."""
    return f"net/{path.name}" if path.parent.name == "net" else path.name
LISTS = ("TEST_GEN_PROGS", "TEST_GEN_FILES", "TEST_PROGS", "TEST_FILES", "TEST_GEN_PROGS_EXTENDED")


@dataclass
class Patch:
    name: str
    author: str  # "Name <address>" of From:
    signoffs: list[str]
    files: list[str]  # every path the patch touches
    created: list[str]  # paths it creates

    @classmethod
    def parse(cls, path: Path) -> Patch:
        text = path.read_text(errors="replace")
        header, _, _ = text.partition("\n---\n")
        header = re.sub(r"\n[ \t]+", " ", header)  # unfold long header lines
        author = re.search(r"^From: (.+)$", header, re.M)
        files, created = [], []
        current = ""
        for line in text.splitlines():
            if line.startswith("diff --git "):
                current = line.split()[3].removeprefix("b/")
                files.append(current)
            elif line.startswith("new file mode") and current:
                created.append(current)
        return cls(shown_name(path), author.group(1).strip() if author else "",
                   re.findall(r"^Signed-off-by: (.+)$", header, re.M), files, created)


@dataclass
class Result:
    ok: bool
    what: str
    notes: list[str] = field(default_factory=list)


def check_signoff(patch: Patch) -> Result:
    """A Signed-off-by of the author (From:), as the DCO asks."""
    if not patch.author:
        return Result(False, "Signed-off-by of the author", ["no From: line"])
    if patch.author not in patch.signoffs:
        return Result(False, "Signed-off-by of the author",
                      [f"From: {patch.author}", *(f"Signed-off-by: {s}" for s in patch.signoffs or ["(none)"])])
    return Result(True, "Signed-off-by of the author")


def git(tree: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(tree), *args], capture_output=True, text=True, check=True).stdout


def _file_at(tree: Path, commit: str, path: str) -> str | None:
    proc = subprocess.run(["git", "-C", str(tree), "show", f"{commit}:{path}"], capture_output=True, text=True)
    return proc.stdout if proc.returncode == 0 else None


def _kernel_doc_warnings(tree: Path, source: str, name: str) -> list[str]:
    """kernel-doc -none -Wall on one file's text; warnings without line numbers."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / Path(name).name
        path.write_text(source)
        proc = subprocess.run([str(tree / "scripts" / "kernel-doc"), "-none", "-Wall", str(path)],
                              capture_output=True, text=True)
    lines = (proc.stdout + proc.stderr).splitlines()
    # the same warning elsewhere in the file is the same warning
    return sorted(re.sub(r"\S*" + re.escape(path.name) + r":\d+:? ?", "", line)
                  for line in lines if "warning" in line.lower())


def check_kernel_doc(tree: Path, commit: str, parent: str, patch: Patch) -> Result:
    """No kernel-doc warning in a touched C file that its parent did not have."""
    new: list[str] = []
    for name in patch.files:
        if not name.endswith((".c", ".h")) or name.startswith("tools/"):
            continue
        after = _file_at(tree, commit, name)
        if after is None:
            continue
        before = _file_at(tree, parent, name)
        old = _kernel_doc_warnings(tree, before, name) if before is not None else []
        for warning in _kernel_doc_warnings(tree, after, name):
            if warning in old:
                old.remove(warning)
            else:
                new.append(f"{name}: {warning}")
    return Result(not new, "no new kernel-doc warning", new)


def check_maintainers(tree: Path, patch_path: Path, want: list[str]) -> Result:
    """get_maintainer.pl on the patch names every address in want."""
    proc = subprocess.run(["perl", "scripts/get_maintainer.pl", "--no-git", "--no-git-fallback",
                           "--no-rolestats", str(patch_path.resolve())], cwd=tree, capture_output=True, text=True)
    missing = [w for w in want if w not in proc.stdout]
    return Result(not missing, "get_maintainer.pl names " + ", ".join(want),
                  [f"missing: {m}" for m in missing] + (proc.stdout.splitlines() if missing else []))


def _make_lists(makefile: str) -> set[str]:
    names: set[str] = set()
    joined = makefile.replace("\\\n", " ")
    for line in joined.splitlines():
        match = re.match(r"\s*(\w+)\s*[+:]?=\s*(.*)", line)
        if match and match.group(1) in LISTS:
            names.update(match.group(2).split())
    return names


def check_selftest_lists(tree: Path, commit: str, patch: Patch) -> Result:
    """What a patch adds under tools/testing/selftests/ is listed: each new
    program in its Makefile and .gitignore, the directory in TARGETS (kept
    sorted) and a config file beside it."""
    problems: list[str] = []
    for name in patch.created:
        if not name.startswith(SELFTESTS) or not name.endswith((".c", ".sh")):
            continue
        folder, program = name.rsplit("/", 1)
        stem = program.removesuffix(".c")
        makefile = _file_at(tree, commit, f"{folder}/Makefile") or ""
        if stem not in _make_lists(makefile) and program not in _make_lists(makefile):
            problems.append(f"{name}: not in {folder}/Makefile")
        if program.endswith(".c"):
            ignore = _file_at(tree, commit, f"{folder}/.gitignore")
            if ignore is not None and stem not in ignore.split():
                problems.append(f"{name}: {stem} not in {folder}/.gitignore")
        if _file_at(tree, commit, f"{folder}/config") is None:
            problems.append(f"{name}: no {folder}/config")
    top = _file_at(tree, commit, SELFTESTS + "Makefile") or ""
    targets = re.findall(r"^TARGETS \+= (\S+)$", top, re.M)
    folders = {n.removeprefix(SELFTESTS).rsplit("/", 1)[0] for n in patch.created if n.startswith(SELFTESTS)}
    for folder in sorted(folders):
        if folder not in targets and not any(folder.startswith(t + "/") for t in targets):
            problems.append(f"{folder}: not in TARGETS of {SELFTESTS}Makefile")
        elif folder in targets:
            index = targets.index(folder)
            neighbours = targets[max(index - 1, 0) : index + 2]
            if neighbours != sorted(neighbours):
                problems.append(f"TARGETS += {folder} is out of order: {' '.join(neighbours)}")
    return Result(not problems, "new selftests listed (Makefile, .gitignore, config, TARGETS)", problems)


def series_commits(tree: Path, base: str, patch_paths: list[Path]) -> list[str]:
    """The commits after BASE, one per patch given, in order."""
    commits = git(tree, "rev-list", "--reverse", f"{base}..HEAD").split()
    if len(commits) != len(patch_paths):
        raise SystemExit(f"{tree} has {len(commits)} commits after {base}, but {len(patch_paths)} patches were given")
    return commits


def run(tree: Path, base: str, patch_paths: list[Path], want: list[str]) -> tuple[str, bool]:
    commits = series_commits(tree, base, patch_paths)
    lines: list[str] = []
    passed, count = True, 0
    parents = [base, *commits[:-1]]
    for path, commit, parent in zip(patch_paths, commits, parents, strict=True):
        patch = Patch.parse(path)
        for result in (check_signoff(patch), check_kernel_doc(tree, commit, parent, patch),
                       check_maintainers(tree, path, want), check_selftest_lists(tree, commit, patch)):
            passed &= result.ok
            count += 1
            lines.append(f"{'ok' if result.ok else 'not ok'} {count} {patch.name}: {result.what}")
            lines.extend(f"# {note}" for note in result.notes)
    tap = "\n".join(["TAP version 13", f"1..{count}", *lines]) + "\n"
    return tap, passed


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="harness seriescheck", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("tree", type=Path)
    parser.add_argument("base")
    parser.add_argument("patches", type=Path, nargs="+")
    parser.add_argument("--want", action="append", default=[],
                        help="an address get_maintainer.pl must name for every patch")
    args = parser.parse_args(argv)
    tap, passed = run(args.tree, args.base, args.patches, args.want)
    sys.stdout.write(tap)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
