"""Fixtures shared by the in-guest suites.  They run as root inside the VM."""

from __future__ import annotations

import itertools
import os
import socket
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from nlmmap.abi import RingRequest
    from nlmmap.ring import RxRing
    from nlmmap.tx import Rings


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


@pytest.fixture
def netns() -> Iterator[str]:
    """A fresh, empty network namespace (lo up), deleted after the test."""
    from nlmmap.netns import scratch_netns

    with scratch_netns(f"nlmmap-{os.getpid()}-{next(_netns_ids)}") as name:
        yield name


_netns_ids = itertools.count()


@pytest.fixture
def make_rx_ring() -> Iterator[Callable[..., RxRing]]:
    """Factory: an RX ring on a socket, mapped; unmapped after the test."""
    from nlmmap.ring import RxRing

    rings: list[RxRing] = []

    def make(sock: socket.socket, req: RingRequest) -> RxRing:
        ring = RxRing(sock, req)
        rings.append(ring)
        return ring

    yield make
    for ring in rings:
        ring.close()


@pytest.fixture
def make_rings() -> Iterator[Callable[..., Rings]]:
    """Factory: RX and/or TX rings on a socket in one mapping; unmapped after the test."""
    from nlmmap.tx import open_rings

    opened: list[Rings] = []

    def make(sock: socket.socket, rx: RingRequest | None = None, tx: RingRequest | None = None) -> Rings:
        rings = open_rings(sock, rx, tx)
        opened.append(rings)
        return rings

    yield make
    for rings in opened:
        rings.close()


@pytest.fixture
def usersock_pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    """(receiver, sender): two bound NETLINK_USERSOCK sockets."""
    from nlmmap.messages import NETLINK_USERSOCK
    from nlmmap.netns import netlink_socket

    receiver = netlink_socket(None, NETLINK_USERSOCK)
    sender = netlink_socket(None, NETLINK_USERSOCK)
    try:
        yield receiver, sender
    finally:
        sender.close()
        receiver.close()
