"""What recvmsg() gives beyond the bytes, for a ring reader.

A NETLINK_LISTEN_ALL_NSID reader learns the nsid of a message from another
network namespace as a control message, which a frame cannot carry: such
messages arrive as COPY, and recvmsg() gives the same bytes and the same
nsid as to a plain reader.  A NETLINK_PKTINFO reader's group is the frame's
nm_group.  Each is checked against a plain socket with the same options,
reading the same events."""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import Callable, Iterator

import pytest

from nlmmap.abi import NL_MMAP_STATUS_COPY, NL_MMAP_STATUS_VALID, SOL_NETLINK, ring_request
from nlmmap.netns import ip, netlink_socket, scratch_netns
from nlmmap.ring import RECV_BUFFER, RxRing, split_messages

NETLINK_PKTINFO = 3
NETLINK_LISTEN_ALL_NSID = 8
RTNLGRP_LINK = 1
NSID = 42
RING = ring_request(4096, 16)
Reading = tuple[list[bytes], list[int | None]]  # messages, the nsid or group of each datagram


@pytest.fixture
def peer_netns(netns: str) -> Iterator[str]:
    """A second netns that the test's netns knows as NSID."""
    with scratch_netns(f"nlmmap-peer-{os.getpid()}") as peer:
        ip("netns", "set", peer, str(NSID), netns=netns)
        yield peer


def _listener(netns: str, option: int) -> socket.socket:
    sock = netlink_socket(netns, socket.NETLINK_ROUTE, groups=1 << (RTNLGRP_LINK - 1))
    sock.setsockopt(SOL_NETLINK, option, 1)
    return sock


def _cmsg_int(ancdata: list[tuple[int, int, bytes]], option: int) -> int | None:
    for level, kind, data in ancdata:
        if level == SOL_NETLINK and kind == option:
            return int(struct.unpack_from("=i" if option == NETLINK_LISTEN_ALL_NSID else "=I", data)[0])
    return None


def _plain(sock: socket.socket, option: int, idle: float = 0.5) -> Reading:
    sock.settimeout(idle)
    messages: list[bytes] = []
    values: list[int | None] = []
    while True:
        try:
            data, ancdata, _, _ = sock.recvmsg(RECV_BUFFER, 64)
        except TimeoutError:
            return messages, values
        messages.extend(split_messages(data))
        values.append(_cmsg_int(ancdata, option))


def _ring(ring: RxRing, option: int, idle: float = 0.5) -> tuple[Reading, list[int]]:
    """The same from a ring: COPY messages by recvmsg() with their control
    message, frames with nm_group for NETLINK_PKTINFO; and the statuses."""
    messages: list[bytes] = []
    values: list[int | None] = []
    statuses: list[int] = []
    while True:
        while (frame := ring.next_frame()) is not None:
            statuses.append(frame.status)
            if frame.status == NL_MMAP_STATUS_COPY:
                data, ancdata, _, _ = ring.sock.recvmsg(RECV_BUFFER, 64, socket.MSG_DONTWAIT)
                values.append(_cmsg_int(ancdata, option))
            else:
                data = ring.payload(frame)
                values.append(frame.group if option == NETLINK_PKTINFO else None)
            messages.extend(split_messages(data))
            ring.release(frame)
        ring.kick()  # what waits for the released frames (poll() moves nothing)
        if ring.next_frame() is None and not ring.wait(idle):
            return (messages, values), statuses


def test_other_netns_messages_come_by_copy_with_their_nsid(netns: str, peer_netns: str,
                                                          make_rx_ring: Callable[..., RxRing]) -> None:
    plain = _listener(netns, NETLINK_LISTEN_ALL_NSID)
    ringed = _listener(netns, NETLINK_LISTEN_ALL_NSID)
    ring = make_rx_ring(ringed, RING)

    ip("link", "add", "here0", "type", "dummy", netns=netns)
    ip("link", "add", "there0", "type", "dummy", netns=peer_netns)

    want = _plain(plain, NETLINK_LISTEN_ALL_NSID)
    got, statuses = _ring(ring, NETLINK_LISTEN_ALL_NSID)
    assert NSID in want[1] and None in want[1], f"the plain reader saw nsids {want[1]}"
    assert got == want
    # own netns: frames; the peer's: COPY, so that the nsid arrives
    assert [s == NL_MMAP_STATUS_COPY for s in statuses] == [v == NSID for v in want[1]]
    plain.close()
    ringed.close()


def test_pktinfo_group_is_nm_group(netns: str, make_rx_ring: Callable[..., RxRing]) -> None:
    plain = _listener(netns, NETLINK_PKTINFO)
    ringed = _listener(netns, NETLINK_PKTINFO)
    ring = make_rx_ring(ringed, RING)

    ip("link", "add", "here0", "type", "dummy", netns=netns)

    want = _plain(plain, NETLINK_PKTINFO)
    got, statuses = _ring(ring, NETLINK_PKTINFO)
    assert want[1] and set(want[1]) == {RTNLGRP_LINK}
    assert got == want
    assert set(statuses) == {NL_MMAP_STATUS_VALID}
    plain.close()
    ringed.close()
