"""Messages larger than a frame arrive by COPY plus recvmsg(), in their place
in the order; a message that exactly fills a frame stays in the frame."""

from __future__ import annotations

import socket
from collections.abc import Callable

from nlmmap.abi import NL_MMAP_HDRLEN, NL_MMAP_STATUS_COPY, NL_MMAP_STATUS_VALID, ring_request, ring_stats
from nlmmap.messages import has_queued, message_seq, send_user, user_message
from nlmmap.model import COPY_MAX
from nlmmap.nfqueue import SO_RCVBUFFORCE
from nlmmap.ring import RxRing

FRAME = 1024
ROOM = FRAME - NL_MMAP_HDRLEN
RING = ring_request(FRAME, 16)
# four frames larger than COPY_MAX: every message has one, nothing waits for a drain
BIG = ring_request(256 << 10, 4)


def _read_all(ring: RxRing) -> list[tuple[int, int, int]]:
    """(status, seq, length) of every frame waiting now."""
    out = []
    while (got := ring.read()) is not None:
        frame, data = got
        out.append((frame.status, message_seq(data), len(data)))
    return out


def test_frame_size_boundary(usersock_pair: tuple[socket.socket, socket.socket],
                             make_rx_ring: Callable[..., RxRing]) -> None:
    receiver, sender = usersock_pair
    ring = make_rx_ring(receiver, RING)
    for seq, size in enumerate([64, ROOM, ROOM + 1, 64]):
        send_user(sender, receiver, user_message(size, seq))
    assert _read_all(ring) == [
        (NL_MMAP_STATUS_VALID, 0, 64),
        (NL_MMAP_STATUS_VALID, 1, ROOM),  # fits exactly
        (NL_MMAP_STATUS_COPY, 2, ROOM + 1),  # one byte over: recvmsg()
        (NL_MMAP_STATUS_VALID, 3, 64),
    ]
    stats = ring_stats(receiver)
    assert (stats.rx_frames, stats.rx_copies) == (3, 1)


def test_copies_keep_their_place_in_the_order(usersock_pair: tuple[socket.socket, socket.socket],
                                               make_rx_ring: Callable[..., RxRing]) -> None:
    receiver, sender = usersock_pair
    ring = make_rx_ring(receiver, RING)
    sizes = [64 if seq % 3 else 3000 + seq for seq in range(15)]
    for seq, size in enumerate(sizes):
        send_user(sender, receiver, user_message(size, seq))
    got = _read_all(ring)
    assert [seq for _, seq, _ in got] == list(range(15))
    assert [length for _, _, length in got] == sizes
    assert [status == NL_MMAP_STATUS_COPY for status, _, _ in got] == [size > ROOM for size in sizes]
    # every COPY marker had exactly one queued message behind it
    assert not has_queued(receiver)


def test_copy_payload_is_intact(usersock_pair: tuple[socket.socket, socket.socket],
                                make_rx_ring: Callable[..., RxRing]) -> None:
    receiver, sender = usersock_pair
    ring = make_rx_ring(receiver, RING)
    message = user_message(20000, 42, fill=0x5A)
    send_user(sender, receiver, message)
    got = ring.read()
    assert got is not None
    frame, data = got
    assert frame.status == NL_MMAP_STATUS_COPY and frame.length == len(message)
    assert data == message


def test_a_frame_takes_at_most_copy_max_bytes(usersock_pair: tuple[socket.socket, socket.socket],
                                              make_rx_ring: Callable[..., RxRing]) -> None:
    """Rule 14: under the receive queue lock one frame takes COPY_MAX bytes
    at most, whatever its size; a larger message comes by COPY.  Found by a
    review: a 256 KiB frame took a 200 KiB message with interrupts off, so
    the sender's SO_SNDBUF (up to wmem_max) set how long they stayed off."""
    receiver, sender = usersock_pair
    receiver.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 4 << 20)
    ring = make_rx_ring(receiver, BIG)
    sizes = [COPY_MAX, COPY_MAX + 4, 200_000]
    messages = [user_message(size, seq, fill=seq) for seq, size in enumerate(sizes)]
    for message in messages:
        send_user(sender, receiver, message)
    statuses = []
    for message in messages:
        got = ring.read()
        assert got is not None
        frame, data = got
        statuses.append(frame.status)
        assert data == message
    assert statuses == [NL_MMAP_STATUS_VALID, NL_MMAP_STATUS_COPY, NL_MMAP_STATUS_COPY], \
        f"frame statuses {statuses} for messages of {sizes} bytes in frames of {BIG.frame_size}"
