"""Fixtures shared by the in-guest suites.  They run as root inside the VM."""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(scope="session", autouse=True)
def _in_guest() -> None:
    if os.environ.get("NLMMAP_EXPECT_RELEASE") is None:
        pytest.exit("these tests run inside the test VM: use `make check` (vm/run.sh guest)", returncode=2)
    if os.geteuid() != 0:
        pytest.exit("the in-guest suites need root", returncode=2)


@pytest.fixture
def rtnl_socket() -> Iterator[socket.socket]:
    """A plain NETLINK_ROUTE socket, closed after the test."""
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
    try:
        yield sock
    finally:
        sock.close()
