"""Invariant 5: changing a TX frame during or after the send cannot change
what the kernel processed.  A scribbler rewrites nm_len, nlmsg_len, payload
and status words of the TX frames while batches are sent, from threads (no
other address space can map a TX ring or inherit its mapping:
test_tx_permissions.py).  Every datagram the kernel
delivers must be whole netlink messages no longer than a frame (what it
checked is what it sent), nothing crashes, and the ring works normally
afterwards.  KASAN watches the kernel side (the splat scan fails the run)."""

from __future__ import annotations

import errno
import mmap
import random
import socket
import struct
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

import pytest

from nlmmap.abi import NL_MMAP_HDRLEN, NL_MMAP_STATUS_UNUSED, NL_MMAP_STATUS_VALID, ring_request
from nlmmap.messages import NLM_F_ACK, address_of, pending_datagrams, user_message
from nlmmap.netns import netlink_socket
from nlmmap.ring import NLMSG_HDR, split_messages
from nlmmap.tx import Rings, TxRing

# 32 frames (larger ones on pages over 4 KiB): a lap of rtnetlink requests
# gets replies the RX ring and the receive buffer take
TX = ring_request(512, 32, per_block=8)
RX = ring_request(4096, 64)
ROUNDS = 150
# Racing accepts these: the frame was malformed when the kernel copied it.
RACE_ERRNOS = {errno.EINVAL, errno.EMSGSIZE}


def scribble(frames: TxRing, stop: Callable[[], bool], seed: int) -> None:
    """Rewrite random fields of random TX frames (through the view's mapping) until stop()."""
    rng = random.Random(seed)
    mapping, room = frames.map, frames.room
    while not stop():
        offset = frames.offset(rng.randrange(TX.frame_nr))
        what = rng.randrange(4)
        if what == 0:  # nm_len: anything, also beyond the frame
            struct.pack_into("=I", mapping, offset + 4, rng.choice([0, 8, 16, room, room + 4, 0xFFFFFFFF,
                                                                     rng.randrange(room)]))
        elif what == 1:  # nlmsg_len of the first message
            struct.pack_into("=I", mapping, offset + NL_MMAP_HDRLEN, rng.randrange(2 * room))
        elif what == 2:  # payload bytes
            start = offset + NL_MMAP_HDRLEN + rng.randrange(room)
            size = min(4, offset + TX.frame_size - start)
            mapping[start : start + size] = rng.randbytes(size)
        else:  # status
            struct.pack_into("=I", mapping, offset, rng.choice([NL_MMAP_STATUS_UNUSED, NL_MMAP_STATUS_VALID,
                                                                7]))


@contextmanager
def thread_writer(sender: socket.socket, rings: Rings) -> Iterator[None]:
    done = threading.Event()
    thread = threading.Thread(target=scribble, args=(_tx_view(sender, rings, rings.map), done.is_set, 1))
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


def _tx_view(sock: socket.socket, rings: Rings, mapping: mmap.mmap) -> TxRing:
    """The TX frames of rings as seen through mapping (another mapping of the same rings, say)."""
    assert rings.tx is not None
    return TxRing(sock, TX, mapping=mapping, base=rings.tx.base)


WRITERS: dict[str, Callable[[socket.socket, Rings], AbstractContextManager[None]]] = {
    "thread": thread_writer,
}


def _fill(tx: TxRing, seq: int) -> int:
    """Write a good message into every TX frame and mark it VALID."""
    for index in range(TX.frame_nr):
        seq += 1
        tx.write(index, user_message(16 + 4 * (seq % 100), seq))
    return seq


def _checked_datagrams(receiver: socket.socket, room: int) -> int:
    """Read what arrived; every datagram is whole messages and fits a frame."""
    count = 0
    while True:
        try:
            datagram = receiver.recv(1 << 16, socket.MSG_DONTWAIT)
        except BlockingIOError:
            return count
        assert len(datagram) <= room, f"{len(datagram)} bytes delivered from a frame of {room}"
        split_messages(datagram)  # raises if not whole messages
        count += 1


@pytest.mark.parametrize("writer", list(WRITERS), ids=list(WRITERS))
def test_writers_cannot_change_what_the_kernel_sends(usersock_pair: tuple[socket.socket, socket.socket],
                                                     make_rings: Callable[..., Rings], writer: str) -> None:
    receiver, sender = usersock_pair
    receiver.setsockopt(socket.SOL_SOCKET, 33, 4 << 20)  # SO_RCVBUFFORCE
    rings = make_rings(sender, tx=TX)
    tx = rings.tx
    assert tx is not None
    dest = address_of(receiver)
    seq = delivered = 0
    errors: dict[int, int] = {}
    with WRITERS[writer](sender, rings):
        for _ in range(ROUNDS):
            seq = _fill(tx, seq)
            try:
                tx.send(dest, socket.MSG_DONTWAIT)
            except OSError as err:
                assert err.errno in RACE_ERRNOS, f"unexpected {err}"
                errors[err.errno] = errors.get(err.errno, 0) + 1
            delivered += _checked_datagrams(receiver, tx.room)
    assert delivered > 0, "the race left nothing to check"

    # Afterwards the ring works normally: one lap of good frames from the
    # kernel's head (wherever the race left it) arrives whole and in order.
    for index in range(TX.frame_nr):
        tx.set_status(index, NL_MMAP_STATUS_UNUSED)
    _checked_datagrams(receiver, tx.room)
    messages = [user_message(64, n) for n in range(TX.frame_nr)]
    for index, message in enumerate(messages):
        tx.write(index, message)
    assert tx.send(dest) == 64 * TX.frame_nr
    got = pending_datagrams(receiver)
    assert sorted(got) == sorted(messages) and len(got) == TX.frame_nr


def test_racing_writer_against_rtnetlink(netns: str, make_rings: Callable[..., Rings]) -> None:
    """The same race with the kernel's rtnetlink as the receiver: the parser
    only ever sees the kernel's copy.  Requests are NLMSG_NOOP and RTM_GETLINK
    with attributes the scribbler mangles; replies go to the RX ring."""
    sock = netlink_socket(netns, socket.NETLINK_ROUTE)
    try:
        rings = make_rings(sock, rx=RX, tx=TX)
        assert rings.tx is not None and rings.rx is not None
        getlink = NLMSG_HDR.pack(40, 18, 1 | NLM_F_ACK, 0, 0) + bytes(16) + struct.pack("=HH4s", 8, 3, b"lo\0\0")
        with thread_writer(sock, rings):
            for _ in range(ROUNDS):
                for index in range(TX.frame_nr):
                    rings.tx.write(index, getlink)
                try:
                    rings.tx.send()
                except OSError as err:
                    assert err.errno in RACE_ERRNOS, f"unexpected {err}"
                rings.rx.drain(idle=0.0)
        # afterwards: one clean lap from wherever the kernel's head is
        rings.rx.drain(idle=0.1)
        for index in range(TX.frame_nr):
            rings.tx.write(index, getlink)
        assert rings.tx.send() == 40 * TX.frame_nr
        replies = rings.rx.drain()
        assert [NLMSG_HDR.unpack_from(m)[1] for m in replies] == [16, 2] * TX.frame_nr  # RTM_NEWLINK, ack
    finally:
        sock.close()
