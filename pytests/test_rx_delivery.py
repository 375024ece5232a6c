"""Delivery into the RX ring: rtnetlink dumps through the ring equal the same
dumps through recvmsg(), end in NLMSG_DONE, complete through a tiny ring, fill
frames beyond the default dump skb size, and the counters show the ring was
used; frame headers carry group and credentials."""

from __future__ import annotations

import select
import socket
import threading
from collections.abc import Callable

import pytest

from nlmmap.abi import NL_MMAP_HDRLEN, NL_MMAP_STATUS_VALID, ring_request, ring_stats
from nlmmap.messages import (
    RTM_GETADDR,
    RTM_GETLINK,
    RTM_GETROUTE,
    dump_request,
    message_seq,
    rtnl_key,
    send_user,
    user_message,
)
from nlmmap.netns import add_dummies, ip_batch, netlink_socket
from nlmmap.process import NOBODY, become_nobody, fork_child, wait_child
from nlmmap.ring import NLMSG_DONE, RxRing, message_type, recv_until_done, split_messages

LINKS = 40
ROUTES_PER_LINK = 5
RING = ring_request(4096, 64)
# two frames for hundreds of routes (larger frames on pages over 4 KiB)
TINY = ring_request(2048, 2, per_block=2)
# laps of the tiny ring's frames the route dump takes at least
LAPS = 4
# frames larger than the skbs a dump makes before it learns of the ring
LARGE = ring_request(16384, 16)
CREDENTIALS = ring_request(1024, 4)
# two frames, one per block
POLLED = ring_request(4096, 2, per_block=1)
# an IPv4 route to a /32 through a device: the smallest message a route dump has
ROUTE_MESSAGE = 52


@pytest.fixture
def filled_netns(netns: str) -> str:
    add_dummies(netns, LINKS, ROUTES_PER_LINK)
    return netns


def _frames_at_least(messages: list[bytes], room: int) -> int:
    """The fewest frames of room bytes these messages fit in, in order and
    whole (padded to 4 bytes but the last of a frame): a ring takes as many
    or more."""
    frames, used = 0, room
    for message in messages:
        if used + len(message) > room:
            frames, used = frames + 1, 0
        used += (len(message) + 3) & ~3
    return frames


def _route_dump(netns: str) -> list[bytes]:
    sock = netlink_socket(netns)
    try:
        sock.send(dump_request(RTM_GETROUTE))
        return recv_until_done(sock)
    finally:
        sock.close()


@pytest.fixture
def long_route_dump(filled_netns: str) -> str:
    """filled_netns with routes enough that a route dump takes more than LAPS
    laps of TINY's frames: the fixture's on 4 KiB pages, more for the larger
    frames of larger pages."""
    room = TINY.frame_size - NL_MMAP_HDRLEN
    added = 0
    while (short := LAPS * TINY.frame_nr + 1 - _frames_at_least(_route_dump(filled_netns), room)) > 0:
        count = short * room // ROUTE_MESSAGE + LINKS
        ip_batch(filled_netns, [f"route add 198.18.{n // 250}.{n % 250}/32 dev d{n % LINKS}"
                                for n in range(added, added + count)])
        added += count
    return filled_netns


@pytest.mark.parametrize("rtm_type", [RTM_GETLINK, RTM_GETADDR, RTM_GETROUTE], ids=["links", "addresses", "routes"])
def test_dump_through_ring_equals_recvmsg(filled_netns: str, make_rx_ring: Callable[..., RxRing],
                                         rtm_type: int) -> None:
    plain = netlink_socket(filled_netns)
    plain.send(dump_request(rtm_type))
    expected = recv_until_done(plain)
    plain.close()

    sock = netlink_socket(filled_netns)
    ring = make_rx_ring(sock, RING)
    sock.send(dump_request(rtm_type))
    got = ring.collect_until_done()

    assert message_type(got[-1]) == NLMSG_DONE
    assert [rtnl_key(m) for m in got] == [rtnl_key(m) for m in expected]
    assert len(got) > LINKS  # a real dump, not an empty one
    stats = ring_stats(sock)
    assert stats.rx_frames > 0
    assert stats.rx_drops == 0
    sock.close()


