"""The per-patch series checks fail on planted problems (vm/harness/seriescheck.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gittree import git_tree
from harness.seriescheck import Patch, check_kernel_doc, check_selftest_lists, check_signoff

ROOT = Path(__file__).resolve().parents[2]
KERNEL_DOC = ROOT / "build" / "linux" / "scripts" / "kernel-doc"
AUTHOR = "Ann Author <ann@example.org>"


def patch_text(signoffs: list[str], created: list[str]) -> str:
    diffs = "".join(f"diff --git a/{f} b/{f}\nnew file mode 100644\n--- /dev/null\n+++ b/{f}\n" for f in created)
    trailer = "".join(f"Signed-off-by: {s}\n" for s in signoffs)
    return (f"From 0000 Mon Sep 17 00:00:00 2001\nFrom: Ann Author\n <ann@example.org>\nSubject: [PATCH] x\n\n"
            f"Body.\n\n{trailer}---\n{diffs}")


def write_patch(tmp_path: Path, signoffs: list[str], created: list[str]) -> Patch:
    path = tmp_path / "0001-x.patch"
    path.write_text(patch_text(signoffs, created))
    return Patch.parse(path)


def test_the_authors_signoff_passes(tmp_path: Path) -> None:
    assert check_signoff(write_patch(tmp_path, [AUTHOR], [])).ok


@pytest.mark.parametrize("signoffs", [[], ["Someone Else <else@example.org>"]], ids=["none", "another person"])
def test_a_missing_signoff_fails(tmp_path: Path, signoffs: list[str]) -> None:
    result = check_signoff(write_patch(tmp_path, signoffs, []))
    assert not result.ok
    assert f"From: {AUTHOR}" in result.notes


SELFTESTS = "tools/testing/selftests/"
BASE_FILES = {
    SELFTESTS + "Makefile": "TARGETS += net\nTARGETS += net/alpha\nTARGETS += net/gamma\n",
    SELFTESTS + "net/alpha/Makefile": "TEST_GEN_PROGS := old\n",
    SELFTESTS + "net/alpha/.gitignore": "old\n",
    SELFTESTS + "net/alpha/config": "CONFIG_NET=y\n",
    SELFTESTS + "net/alpha/old.c": "int main(void) { return 0; }\n",
}


@pytest.mark.parametrize("makefile, gitignore, problem", [
    ("TEST_GEN_PROGS := old new\n", "old\nnew\n", None),
    ("TEST_GEN_PROGS := old\n", "old\nnew\n", "not in tools/testing/selftests/net/alpha/Makefile"),
    ("TEST_GEN_PROGS := old \\\n\tnew\n", "old\n", "new not in tools/testing/selftests/net/alpha/.gitignore"),
], ids=["listed", "not in the Makefile", "not in .gitignore"])
def test_a_new_selftest_must_be_listed(tmp_path: Path, makefile: str, gitignore: str, problem: str | None) -> None:
    new = SELFTESTS + "net/alpha/new.c"
    ids = git_tree(tmp_path / "tree", [BASE_FILES, {
        new: "int main(void) { return 0; }\n",
        SELFTESTS + "net/alpha/Makefile": makefile,
        SELFTESTS + "net/alpha/.gitignore": gitignore,
    }])
    result = check_selftest_lists(tmp_path / "tree", ids[1], write_patch(tmp_path, [AUTHOR], [new]))
    assert result.ok == (problem is None), result.notes
    if problem:
        assert any(problem in note for note in result.notes), result.notes


@pytest.mark.parametrize("targets, ok", [
    ("TARGETS += net\nTARGETS += net/alpha\nTARGETS += net/beta\nTARGETS += net/gamma\n", True),
    ("TARGETS += net\nTARGETS += net/alpha\nTARGETS += net/gamma\nTARGETS += net/beta\n", False),
    ("TARGETS += net/alpha\nTARGETS += net/gamma\n", False),
], ids=["sorted", "out of order", "missing"])
def test_a_new_selftest_folder_is_a_sorted_target(tmp_path: Path, targets: str, ok: bool) -> None:
    new = SELFTESTS + "net/beta/new.c"
    ids = git_tree(tmp_path / "tree", [BASE_FILES, {
        new: "int main(void) { return 0; }\n",
        SELFTESTS + "net/beta/Makefile": "TEST_GEN_PROGS := new\n",
        SELFTESTS + "net/beta/config": "CONFIG_NET=y\n",
        SELFTESTS + "Makefile": targets,
    }])
    result = check_selftest_lists(tmp_path / "tree", ids[1], write_patch(tmp_path, [AUTHOR], [new]))
    assert result.ok == ok, result.notes


DOCUMENTED = """/**
 * add - add two numbers
 * @a: one
 * @b: the other
 *
 * Return: the sum
 */
int add(int a, int b)
{
\treturn a + b;
}
"""


@pytest.mark.skipif(not KERNEL_DOC.exists(), reason=f"no kernel tree with scripts/kernel-doc at {KERNEL_DOC} "
                    "(make tree makes it)")
@pytest.mark.parametrize("after, ok", [
    (DOCUMENTED.replace("add two numbers", "add two integers"), True),
    (DOCUMENTED.replace(" * @b: the other\n", ""), False),
], ids=["still documented", "parameter not described"])
def test_a_new_kernel_doc_warning_fails(tmp_path: Path, after: str, ok: bool) -> None:
    tree = tmp_path / "tree"
    ids = git_tree(tree, [{"net/x.c": DOCUMENTED}, {"net/x.c": after}])
    (tree / "scripts").symlink_to(KERNEL_DOC.parent)
    patch = write_patch(tmp_path, [AUTHOR], [])
    patch.files = ["net/x.c"]
    result = check_kernel_doc(tree, ids[1], ids[0], patch)
    assert result.ok == ok, result.notes
    if not ok:
        assert any("'b'" in note or " b " in note for note in result.notes), result.notes
