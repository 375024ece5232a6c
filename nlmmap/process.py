"""Forked children for tests that need another process or another user."""

from __future__ import annotations

import ctypes
import os
import traceback
from collections.abc import Callable

NOBODY = 65534
CLONE_NEWUSER = 0x10000000
_libc = ctypes.CDLL(None, use_errno=True)


def fork_child(body: Callable[[], None]) -> int:
    """Run body in a forked child, which exits 0 if it returned and 1 if it
    raised (traceback on stderr).  Returns the child's pid."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            body()
            code = 0
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(code)
    return pid


def wait_child(pid: int) -> int:
    """The exit code of a child from fork_child()."""
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def in_child(body: Callable[[], None]) -> int:
    """Run body in a forked child and wait: 0 if it returned, 1 if it raised."""
    return wait_child(fork_child(body))


def become_nobody() -> None:
    """Drop every privilege: uid and gid nobody, no supplementary groups."""
    os.setgroups([])
    os.setresgid(NOBODY, NOBODY, NOBODY)
    os.setresuid(NOBODY, NOBODY, NOBODY)


def enter_user_namespace() -> None:
    """unshare(CLONE_NEWUSER): every capability, but only over the new user
    namespace, not over the namespaces that already exist."""
    if _libc.unshare(CLONE_NEWUSER):
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
