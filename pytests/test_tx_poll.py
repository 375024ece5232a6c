"""POLLOUT on a socket with a TX ring is exact: set exactly when the TX head
frame (the frame the kernel sends next) is UNUSED; a send that frees the
head wakes a waiting poller."""

from __future__ import annotations

import select
import socket
import threading
import time
from collections.abc import Callable

import pytest

from nlmmap.abi import (
    NL_MMAP_STATUS_RESERVED,
    NL_MMAP_STATUS_SKIP,
    NL_MMAP_STATUS_UNUSED,
    NL_MMAP_STATUS_VALID,
    RingRequest,
)
from nlmmap.messages import address_of, user_message
from nlmmap.tx import Rings, TxRing

TX = RingRequest(block_size=4096, block_nr=1, frame_size=1024, frame_nr=4)
RX = RingRequest(block_size=4096, block_nr=1, frame_size=2048, frame_nr=2)


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
    [(NL_MMAP_STATUS_UNUSED, True), (NL_MMAP_STATUS_VALID, False), (NL_MMAP_STATUS_RESERVED, False),
     (NL_MMAP_STATUS_SKIP, False), (0xDEADBEEF, False)],
    ids=["unused", "valid", "reserved", "skip", "undefined"],
)
def test_pollout_follows_the_head_frame(tx_pair: tuple[socket.socket, TxRing], status: int,
                                        writable: bool) -> None:
    _, tx = tx_pair
    tx.set_status(0, status)
    assert tx.writable() is writable
    tx.set_status(0, NL_MMAP_STATUS_UNUSED)
    assert tx.writable()


def test_pollout_is_about_the_kernel_head_only(tx_pair: tuple[socket.socket, TxRing]) -> None:
    """Free frames behind a VALID head do not make the socket writable; the
    send that takes the head does."""
    receiver, tx = tx_pair
    tx.put(user_message(32, 1))
    assert not tx.writable()  # frames 1-3 are free, but the head is VALID
    assert tx.send(address_of(receiver)) == 32
    assert tx.writable()  # the kernel head moved to frame 1
    for seq in range(2, 6):
        tx.put(user_message(32, seq))
    assert not tx.writable()  # every frame VALID
    assert tx.send(address_of(receiver)) == 4 * 32
    assert tx.writable()


def test_send_wakes_a_waiting_poller(tx_pair: tuple[socket.socket, TxRing]) -> None:
    receiver, tx = tx_pair
    for seq in range(1, 5):
        tx.put(user_message(32, seq))
    woke: list[float] = []

    def waiter() -> None:
        start = time.monotonic()
        if tx.writable(timeout=20):
            woke.append(time.monotonic() - start)

    thread = threading.Thread(target=waiter)
    thread.start()
    time.sleep(0.5)
    assert not woke, "POLLOUT while every frame was VALID"
    assert tx.send(address_of(receiver)) == 4 * 32
    thread.join()
    assert woke and woke[0] < 15, "the poller was not woken by the send"


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
    rings.tx.put(user_message(32, 2))
    assert dict(poller.poll(0)).get(receiver.fileno()) == select.POLLIN
    assert rings.rx.read() is not None
    assert dict(poller.poll(0)).get(receiver.fileno(), 0) == 0
