"""Every patch of the series built as netdev's patch CI builds it: the
folders the series touches, with W=1 (and sparse on x86_64), for several
targets, and the selftest sources it touches as 64- and 32-bit programs; a
patch passes when its build has no warning its parent's lacks.

  harness seriesbuild TREE BASE PATCH... --work DIR [--targets A,B] [--whole]

TREE is a git tree whose commits after BASE are the patches, in order.  DIR
holds a detached worktree of TREE and one build folder per target (kept
between runs: the arch's defconfig plus the target's fragment, ccache).
--whole builds only the base and the last patch, and reports the series as
one change (make check: a warning any patch adds and no later patch removes).
One TAP
line per (patch, target); the new warnings are quoted below it.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from harness.seriescheck import git, series_commits, shown_name

MMAP_ON = ("CONFIG_NETLINK_MMAP=y", "CONFIG_NETLINK_DIAG=y")
MMAP_OFF = ("# CONFIG_NETLINK_MMAP is not set", "CONFIG_NETLINK_DIAG=y")


@dataclass(frozen=True)
class Target:
    name: str
    arch: str  # ARCH=
    cc: str  # the compiler, run through ccache
    config: tuple[str, ...]  # on top of the arch's defconfig
    sparse: bool = False
    llvm: str = ""  # LLVM= (clang and its binutils)
    selftests: str = ""  # -m64 or -m32: the series' selftest sources instead of the kernel
    docs: bool = False  # make htmldocs of the Documentation folders the series touches instead
    shares: str = ""  # the build folder of this target (same config: one defconfig and prepare)

    @property
    def what(self) -> str:
        if self.docs:
            return f"{self.name}: Sphinx builds the touched Documentation folders: no new warnings"
        if self.selftests:
            return f"{self.name}: the selftest sources compile ({self.selftests} -Wall): no new warnings"
        mmap = "NETLINK_MMAP=y" if "CONFIG_NETLINK_MMAP=y" in self.config else "NETLINK_MMAP=n"
        return f"{self.name} ({mmap}) W=1{' C=1' if self.sparse else ''}: no new warnings"


TARGETS = {t.name: t for t in (
    Target("x86_64", "x86_64", "gcc", MMAP_ON, sparse=True),
    Target("x86_64-nommap", "x86_64", "gcc", MMAP_OFF, sparse=True),
    Target("clang", "x86_64", "clang-19", MMAP_ON, llvm="-19"),
    Target("i386", "i386", "gcc", MMAP_ON),
    # clang cross-compiles by ARCH= alone; Debian's GNU cross compilers
    # conflict with gcc-multilib, which the 32-bit selftests need
    Target("arm64-64k", "arm64", "clang-19", (*MMAP_ON, "CONFIG_ARM64_64K_PAGES=y"), llvm="-19"),
    Target("s390x", "s390", "clang-19", MMAP_ON, llvm="-19"),
    # against the UAPI headers of the same state (make headers)
    Target("selftests", "x86_64", "gcc", MMAP_ON, selftests="-m64", shares="x86_64"),
    Target("selftests-m32", "x86_64", "gcc", MMAP_ON, selftests="-m32", shares="x86_64"),
    Target("htmldocs", "x86_64", "gcc", MMAP_ON, docs=True),
)}
# Sphinx (the venv's, beside this interpreter): the kernel's htmldocs
SPHINX_BIN = Path(sys.executable).parent
# Debian 12's sparse 0.6.4 lacks __typeof_unqual__, which 7.3's
# scripts/checker-valid.sh asks for; as __typeof__ it passes that test and
# checks the code (qualifiers kept: a const-related report would come from
# the base as much as from the series)
SPARSE_FLAGS = "-D__typeof_unqual__=__typeof__"

# A line that reports a warning or an error, whichever tool printed it: gcc,
# clang and sparse (file:l:c: warning:), kernel-doc (Warning: file:l text),
# objtool (x.o: warning: objtool:), the linker (ld.lld: warning:), Sphinx
# (file:l: WARNING:, file: WARNING:).  Not make's "*** [...] Error 2".
DIAGNOSTIC = re.compile(r"\b(?:warning|error|fatal error|Warning|Error|WARNING|ERROR|CRITICAL|SEVERE):")
LINE_NUMBER = re.compile(r"(?<=\S):\d+(?::\d+)?(?=[:\s]|$)")
JOBS = os.environ.get("JOBS") or str(os.cpu_count() or 1)


def _run(cmd: list[str], extra_path: str = "") -> subprocess.CompletedProcess[str]:
    # ASCII quotes in the compilers' messages, the same keys everywhere (the
    # kernel's Makefile unexports LC_ALL, so LANG too)
    env = {**os.environ, "LC_ALL": "C", "LANG": "C"}
    if extra_path:
        env["PATH"] = f"{extra_path}:{env['PATH']}"
    return subprocess.run(cmd, capture_output=True, text=True, errors="replace", env=env)


def _make_args(target: Target, src: Path, out: Path) -> list[str]:
    host = target.cc if target.llvm else "gcc"  # LLVM= links host programs with ld.lld
    args = ["make", "-s", "--output-sync=target", "-C", str(src), f"O={out}", f"ARCH={target.arch}", f"-j{JOBS}",
            f"HOSTCC=ccache {host}", f"CC=ccache {target.cc}"]
    if target.llvm:
        args.append(f"LLVM={target.llvm}")
    return args


def missing_tools(target: Target) -> list[str]:
    if target.docs:
        return [] if (SPHINX_BIN / "sphinx-build").exists() else ["sphinx-build (vm/requirements.txt)"]
    tools = [target.cc, "ccache"] + (["sparse"] if target.sparse else [])
    if target.llvm:
        tools += [f"{tool}{target.llvm}" for tool in ("ld.lld", "llvm-ar", "llvm-nm", "llvm-objcopy")]
    return [tool for tool in tools if shutil.which(tool) is None]


class ConfigureError(Exception):
    pass


def _symbol(line: str) -> str:
    """CONFIG_X of "CONFIG_X=y" and of "# CONFIG_X is not set"."""
    return line.removeprefix("# ").split("=")[0].split(" ")[0]


def _defined(src: Path, line: str) -> bool:
    """Whether this state's Kconfig files define the line's symbol."""
    name = _symbol(line).removeprefix("CONFIG_")
    return subprocess.run(["git", "-C", str(src), "grep", "-q", "-E", f"^(menu)?config {name}$", "--", "*Kconfig*"],
                          capture_output=True).returncode == 0


def configure(target: Target, src: Path, out: Path) -> None:
    """The arch's defconfig (once) and the fragment on top, again for every
    state: a Kconfig without a symbol (the base, before the series adds
    it) drops the symbol's line, and the next state would default it.
    Every line whose symbol this state defines must stick."""
    out.mkdir(parents=True, exist_ok=True)
    config = out / ".config"
    steps = [["olddefconfig"]] if config.exists() else [["defconfig"], ["olddefconfig"]]
    for step in steps:
        if step == ["olddefconfig"]:
            symbols = {_symbol(line) for line in target.config}
            kept = [line for line in config.read_text().splitlines() if _symbol(line) not in symbols]
            config.write_text("\n".join([*kept, *target.config]) + "\n")
        proc = _run(_make_args(target, src, out) + step)
        if proc.returncode:
            raise ConfigureError(f"make {step[0]} failed:\n{proc.stderr[-2000:]}")
    lines = config.read_text().splitlines()
    lost = [line for line in target.config if line not in lines and _defined(src, line)]
    if lost:
        raise ConfigureError(f"{', '.join(lost)} did not stick in {config}")


def diagnostics(output: str, src: Path, out: Path) -> Counter[str]:
    """Warnings and errors, keyed without line numbers and without the
    worktree's path, so that a patch moving code does not make them new.
    The path comes absolute, relative to the build folder (ccache's
    CCACHE_BASEDIR rewrites it so) or relative to this process."""
    found: Counter[str] = Counter()
    prefixes = sorted({f"{src}/", f"{os.path.relpath(src, out)}/", f"{os.path.relpath(src)}/"}, key=len, reverse=True)
    for line in output.splitlines():
        if DIAGNOSTIC.search(line):
            for prefix in prefixes:
                line = line.replace(prefix, "")
            found[LINE_NUMBER.sub("", line.strip())] += 1
    return found


def build_selftests(target: Target, src: Path, out: Path, sources: list[str]) -> tuple[bool, Counter[str], str]:
    """Each selftest source of this state compiled against its UAPI headers."""
    proc = _run(_make_args(target, src, out) + ["headers"])
    ok, output = proc.returncode == 0, proc.stdout + proc.stderr
    for source in sources:
        if ok and (src / source).exists():
            # -I: the selftests' own headers (kselftest_harness.h), as lib.mk gives them
            proc = _run(["ccache", target.cc, target.selftests, "-Wall", "-O2", "-isystem", f"{out}/usr/include",
                         "-I", f"{src}/tools/testing/selftests", "-c", f"{src}/{source}", "-o", f"{out}/selftest.o"])
            ok, output = proc.returncode == 0, output + proc.stdout + proc.stderr
    return ok, diagnostics(output, src, out), output


def build_docs(src: Path, out: Path, doc_dirs: list[str]) -> tuple[bool, Counter[str], str]:
    """make htmldocs of those Documentation folders, every document read
    again (Sphinx prints a warning only when it reads the document)."""
    shutil.rmtree(out / "Documentation" / "output" / ".doctrees", ignore_errors=True)
    proc = _run(["make", "-s", "-C", str(src), f"O={out}", f"SPHINXDIRS={' '.join(doc_dirs)}", "htmldocs"],
                extra_path=str(SPHINX_BIN))
    output = proc.stdout + proc.stderr
    return proc.returncode == 0, diagnostics(output, src, out), output


def build(target: Target, src: Path, out: Path, folders: list[str]) -> tuple[bool, Counter[str], str]:
    """The folders rebuilt from scratch (objects removed: ccache replays a
    cached compiler's warnings) with W=1, and sparse where the target has it."""
    for folder in folders:
        for obj in (out / folder).glob("**/*.o"):
            obj.unlink()
    # -k: with CONFIG_WERROR (defconfig) the first warning stops make, and
    # the other objects' warnings would go unseen
    args = _make_args(target, src, out) + ["-k", "W=1"] + (["C=1", f"CF={SPARSE_FLAGS}"] if target.sparse else [])
    proc = _run(args + [f"{folder}/" for folder in folders])
    output = proc.stdout + proc.stderr
    # without a sparse the kernel accepts, make warns once and checks nothing
    checked = not target.sparse or "is not available or not up to date" not in output
    return proc.returncode == 0 and checked, diagnostics(output, src, out), output


def touched_files(tree: Path, base: str) -> list[str]:
    """Every file some patch touches (also one a later patch restores)."""
    return sorted(set(git(tree, "log", "--name-only", "--format=", f"{base}..HEAD").split()))


def kernel_folders(files: list[str]) -> list[str]:
    """The folders of the C files the series touches outside tools/."""
    return sorted({str(Path(f).parent) for f in files if f.endswith(".c") and not f.startswith("tools/")})


def selftest_sources(files: list[str]) -> list[str]:
    return [f for f in files if f.endswith(".c") and f.startswith("tools/testing/selftests/")]


def documentation_dirs(files: list[str]) -> list[str]:
    """The folders under Documentation/ whose .rst files the series touches."""
    return sorted({f.split("/")[1] for f in files if f.startswith("Documentation/") and f.endswith(".rst")
                   and f.count("/") >= 2})


@dataclass(frozen=True)
class Touched:
    """What the series touches, and so what each state builds."""
    folders: list[str]  # kernel folders with C files
    sources: list[str]  # selftest C files
    doc_dirs: list[str]  # Documentation folders with .rst files


def nothing_to_build(target: Target, what: Touched) -> str:
    """Why this target has nothing to check in the series, or ""."""
    if target.docs:
        return "" if what.doc_dirs else "the series touches no .rst under Documentation/<folder>/"
    if target.selftests:
        return "" if what.sources else "the series touches no selftest C source"
    return "" if what.folders else "the series touches no kernel C file"


def build_state(target: Target, src: Path, out: Path, what: Touched) -> tuple[bool, Counter[str], str]:
    """The checked-out state built for one target: ok, its diagnostics, its output."""
    if target.docs:
        return build_docs(src, out, what.doc_dirs)
    try:
        configure(target, src, out)
    except ConfigureError as e:
        return False, Counter(), str(e)
    if target.selftests:
        return build_selftests(target, src, out, what.sources)
    return build(target, src, out, what.folders)


def worktree(tree: Path, work: Path) -> Path:
    """A detached worktree of TREE in WORK, made again when it belongs to
    another repository (TREE cloned anew) or is broken."""
    src = work / "linux"
    common = subprocess.run(["git", "-C", str(src), "rev-parse", "--path-format=absolute", "--git-common-dir"],
                            capture_output=True, text=True).stdout.strip()
    if common != git(tree, "rev-parse", "--path-format=absolute", "--git-common-dir").strip():
        shutil.rmtree(src, ignore_errors=True)
        git(tree, "worktree", "prune")
        git(tree, "worktree", "add", "-q", "-f", "--detach", str(src), "HEAD")
    return src


def checkout(src: Path, commit: str) -> str:
    """The commit checked out (forced: a run killed half-way leaves changes); "" or why not."""
    subprocess.run(["rm", "-f", f"{src}/.git/index.lock"], capture_output=True)
    proc = subprocess.run(["git", "-C", str(src), "checkout", "-q", "-f", "--detach", commit],
                          capture_output=True, text=True)
    return proc.stderr.strip() if proc.returncode else ""


def run(tree: Path, base: str, patch_paths: list[Path], work: Path, targets: list[Target],
        whole: bool) -> tuple[str, bool]:
    commits = series_commits(tree, base, patch_paths)
    names = [shown_name(p) for p in patch_paths]
    states = list(zip([base, *commits], ["base", *names], strict=True))
    if whole:
        states = [states[0], (commits[-1], f"{names[0]} .. {names[-1]} (the whole series)")]
    files = touched_files(tree, base)
    what = Touched(kernel_folders(files), selftest_sources(files), documentation_dirs(files))
    src = worktree(tree, work)
    lines: list[str] = []
    passed, count = True, 0
    for target in targets:
        missing = missing_tools(target)
        if missing:
            for _, name in states[1:]:
                count += 1
                lines.append(f"ok {count} {name}: {target.what} # SKIP {', '.join(missing)} not installed "
                             "(vm/setup.sh installs them)")
            continue
        why_not = nothing_to_build(target, what)
        if why_not:
            for _, name in states[1:]:
                count += 1
                lines.append(f"ok {count} {name}: {target.what} # SKIP {why_not}")
            continue
        out = work / (target.shares or target.name)
        # what the next state is judged against: the last state that built
        parent: Counter[str] | None = None
        parent_name = ""
        for index, (commit, name) in enumerate(states):
            trouble = checkout(src, commit)
            ok, found, output = (False, Counter[str](), f"git checkout {commit}: {trouble}") if trouble \
                else build_state(target, src, out, what)
            if index == 0:
                if not ok:
                    passed = False
                    count += 1
                    lines.append(f"not ok {count} {name}: {target.name} builds (the state the first patch is judged "
                                 "against)")
                    lines.extend(f"#   {line}" for line in output.strip().splitlines()[-25:])
            else:
                new = found - (parent or Counter())
                good = ok and not new
                passed &= good
                count += 1
                lines.append(f"{'ok' if good else 'not ok'} {count} {name}: {target.what}")
                if parent_name != states[index - 1][1]:
                    lines.append(f"# judged against {parent_name or 'nothing'}: the states after it did not build")
                lines.extend(f"# new: {key}" + (f" (x{n})" if n > 1 else "") for key, n in sorted(new.items()))
                if not ok:
                    lines.append("# the build failed:")
                    lines.extend(f"#   {line}" for line in output.strip().splitlines()[-25:])
            if ok:
                parent, parent_name = found, name
    checkout(src, commits[-1])
    tap = "\n".join(["TAP version 13", f"1..{count}", *lines]) + "\n"
    return tap, passed


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="harness seriesbuild", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("tree", type=Path)
    parser.add_argument("base")
    parser.add_argument("patches", type=Path, nargs="+")
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--targets", default=",".join(TARGETS),
                        help=f"comma-separated, of: {', '.join(TARGETS)} (default: all)")
    parser.add_argument("--whole", action="store_true",
                        help="only the series as a whole (the last patch against the base)")
    args = parser.parse_args(argv)
    unknown = [t for t in args.targets.split(",") if t not in TARGETS]
    if unknown:
        parser.error(f"unknown target {', '.join(unknown)}; known: {', '.join(TARGETS)}")
    tap, passed = run(args.tree.resolve(), args.base, args.patches, args.work.resolve(),
                      [TARGETS[t] for t in args.targets.split(",")], args.whole)
    sys.stdout.write(tap)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
