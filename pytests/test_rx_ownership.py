"""Frame ownership: the kernel never writes a frame user space holds (VALID
or SKIP), not even under a flood; what cannot be delivered is refused or
counted and signalled; delivery resumes in order after release."""

from __future__ import annotations

import errno
import select
import socket
from collections.abc import Callable

import pytest

from nlmmap.abi import (
    NETLINK_ADD_MEMBERSHIP,
    NETLINK_NO_ENOBUFS,
    NL_MMAP_HDRLEN,
    NL_MMAP_STATUS_SKIP,
    NL_MMAP_STATUS_UNUSED,
    NL_MMAP_STATUS_VALID,
    SOL_NETLINK,
    ring_request,
    ring_stats,
)
from nlmmap.messages import message_seq, send_group, send_user, user_message
from nlmmap.ring import RxRing

# eight frames (larger ones on pages over 4 KiB): what the tests send behind
# a full ring fits the small receive buffer, so no send blocks
RING = ring_request(1024, 8, per_block=4)
FRAMES = RING.frame_nr
CANARY = 0xC5
FLOOD = 2000


def _hold_with_canary(ring: RxRing, index: int) -> None:
    """Keep the frame with SKIP and fill everything after its header with canaries."""
    start = ring.offset(index) + NL_MMAP_HDRLEN
    ring.map[start : ring.offset(index) + RING.frame_size] = bytes([CANARY]) * (RING.frame_size - NL_MMAP_HDRLEN)
    ring.set_status(index, NL_MMAP_STATUS_SKIP)


def _flood_unicast(sender: socket.socket, receiver: socket.socket, first: int, count: int) -> list[int]:
    """Send without blocking; the seqs the kernel accepted."""
    accepted = []
    for seq in range(first, first + count):
        try:
            send_user(sender, receiver, user_message(64, seq), socket.MSG_DONTWAIT)
        except BlockingIOError:
            continue
        accepted.append(seq)
    return accepted


@pytest.fixture
def small_rcvbuf(usersock_pair: tuple[socket.socket, socket.socket]) -> tuple[socket.socket, socket.socket]:
    receiver, sender = usersock_pair
    receiver.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    return receiver, sender


@pytest.fixture
def full_ring(small_rcvbuf: tuple[socket.socket, socket.socket],
              make_rx_ring: Callable[..., RxRing]) -> tuple[socket.socket, socket.socket, RxRing]:
    """(receiver, sender, ring): every frame VALID, holding messages 0 to FRAMES - 1."""
    receiver, sender = small_rcvbuf
    ring = make_rx_ring(receiver, RING)
    for seq in range(FRAMES):
        send_user(sender, receiver, user_message(64, seq))
    assert ring.statuses() == [NL_MMAP_STATUS_VALID] * FRAMES
    return receiver, sender, ring


def test_held_frames_never_change_under_a_flood(full_ring: tuple[socket.socket, socket.socket, RxRing]) -> None:
    receiver, sender, ring = full_ring
    for index in range(FRAMES // 2, FRAMES):  # first half stays VALID, second half SKIP
        _hold_with_canary(ring, index)
    snapshot = bytes(ring.map)

    accepted = _flood_unicast(sender, receiver, FRAMES, FLOOD)

    assert bytes(ring.map) == snapshot
    assert 0 < len(accepted) < FLOOD  # the receive buffer behind the ring took some, refused the rest
    for index in range(FRAMES):
        ring.set_status(index, NL_MMAP_STATUS_UNUSED)
    ring.head = 0
    assert [message_seq(m) for m in ring.drain()] == accepted  # all of them, in order


def test_skip_frames_are_stepped_over(full_ring: tuple[socket.socket, socket.socket, RxRing]) -> None:
    receiver, sender, ring = full_ring
    held = range(FRAMES // 2)
    for index in held:
        _hold_with_canary(ring, index)
    kept = {index: bytes(ring.map[ring.offset(index) : ring.offset(index) + RING.frame_size]) for index in held}
    for index in range(FRAMES // 2, FRAMES):
        ring.set_status(index, NL_MMAP_STATUS_UNUSED)

    for seq in range(100, 100 + FRAMES):  # half fit, half wait in the queue
        send_user(sender, receiver, user_message(64, seq))

    for index in held:
        assert bytes(ring.map[ring.offset(index) : ring.offset(index) + RING.frame_size]) == kept[index]
    ring.head = FRAMES // 2
    first = []
    while (frame := ring.next_frame()) is not None:  # what the frames hold, without moving the ring on
        first.append(message_seq(ring.payload(frame)))
        ring.release(frame)
    assert first == list(range(100, 100 + FRAMES // 2))
    for index in held:
        ring.set_status(index, NL_MMAP_STATUS_UNUSED)
    assert [message_seq(m) for m in ring.drain()] == list(range(100 + FRAMES // 2, 100 + FRAMES))


@pytest.mark.parametrize("no_enobufs", [False, True], ids=["enobufs", "no-enobufs"])
def test_multicast_overrun_is_counted_and_signalled(small_rcvbuf: tuple[socket.socket, socket.socket],
                                                    make_rx_ring: Callable[..., RxRing], no_enobufs: bool) -> None:
    receiver, sender = small_rcvbuf
    receiver.setsockopt(SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, 1)
    if no_enobufs:
        receiver.setsockopt(SOL_NETLINK, NETLINK_NO_ENOBUFS, 1)
    ring = make_rx_ring(receiver, RING)
    for seq in range(500):
        send_group(sender, 1, user_message(64, seq))

    assert ring_stats(receiver).rx_drops > 0
    poller = select.poll()
    poller.register(receiver, select.POLLIN | select.POLLERR)
    events = dict(poller.poll(0)).get(receiver.fileno(), 0)
    assert bool(events & select.POLLERR) != no_enobufs
    if not no_enobufs:
        with pytest.raises(OSError) as err:
            receiver.recv(1, socket.MSG_DONTWAIT)
        assert err.value.errno == errno.ENOBUFS

    seqs = [message_seq(m) for m in ring.drain()]
    assert FRAMES <= len(seqs) < 500
    assert seqs == sorted(set(seqs))  # in order, none twice
    for seq in range(1000, 1010):  # delivery resumes
        send_group(sender, 1, user_message(64, seq))
    assert [message_seq(m) for m in ring.drain()] == list(range(1000, 1010))


def test_kernel_writes_nothing_past_nm_len(usersock_pair: tuple[socket.socket, socket.socket],
                                           make_rx_ring: Callable[..., RxRing]) -> None:
    """A frame gets its header and nm_len bytes, nothing more: no kernel memory
    (skb tailroom, padding) reaches the frame; the rest keeps what it had."""
    receiver, sender = usersock_pair
    ring = make_rx_ring(receiver, RING)
    for index in range(FRAMES):
        start = ring.offset(index) + NL_MMAP_HDRLEN
        ring.map[start : ring.offset(index) + RING.frame_size] = bytes([CANARY]) * (RING.frame_size - NL_MMAP_HDRLEN)
    sizes = [16, 61, 64, 999]
    for seq, size in enumerate(sizes):
        send_user(sender, receiver, user_message(size, seq))
    for index, size in enumerate(sizes):
        frame = ring.frame(index)
        assert (frame.status, frame.length) == (NL_MMAP_STATUS_VALID, size)
        tail = ring.map[frame.offset + NL_MMAP_HDRLEN + size : frame.offset + RING.frame_size]
        assert tail == bytes([CANARY]) * len(tail), f"frame {index} written past nm_len {size}"
