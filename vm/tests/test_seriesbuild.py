"""The per-patch build check fails on planted W=1 and sparse warnings and on
a patch that does not build, and passes a warning its parent already had
(vm/harness/seriesbuild.py).  The tree is a stand-in with a kernel-like
Makefile (defconfig, O=, W=1, C=1, folder targets) around real gcc and sparse."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import pytest

from gittree import git_tree
from harness.seriesbuild import SPHINX_BIN, TARGETS, Target, diagnostics, run

MAKEFILE = """\
O ?= .
defconfig:
\t@echo CONFIG_BASE=y > $(O)/.config
olddefconfig:
\t@true
headers:
\t@mkdir -p $(O)/usr/include
htmldocs:
\t@sphinx-build -q -b html -C -d $(O)/Documentation/output/.doctrees Documentation/$(SPHINXDIRS) \\
\t\t$(O)/Documentation/output
FORCE:
%/: FORCE
\t@mkdir -p $(O)/$*
\t@for f in $(wildcard $*/*.c); do \\
\t\t$(CC) -c -Wall $(if $(W),-Wmissing-prototypes) $$f -o $(O)/$${f%.c}.o || exit 1; \\
\t\t$(if $(C),sparse $$f || exit 1;) \\
\tdone
"""
CLEAN = "static int f(void) { return 0; }\nint g(void);\nint g(void) { return f(); }\n"
OLD_WARNING = "static int unused;\n"  # -Wall: defined but not used, in the base already
W1_WARNING = "int h(void) { return 1; }\n"  # W=1: no previous prototype
SPARSE_WARNING = "static int *p = 0;\nint *q(void);\nint *q(void) { return p; }\n"  # plain integer as NULL
BROKEN = "int g(void) { return }\n"

GCC = Target("gcc-sparse", "x86_64", "gcc", ("CONFIG_BASE=y",), sparse=True)
needs_tools = pytest.mark.skipif(shutil.which("sparse") is None or shutil.which("ccache") is None,
                                 reason="sparse and ccache are needed (vm/apt-packages.txt; vm/setup.sh installs them)")


def series(tmp_path: Path, *patches: str) -> tuple[Path, str, list[Path]]:
    """A base with a clean file and an old warning, then one commit per text
    added to net/x.c (after a line that moves the rest down)."""
    ids = git_tree(tmp_path / "tree", [{"Makefile": MAKEFILE, "net/x.c": CLEAN, "net/old.c": OLD_WARNING},
                                       *({"net/x.c": f"/* {n} */\n{CLEAN}{text}"} for n, text in enumerate(patches))])
    names = [tmp_path / f"{n + 1:04d}-p.patch" for n in range(len(patches))]
    return tmp_path / "tree", ids[0], names


def check(tmp_path: Path, *patches: str, whole: bool = False) -> list[str]:
    tree, base, names = series(tmp_path, *patches)
    tap, _ = run(tree, base, names, tmp_path / "work", [GCC], whole)
    return tap.splitlines()


@needs_tools
def test_a_clean_series_passes_and_an_old_warning_is_not_new(tmp_path: Path) -> None:
    lines = check(tmp_path, "", "\n\n")  # the second moves only line numbers
    assert lines[1:] == ["1..2", "ok 1 0001-p.patch: gcc-sparse (NETLINK_MMAP=n) W=1 C=1: no new warnings",
                         "ok 2 0002-p.patch: gcc-sparse (NETLINK_MMAP=n) W=1 C=1: no new warnings"]


@needs_tools
@pytest.mark.parametrize(("text", "quoted"), [(W1_WARNING, "no previous prototype for 'h'"),
                                              (SPARSE_WARNING, "Using plain integer as NULL pointer")],
                         ids=["W=1", "sparse"])
def test_a_new_warning_fails_the_patch_that_adds_it(tmp_path: Path, text: str, quoted: str) -> None:
    lines = check(tmp_path, "", text, text)
    assert lines[2].startswith("ok 1 0001-p.patch")
    assert lines[3].startswith("not ok 2 0002-p.patch")
    assert any(line.startswith("# new: net/x.c: warning: ") and quoted in line for line in lines), lines
    assert lines[-1].startswith("ok 3 0003-p.patch"), "the warning is not new in the third patch"


@needs_tools
def test_the_whole_series_fails_on_a_warning_any_patch_adds(tmp_path: Path) -> None:
    lines = check(tmp_path, "", W1_WARNING, whole=True)  # texts replace each other: the last one counts
    assert lines[1:3] == ["1..1", "not ok 1 0001-p.patch .. 0002-p.patch (the whole series): "
                                  "gcc-sparse (NETLINK_MMAP=n) W=1 C=1: no new warnings"]
    assert any("no previous prototype for 'h'" in line for line in lines), lines


@needs_tools
def test_a_patch_that_does_not_build_fails(tmp_path: Path) -> None:
    lines = check(tmp_path, BROKEN)
    assert lines[2] == "not ok 1 0001-p.patch: gcc-sparse (NETLINK_MMAP=n) W=1 C=1: no new warnings"
    assert "# the build failed:" in lines


SELFTEST = "tools/testing/selftests/x/t.c"
SIZE_T_AS_LONG = '#include <stdio.h>\nvoid t(void) { printf("%lu", sizeof(int)); }\n'  # fine only on 64-bit


@needs_tools
def test_a_selftest_warning_on_32_bit_only_fails_the_32_bit_build(tmp_path: Path) -> None:
    ids = git_tree(tmp_path / "tree", [{"Makefile": MAKEFILE, SELFTEST: "void t(void) {}\n"},
                                       {SELFTEST: SIZE_T_AS_LONG}])
    targets = [Target(f"st{bits}", "x86_64", "gcc", ("CONFIG_BASE=y",), selftests=f"-m{bits}") for bits in (64, 32)]
    tap, passed = run(tmp_path / "tree", ids[0], [tmp_path / "0001-p.patch"], tmp_path / "work", targets, False)
    lines = tap.splitlines()
    assert not passed
    assert lines[2] == "ok 1 0001-p.patch: st64: the selftest sources compile (-m64 -Wall): no new warnings"
    assert lines[3] == "not ok 2 0001-p.patch: st32: the selftest sources compile (-m32 -Wall): no new warnings"
    assert lines[4].startswith(f"# new: {SELFTEST}: warning: format '%lu' expects argument of type 'long unsigned int'")


INDEX = "Title\n=====\n\n.. toctree::\n\n   new\n"


@pytest.mark.skipif(not (SPHINX_BIN / "sphinx-build").exists(),
                    reason="no sphinx-build in the venv (vm/requirements.txt)")
def test_an_rst_warning_fails_the_docs_build_of_the_patch_that_adds_it(tmp_path: Path) -> None:
    ids = git_tree(tmp_path / "tree", [{"Makefile": MAKEFILE, "Documentation/x/index.rst": "Title\n=====\n"},
                                       {"Documentation/x/index.rst": INDEX, "Documentation/x/new.rst": "New\n===\n"},
                                       {"Documentation/x/new.rst": "New\n===\n\nSection\n-----\n"}])
    docs = TARGETS["htmldocs"]
    names = [tmp_path / "0001-p.patch", tmp_path / "0002-p.patch"]
    tap, passed = run(tmp_path / "tree", ids[0], names, tmp_path / "work", [docs], False)
    lines = tap.splitlines()
    assert not passed
    assert lines[2] == "ok 1 0001-p.patch: htmldocs: Sphinx builds the touched Documentation folders: no new warnings"
    assert lines[3].startswith("not ok 2 0002-p.patch")
    assert lines[4] == "# new: Documentation/x/new.rst: WARNING: Title underline too short.", lines


@pytest.mark.skipif(not (SPHINX_BIN / "sphinx-build").exists(),
                    reason="no sphinx-build in the venv (vm/requirements.txt)")
def test_an_old_rst_warning_stays_old_when_a_patch_touches_its_file(tmp_path: Path) -> None:
    old = "Old\n===\n\nSection\n-----\n"  # warns at the base already
    ids = git_tree(tmp_path / "tree", [{"Makefile": MAKEFILE, "Documentation/x/index.rst": INDEX,
                                        "Documentation/x/new.rst": old},
                                       {"Documentation/x/other.rst": ":orphan:\n\nOther\n=====\n"},
                                       {"Documentation/x/new.rst": old + "\nMore text.\n"}])
    names = [tmp_path / "0001-p.patch", tmp_path / "0002-p.patch"]
    tap, passed = run(tmp_path / "tree", ids[0], names, tmp_path / "work", [TARGETS["htmldocs"]], False)
    assert passed, tap


def test_a_target_without_its_compiler_is_skipped_with_the_reason(tmp_path: Path) -> None:
    absent = Target("absent", "x86_64", "no-such-compiler-gcc", ("CONFIG_BASE=y",))
    tree, base, names = series(tmp_path, "")
    tap, passed = run(tree, base, names, tmp_path / "work", [absent], False)
    assert passed
    assert tap.splitlines()[2].endswith("# SKIP no-such-compiler-gcc not installed (vm/setup.sh installs them)")


def test_every_target_sets_netlink_mmap_and_the_quick_ones_run_sparse() -> None:
    for target in TARGETS.values():
        assert any("NETLINK_MMAP" in line for line in target.config), target.name
    assert TARGETS["x86_64"].sparse and TARGETS["x86_64-nommap"].sparse
    assert "CONFIG_ARM64_64K_PAGES=y" in TARGETS["arm64-64k"].config


@pytest.mark.parametrize(("line", "key"), [
    ("../linux/net/x.c:3:5: warning: unused variable 'a' [-Wunused-variable]",
     "net/x.c: warning: unused variable 'a' [-Wunused-variable]"),
    ("Warning: {src}/net/x.c:4 function parameter 'b' not described in 'foo'",
     "Warning: net/x.c function parameter 'b' not described in 'foo'"),
    ("net/netlink/ring.o: warning: objtool: f+0x12: call without frame pointer",
     "net/netlink/ring.o: warning: objtool: f+0x12: call without frame pointer"),
    ("ld.lld-19: warning: section type mismatch", "ld.lld-19: warning: section type mismatch"),
    ("{src}/Documentation/x/o.rst: WARNING: document isn't included in any toctree",
     "Documentation/x/o.rst: WARNING: document isn't included in any toctree"),
    ("net/x.c:9:1: fatal error: y.h: No such file or directory",
     "net/x.c: fatal error: y.h: No such file or directory"),
], ids=["gcc via ccache", "kernel-doc", "objtool", "linker", "sphinx without a line", "fatal"])
def test_every_tools_diagnostic_is_counted_without_places(tmp_path: Path, line: str, key: str) -> None:
    src, out = tmp_path / "work" / "linux", tmp_path / "work" / "x86_64"
    assert diagnostics(line.format(src=src), src, out) == Counter({key: 1})


def test_makes_own_error_lines_and_notes_are_not_diagnostics(tmp_path: Path) -> None:
    output = "make[2]: *** [scripts/Makefile.build:203: net/x.o] Error 1\nnet/x.c:3:1: note: declared here\n"
    assert diagnostics(output, tmp_path, tmp_path) == Counter()


@needs_tools
def test_a_patch_after_one_that_does_not_build_is_judged_against_the_last_that_did(tmp_path: Path) -> None:
    lines = check(tmp_path, BROKEN, "")
    assert lines[2].startswith("not ok 1 0001-p.patch")
    assert "ok 2 0002-p.patch: gcc-sparse (NETLINK_MMAP=n) W=1 C=1: no new warnings" in lines, lines
    assert "# judged against base: the states after it did not build" in lines


def test_a_series_without_kernel_c_files_skips_the_kernel_build(tmp_path: Path) -> None:
    ids = git_tree(tmp_path / "tree", [{"Makefile": MAKEFILE, "net/x.c": CLEAN}, {"README": "text\n"}])
    tap, passed = run(tmp_path / "tree", ids[0], [tmp_path / "0001-p.patch"], tmp_path / "work", [GCC], False)
    assert passed
    assert tap.splitlines()[2].endswith("# SKIP the series touches no kernel C file")
