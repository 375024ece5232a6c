"""poll() on a ring socket: POLLIN exactly when a VALID or COPY frame waits or
the queue holds a message, and no wakeup is lost with a reader in another
thread."""

from __future__ import annotations

import random
import socket
import threading
import time
from collections.abc import Callable

from nlmmap.abi import NL_MMAP_STATUS_SKIP, RingRequest
from nlmmap.messages import message_seq, send_user, user_message
from nlmmap.ring import RxRing

RING = RingRequest(block_size=4096, block_nr=2, frame_size=1024, frame_nr=8)


def test_pollin_is_exact(usersock_pair: tuple[socket.socket, socket.socket],
                         make_rx_ring: Callable[..., RxRing]) -> None:
    receiver, sender = usersock_pair
    ring = make_rx_ring(receiver, RING)
    assert not ring.wait(0)

    send_user(sender, receiver, user_message(64, 1))
    assert ring.wait(0)  # a VALID frame
    frame = ring.next_frame()
    assert frame is not None
    ring.release(frame, NL_MMAP_STATUS_SKIP)
    assert not ring.wait(0)  # a kept frame is not waiting
    ring.set_status(frame.index, 0)

    send_user(sender, receiver, user_message(4000, 2))
    assert ring.wait(0)  # a COPY frame
    frame = ring.next_frame()
    assert frame is not None
    ring.release(frame)
    assert ring.wait(0)  # the queued message behind it
    assert message_seq(receiver.recv(8192)) == 2
    assert not ring.wait(0)


def test_no_wakeup_is_lost(usersock_pair: tuple[socket.socket, socket.socket],
                           make_rx_ring: Callable[..., RxRing]) -> None:
    receiver, sender = usersock_pair
    ring = make_rx_ring(receiver, RING)
    count = 300
    got: list[int] = []

    def reader() -> None:
        deadline = time.monotonic() + 60
        while len(got) < count and time.monotonic() < deadline:
            if ring.wait(5.0):  # blocks in poll() with nothing waiting
                got.extend(message_seq(m) for m in ring.messages())

    thread = threading.Thread(target=reader)
    thread.start()
    rng = random.Random(7)
    for seq in range(count):
        send_user(sender, receiver, user_message(64, seq))  # blocks while the reader is behind
        if rng.random() < 0.1:
            time.sleep(rng.random() / 100)
    thread.join()
    assert got == list(range(count))
