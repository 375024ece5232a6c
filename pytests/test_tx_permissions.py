"""Privilege rules through the TX ring equal those of sendmsg(): a request
that needs CAP_NET_ADMIN is refused for an unprivileged sender (dropped
privileges, or a user namespace that does not own the network namespace)
with the same ack, a request anyone may make works, and a destination the
caller may not use fails the call before any frame is taken.  Frames go
with the rights of the task that sends them, so no other address space (a
forked child that dropped privileges) can write frames its parent sends."""

from __future__ import annotations

import errno
import json
import os
import socket
from collections.abc import Callable

import pytest

from nlmmap.abi import NETLINK_TX_RING, NL_MMAP_STATUS_VALID, ring_request, set_ring
from nlmmap.frames import is_mapped_here, map_socket
from nlmmap.messages import ack_error, address_request, noop_request
from nlmmap.netns import enter, ifindex, ip, ipv4_addresses, netlink_socket
from nlmmap.process import become_nobody, enter_user_namespace, fork_child, in_child, wait_child
from nlmmap.ring import split_messages
from nlmmap.tx import TxRing, open_rings

TX = ring_request(1024, 4)
RX = ring_request(2048, 4)

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


def test_a_child_that_dropped_privileges_cannot_make_its_parent_send(netns: str) -> None:
    """A root process maps a TX ring and forks a child that becomes nobody.  The
    child tries every way to put an address request into the parent's frames: the
    mapping it may have inherited, a mapping of its own, and a send of its own.  The
    oracle is the address list after the parent's next send: a frame the child
    wrote would add its address with root's rights.  The parent's own request
    afterwards does add one, so the check is not vacuous."""
    ip("link", "add", "fork0", "type", "dummy", netns=netns)
    index = ifindex(netns, "fork0")
    sock = netlink_socket(netns, socket.NETLINK_ROUTE)
    rings = open_rings(sock, None, TX)
    assert rings.tx is not None
    read_fd, write_fd = os.pipe()

    def attacker() -> None:
        assert rings.tx is not None
        tried: dict[str, bool | int | None] = {"inherited": is_mapped_here(rings.map)}
        become_nobody()
        try:  # nothing is VALID yet: 0 on a ring this task may send from
            tried["send"] = rings.tx.send()
        except OSError as err:
            tried["send"] = err.errno
        if is_mapped_here(rings.map):
            rings.tx.put(address_request(index, "10.7.0.3", seq=1))
        try:
            own = map_socket(sock, len(rings.map))
            TxRing(sock, TX, mapping=own, base=0).put(address_request(index, "10.7.0.5", seq=2))
            tried["map"] = 0
        except OSError as err:
            tried["map"] = err.errno
        os.write(write_fd, json.dumps(tried).encode())

    child = fork_child(attacker)
    os.close(write_fd)
    assert wait_child(child) == 0
    with os.fdopen(read_fd, "rb") as pipe:
        tried = json.loads(pipe.read())
    assert rings.tx.send() == 0  # root's send finds no frame the child wrote
    assert ipv4_addresses(netns, "fork0") == []
    assert tried == {"inherited": False, "send": errno.EPERM, "map": errno.EPERM}

    rings.tx.put(address_request(index, "10.7.0.4", seq=3))
    assert rings.tx.send() > 0
    assert ipv4_addresses(netns, "fork0") == ["10.7.0.4/32"]
    rings.close()
    sock.close()


def test_a_new_owner_does_not_send_what_the_old_one_left(netns: str) -> None:
    """A child that became nobody maps a root socket's TX ring first (so it
    owns it), leaves an address request VALID in a frame and exits.  Root
    cannot map that ring (the child could have kept its pages pinned); it
    sets up a new one, whose frames are fresh, so its send finds nothing and
    the address list (the oracle) stays empty; root's own request works."""
    ip("link", "add", "adopt0", "type", "dummy", netns=netns)
    index = ifindex(netns, "adopt0")
    sock = netlink_socket(netns, socket.NETLINK_ROUTE)
    set_ring(sock, NETLINK_TX_RING, TX)

    def owner() -> None:
        become_nobody()
        TxRing(sock, TX).put(address_request(index, "10.7.0.6", seq=1))

    assert in_child(owner) == 0
    with pytest.raises(PermissionError):
        map_socket(sock, TX.size)
    set_ring(sock, NETLINK_TX_RING, TX)
    tx = TxRing(sock, TX)
    assert tx.frame(0).status == 0 and tx.frame(0).length == 0, "the old owner's frame is still there"
    assert tx.send() == 0
    assert ipv4_addresses(netns, "adopt0") == []
    tx.put(address_request(index, "10.7.0.7", seq=2))
    assert tx.send() > 0
    assert ipv4_addresses(netns, "adopt0") == ["10.7.0.7/32"]
    tx.close()
    sock.close()
