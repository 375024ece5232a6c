"""POLLOUT on a socket with a TX ring is exact: set exactly when the TX head
frame (the frame the kernel sends next) is UNUSED (free to fill), VALID (a
send has work) or holds an undefined status (a send reports EINVAL), never
while user space holds it (RESERVED, SKIP)."""

from __future__ import annotations

import errno
import select
import socket
import threading
import time
from collections.abc import Callable

import pytest

from nlmmap.abi import (
    NETLINK_TX_RING,
    NL_MMAP_STATUS_COPY,
    NL_MMAP_STATUS_RESERVED,
    NL_MMAP_STATUS_SKIP,
    NL_MMAP_STATUS_UNUSED,
    NL_MMAP_STATUS_VALID,
    RingRequest,
    ring_request,
    set_ring,
)
from nlmmap.messages import address_of, user_message
from nlmmap.tx import Rings, TxRing, open_rings

TX = ring_request(1024, 4, per_block=4)  # four frames
RX = ring_request(2048, 2)


@pytest.fixture
def tx_pair(usersock_pair: tuple[socket.socket, socket.socket],
            make_rings: Callable[..., Rings]) -> tuple[socket.socket, TxRing]:
    """(receiver, the sender's TX ring)."""
    receiver, sender = usersock_pair
    tx = make_rings(sender, tx=TX).tx
    assert tx is not None
    return receiver, tx


def test_without_tx_ring_pollout_as_ever(rtnl_socket: socket.socket) -> None:
    poller = select.poll()
    poller.register(rtnl_socket, select.POLLOUT)
    assert poller.poll(0)


@pytest.mark.parametrize(
    "status, writable",
    [(NL_MMAP_STATUS_UNUSED, True), (NL_MMAP_STATUS_VALID, True), (NL_MMAP_STATUS_RESERVED, False),
     (NL_MMAP_STATUS_COPY, False), (NL_MMAP_STATUS_SKIP, False), (NL_MMAP_STATUS_SKIP + 1, True),
     (0xFFFFFFFF, True)],
    ids=["unused", "valid", "reserved", "copy", "skip", "first-undefined", "last-undefined"],
)
def test_pollout_follows_the_head_frame(tx_pair: tuple[socket.socket, TxRing], status: int,
                                        writable: bool) -> None:
    _, tx = tx_pair
    tx.set_status(0, status)
    assert tx.writable() is writable
    tx.set_status(0, NL_MMAP_STATUS_UNUSED)
    assert tx.writable()


def test_pollout_is_about_the_kernel_head_only(tx_pair: tuple[socket.socket, TxRing]) -> None:
    """Free frames behind a head that user space holds do not make the
    socket writable; a VALID head does (a send has work), and so does the
    head that a send set free."""
    receiver, tx = tx_pair
    tx.set_status(0, NL_MMAP_STATUS_RESERVED)
    assert not tx.writable()  # frames 1-3 are free, but user space holds the head
    tx.set_status(0, NL_MMAP_STATUS_UNUSED)
    tx.put(user_message(32, 1))
    assert tx.writable()  # the head is VALID: the next send has work
    assert tx.send(address_of(receiver)) == 32
    assert tx.writable()  # the kernel head moved to frame 1


def test_pollout_after_a_short_count_stopped_by_an_undefined_status(
        tx_pair: tuple[socket.socket, TxRing]) -> None:
    """A send that stops at an undefined status after sent frames returns
    their bytes; only the next send reports EINVAL.  A sender that polls
    for POLLOUT before each send must get to make it, or it waits forever."""
    receiver, tx = tx_pair
    tx.put(user_message(32, 1))
    tx.write(1, user_message(32, 2), status=0xDEADBEEF)
    assert tx.send(address_of(receiver)) == 32
    assert tx.writable(), "no POLLOUT before the send that reports the bad frame: a poller would wait forever"
    with pytest.raises(OSError) as err:
        tx.send(address_of(receiver))
    assert err.value.errno == errno.EINVAL


def test_pollout_after_eagain_from_a_full_receiver(usersock_pair: tuple[socket.socket, socket.socket],
                                                   make_rings: Callable[..., Rings]) -> None:
    """A MSG_DONTWAIT send that stops at a full receiver leaves its frame
    VALID; the sender's poll() must not wait for an event that never comes
    (the head would only be set free by the send it waits to retry).  Found
    by a review: the first revision reported POLLOUT only for an UNUSED head,
    so an event loop or io_uring waiting for POLLOUT after -EAGAIN hung."""
    receiver, sender = usersock_pair
    receiver.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
    tx = make_rings(sender, tx=TX).tx
    assert tx is not None
    for seq in range(1, TX.frame_nr + 1):
        tx.put(user_message(900, seq))
    sent = 0
    with pytest.raises(BlockingIOError):
        for _ in range(TX.frame_nr):  # until the receiver is full
            sent += tx.send(address_of(receiver), socket.MSG_DONTWAIT)
    assert sent < TX.frame_nr * 900, "the receiver never filled up"
    assert tx.statuses()[sent // 900] == NL_MMAP_STATUS_VALID
    started = time.monotonic()
    assert tx.writable(timeout=10), "no POLLOUT after EAGAIN: a poller would wait forever"
    assert time.monotonic() - started < 5


def test_rx_and_tx_readiness_are_independent(usersock_pair: tuple[socket.socket, socket.socket],
                                             make_rings: Callable[..., Rings]) -> None:
    receiver, sender = usersock_pair
    rings = make_rings(receiver, rx=RX, tx=TX)
    assert rings.rx is not None and rings.tx is not None
    poller = select.poll()
    poller.register(receiver, select.POLLIN | select.POLLOUT)
    assert dict(poller.poll(0)).get(receiver.fileno()) == select.POLLOUT
    sender.sendto(user_message(32, 1), address_of(receiver))
    assert dict(poller.poll(0)).get(receiver.fileno()) == select.POLLIN | select.POLLOUT
    rings.tx.set_status(0, NL_MMAP_STATUS_RESERVED)  # user space holds the TX head
    assert dict(poller.poll(0)).get(receiver.fileno()) == select.POLLIN
    assert rings.rx.read() is not None
    assert dict(poller.poll(0)).get(receiver.fileno(), 0) == 0


def test_tearing_the_tx_ring_down_wakes_a_pollout_waiter(usersock_pair: tuple[socket.socket, socket.socket]) -> None:
    """A thread asleep in poll() for POLLOUT on a head user space holds
    (RESERVED) wakes when another thread unmaps and tears the TX ring down,
    and sees the socket writable as a plain one is.  Found by the second
    review: the waiter slept its whole 6 s timeout."""
    _, sender = usersock_pair
    rings = open_rings(sender, None, TX)
    assert rings.tx is not None
    rings.tx.set_status(0, NL_MMAP_STATUS_RESERVED)
    assert not rings.tx.writable()
    woken: list[tuple[int, float]] = []

    def waiter() -> None:
        poller = select.poll()
        poller.register(sender, select.POLLOUT)
        events = poller.poll(6000)
        woken.append((events[0][1] if events else 0, time.monotonic()))

    thread = threading.Thread(target=waiter)
    thread.start()
    time.sleep(0.5)  # the waiter is asleep
    rings.close()
    set_ring(sender, NETLINK_TX_RING, RingRequest(0, 0, 0, 0))
    torn_down = time.monotonic()
    thread.join(10)
    assert woken, "the waiter never returned"
    mask, when = woken[0]
    assert mask & select.POLLOUT, "the waiter slept through the teardown"
    assert when - torn_down < 3, f"woken {when - torn_down:.1f} s after the teardown"