def test_dump_completes_through_a_tiny_ring(long_route_dump: str, make_rx_ring: Callable[..., RxRing]) -> None:
    """Two frames for hundreds of routes: the dump advances as frames are
    released (poll() continues it) and ends in NLMSG_DONE."""
    sock = netlink_socket(long_route_dump)
    ring = make_rx_ring(sock, TINY)
    sock.send(dump_request(RTM_GETROUTE))
    got = ring.collect_until_done()
    assert message_type(got[-1]) == NLMSG_DONE
    assert len(got) > LINKS * ROUTES_PER_LINK
    stats = ring_stats(sock)
    assert stats.rx_copies == 0
    # every byte went through frames, each reused many times
    assert stats.rx_frames * (TINY.frame_size - NL_MMAP_HDRLEN) >= sum(len(m) for m in got)
    assert stats.rx_frames > LAPS * TINY.frame_nr


def test_dump_skbs_grow_to_the_frame_size(filled_netns: str, make_rx_ring: Callable[..., RxRing]) -> None:
    """A ring reader never calls recvmsg(), where a dump learns how large
    its skbs may be; setting up the ring says it instead.  One dump skb
    fills one frame, so frames hold more than the default dump skb
    (NLMSG_GOODSIZE, under 4 KiB with 4 KiB pages, under 8 KiB with larger
    ones) would."""
    sock = netlink_socket(filled_netns)
    ring = make_rx_ring(sock, LARGE)
    sock.send(dump_request(RTM_GETLINK))
    lengths: list[int] = []
    messages: list[bytes] = []
    while not messages or message_type(messages[-1]) != NLMSG_DONE:
        assert ring.wait(), f"dump stalled after {len(messages)} messages"
        while (got := ring.read()) is not None:
            lengths.append(len(got[1]))
            messages.extend(split_messages(got[1]))
    assert len(messages) > LINKS
    assert max(lengths) > 8192, f"frame lengths {lengths}"


def test_frame_header_carries_sender_credentials(usersock_pair: tuple[socket.socket, socket.socket],
                                                 make_rx_ring: Callable[..., RxRing]) -> None:
    receiver, sender = usersock_pair
    ring = make_rx_ring(receiver, CREDENTIALS)

    def send_as_nobody() -> None:
        become_nobody()
        send_user(sender, receiver, user_message(64, 5))

    pid = fork_child(send_as_nobody)
    assert wait_child(pid) == 0
    frame = ring.next_frame()
    assert frame is not None and frame.status == NL_MMAP_STATUS_VALID
    assert (frame.uid, frame.gid) == (NOBODY, NOBODY)
    assert frame.pid == pid
    assert frame.group == 0
    assert message_seq(ring.payload(frame)) == 5


def test_a_concurrent_poller_leaves_no_error(filled_netns: str, make_rx_ring: Callable[..., RxRing]) -> None:
    """A second thread that only polls while the reader reads twenty dumps
    from its ring: poll() moves nothing (the reader's zero-length reads
    move each dump on), every dump is complete and SO_ERROR stays 0."""
    sock = netlink_socket(filled_netns)
    ring = make_rx_ring(sock, POLLED)
    stop = threading.Event()

    def poll_forever() -> None:
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        while not stop.is_set():
            poller.poll(0)

    thread = threading.Thread(target=poll_forever)
    thread.start()
    try:
        for seq in range(20):
            sock.send(dump_request(RTM_GETROUTE, seq=seq + 1))
            got = ring.collect_until_done()
            assert message_type(got[-1]) == NLMSG_DONE, f"dump {seq} ended in {message_type(got[-1])}"
            assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0, f"after dump {seq}"
    finally:
        stop.set()
        thread.join()
    sock.close()
