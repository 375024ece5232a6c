"""Privilege rules through the TX ring equal those of sendmsg(): a request
that needs CAP_NET_ADMIN is refused for an unprivileged sender (dropped
privileges, or a user namespace that does not own the network namespace)
with the same ack, a request anyone may make works, and a destination the
caller may not use fails the call before any frame is taken."""

from __future__ import annotations

import errno
import socket
from collections.abc import Callable

import pytest

from nlmmap.abi import NL_MMAP_STATUS_VALID, RingRequest
from nlmmap.messages import ack_error, address_request, noop_request
from nlmmap.netns import enter, ifindex, ip, ipv4_addresses, netlink_socket
from nlmmap.process import become_nobody, enter_user_namespace, in_child
from nlmmap.ring import split_messages
from nlmmap.tx import open_rings

TX = RingRequest(block_size=4096, block_nr=1, frame_size=1024, frame_nr=4)
RX = RingRequest(block_size=4096, block_nr=2, frame_size=2048, frame_nr=4)

DROPS: dict[str, Callable[[], None]] = {
    "nobody": become_nobody,
    "user-namespace": enter_user_namespace,
}


@pytest.mark.parametrize("drop", list(DROPS), ids=list(DROPS))
def test_privileged_request_is_refused_as_by_sendmsg(netns: str, drop: str) -> None:
    ip("link", "add", "perm0", "type", "dummy", netns=netns)
    index = ifindex(netns, "perm0")

    def body() -> None:
        enter(netns)
        DROPS[drop]()
        plain = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
        ringed = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
        plain.send(address_request(index, "10.7.0.1", seq=1))
        (plain_ack,) = split_messages(plain.recv(1 << 16))
        rings = open_rings(ringed, RX, TX)
        assert rings.tx is not None and rings.rx is not None
        rings.tx.put(address_request(index, "10.7.0.2", seq=1))
        rings.tx.put(noop_request(2))  # allowed to anyone
        assert rings.tx.send() > 0
        ring_acks = rings.rx.drain()
        assert ack_error(plain_ack) == (errno.EPERM, 1)
        assert [ack_error(m) for m in ring_acks] == [(errno.EPERM, 1), (0, 2)]

    assert in_child(body) == 0
    assert ipv4_addresses(netns, "perm0") == []


def test_multicast_destination_needs_privilege(netns: str) -> None:
    """NETLINK_ROUTE does not let unprivileged senders address a group: the
    call fails with EPERM, as sendmsg() does, and no frame is taken."""

    def body() -> None:
        sock = netlink_socket(netns, socket.NETLINK_ROUTE)
        become_nobody()
        rings = open_rings(sock, None, TX)
        assert rings.tx is not None
        rings.tx.put(noop_request(1))
        for payload in (noop_request(1), b""):
            with pytest.raises(PermissionError):
                sock.sendto(payload, (0, 1))
        assert rings.tx.frame(0).status == NL_MMAP_STATUS_VALID

    assert in_child(body) == 0
