"""A TX send interrupted by a signal loses no message.

The send blocks on a full receiver; a signal with a handler interrupts it,
with and without SA_RESTART.  Every frame must be either delivered (and
counted in the call's return value), or still VALID for the next call:
a frame the kernel set UNUSED without delivering its message is a lost
message.  The frames are then sent by a second call and the receiver must
get every message exactly once, in order."""

from __future__ import annotations

import ctypes
import errno
import json
import os
import signal
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from nlmmap.abi import NETLINK_ADD_MEMBERSHIP, NL_MMAP_STATUS_UNUSED, NL_MMAP_STATUS_VALID, SOL_NETLINK, ring_request
from nlmmap.messages import NETLINK_USERSOCK, address_of, message_seq, user_message
from nlmmap.netns import netlink_socket
from nlmmap.process import fork_child, wait_child
from nlmmap.tx import Rings, TxRing

TX = ring_request(1024, 16, per_block=4)  # sixteen frames
SIZE = 900

_libc = ctypes.CDLL(None, use_errno=True)
_libc.sendto.restype = ctypes.c_ssize_t
_libc.sendto.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int,
                         ctypes.c_char_p, ctypes.c_uint32]


def raw_send(sock: socket.socket, dest: tuple[int, int], flags: int = 0) -> tuple[int, int]:
    """sendto(fd, NULL, 0, flags, dest) through libc, without Python's EINTR
    retry: (return value, errno)."""
    addr = struct.pack("=HHII", socket.AF_NETLINK, 0, dest[0], dest[1])
    ctypes.set_errno(0)
    ret = _libc.sendto(sock.fileno(), None, 0, flags, addr, len(addr))
    return ret, ctypes.get_errno()


@pytest.fixture
def full_receiver(usersock_pair: tuple[socket.socket, socket.socket],
                  make_rings: Callable[..., Rings]) -> tuple[socket.socket, socket.socket, TxRing]:
    """(receiver, sender, TX ring): every frame VALID, more than the
    receiver's smallest buffer takes."""
    receiver, sender = usersock_pair
    receiver.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
    tx = make_rings(sender, tx=TX).tx
    assert tx is not None
    for seq in range(1, TX.frame_nr + 1):
        tx.put(user_message(SIZE, seq))
    return receiver, sender, tx


@pytest.fixture
def alarm_handler() -> Iterator[Callable[[bool], None]]:
    """Install a SIGALRM handler (with or without SA_RESTART); restored after."""
    old = signal.getsignal(signal.SIGALRM)

    def install(restart: bool) -> None:
        signal.signal(signal.SIGALRM, lambda *_: None)
        signal.siginterrupt(signal.SIGALRM, not restart)

    yield install
    signal.setitimer(signal.ITIMER_REAL, 0)
    signal.signal(signal.SIGALRM, old)


def _seqs(sock: socket.socket) -> list[int]:
    """The sequence numbers of the messages waiting in sock, until 1 s of quiet."""
    sock.settimeout(1.0)
    seqs = []
    while True:
        try:
            seqs.append(message_seq(sock.recv(1 << 16)))
        except TimeoutError:
            return seqs


def _drain_later(receiver: socket.socket, delay: float, write_fd: int) -> int:
    """A child that starts reading the receiver after delay seconds and
    reports the sequence numbers it read, until 1 s without a message."""

    def body() -> None:
        time.sleep(delay)
        os.write(write_fd, json.dumps(_seqs(receiver)).encode())

    return fork_child(body)


@pytest.mark.parametrize("restart", [True, False], ids=["SA_RESTART", "no-SA_RESTART"])
def test_interrupted_send_loses_no_frame(full_receiver: tuple[socket.socket, socket.socket, TxRing],
                                         alarm_handler: Callable[[bool], None], restart: bool) -> None:
    receiver, sender, tx = full_receiver

    read_fd, write_fd = os.pipe()
    child = _drain_later(receiver, 2.0, write_fd)
    os.close(write_fd)

    alarm_handler(restart)
    signal.setitimer(signal.ITIMER_REAL, 0.5)
    ret, err = raw_send(sender, address_of(receiver))
    signal.setitimer(signal.ITIMER_REAL, 0)

    statuses = tx.statuses()
    released = statuses.count(NL_MMAP_STATUS_UNUSED)
    assert statuses == [NL_MMAP_STATUS_UNUSED] * released + [NL_MMAP_STATUS_VALID] * (TX.frame_nr - released), \
        f"the frames the call took are not a prefix: {statuses}"
    if ret >= 0:
        assert ret == released * SIZE, (
            f"the call returned {ret} bytes but released {released} frames of {SIZE}: "
            f"a released frame's message was not delivered")
    else:
        assert err == errno.EINTR, f"the interrupted send failed with {errno.errorcode.get(err, err)}"
        assert released == 0, f"the call returned EINTR after releasing {released} frames"
    assert released < TX.frame_nr, "the send did not stop at the signal"

    # the rest goes out once the child reads; nothing lost, nothing twice
    sent = tx.send(address_of(receiver))
    assert sent == (TX.frame_nr - released) * SIZE
    assert wait_child(child) == 0
    with os.fdopen(read_fd, "rb") as pipe:
        seqs = json.loads(pipe.read())
    assert seqs == list(range(1, TX.frame_nr + 1))


GROUP = 29  # a NETLINK_USERSOCK group nothing else in the guest uses


@pytest.mark.parametrize("restart", [True, False], ids=["SA_RESTART", "no-SA_RESTART"])
def test_interrupted_multicast_frame_is_reported(full_receiver: tuple[socket.socket, socket.socket, TxRing],
                                                 alarm_handler: Callable[[bool], None], restart: bool) -> None:
    """A frame for a group and a port: a signal in its unicast leg cannot
    leave it VALID (sending it again would repeat the multicast), so it
    fails for good and the call returns EINTR, with or without SA_RESTART.
    Found by a review: under SA_RESTART the call restarted, sent the next
    frames and returned their bytes; the failed frame was reported nowhere."""
    receiver, sender, tx = full_receiver
    listener = netlink_socket(None, NETLINK_USERSOCK)
    try:
        listener.setsockopt(SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, GROUP)
        read_fd, write_fd = os.pipe()
        child = _drain_later(receiver, 2.0, write_fd)
        os.close(write_fd)
        dest = (address_of(receiver)[0], 1 << (GROUP - 1))

        alarm_handler(restart)
        signal.setitimer(signal.ITIMER_REAL, 0.5)
        ret, err = raw_send(sender, dest)
        signal.setitimer(signal.ITIMER_REAL, 0)

        statuses = tx.statuses()
        released = statuses.count(NL_MMAP_STATUS_UNUSED)
        assert (ret, errno.errorcode.get(err, err)) == (-1, "EINTR"), \
            f"the interrupted multicast frame was not reported: the call returned {ret} after {released} frames"
        assert 0 < released < TX.frame_nr
        assert statuses == [NL_MMAP_STATUS_UNUSED] * released + [NL_MMAP_STATUS_VALID] * (TX.frame_nr - released)

        # the rest goes out with the next send; the failed frame (the last
        # one released) reached the group once and its port never
        assert tx.send(dest) == (TX.frame_nr - released) * SIZE
        assert wait_child(child) == 0
        with os.fdopen(read_fd, "rb") as pipe:
            assert json.loads(pipe.read()) == [seq for seq in range(1, TX.frame_nr + 1) if seq != released]
        assert _seqs(listener) == list(range(1, TX.frame_nr + 1))
    finally:
        listener.close()


@pytest.fixture
def another_sender(full_receiver: tuple[socket.socket, socket.socket, TxRing]) -> Iterator[threading.Thread]:
    """A thread whose blocking send waits for the full receiver with the TX
    ring held (the first frame taken, SIGALRM blocked); joined after."""
    receiver, _, tx = full_receiver

    def send_all() -> None:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})  # the alarms are the main thread's
        tx.send(address_of(receiver))

    blocked = threading.Thread(target=send_all)
    blocked.start()
    try:
        deadline = time.monotonic() + 10
        while tx.statuses()[0] != NL_MMAP_STATUS_UNUSED:
            assert time.monotonic() < deadline, "the first send took no frame"
            time.sleep(0.05)
        time.sleep(0.3)
        assert blocked.is_alive(), "the first send did not wait for the full receiver"
        yield blocked
    finally:
        _seqs(receiver)  # let it finish whatever the test left
        blocked.join()


def test_dontwait_does_not_wait_for_another_sender(full_receiver: tuple[socket.socket, socket.socket, TxRing],
                                                   another_sender: threading.Thread,
                                                   alarm_handler: Callable[[bool], None]) -> None:
    """While another send of the socket waits for its full receiver with the
    TX ring held, a MSG_DONTWAIT send fails with EAGAIN at once, and a
    blocking one is interruptible (EINTR without SA_RESTART), neither taking
    a frame."""
    receiver, sender, tx = full_receiver
    statuses = tx.statuses()

    alarm_handler(False)  # a safety net: without it a waiting call would hang the test
    signal.setitimer(signal.ITIMER_REAL, 2.0)
    started = time.monotonic()
    ret, err = raw_send(sender, address_of(receiver), socket.MSG_DONTWAIT)
    waited = time.monotonic() - started
    assert (ret, errno.errorcode.get(err)) == (-1, "EAGAIN")
    assert waited < 1.0, f"MSG_DONTWAIT waited {waited:.2f} s for the other sender"

    signal.setitimer(signal.ITIMER_REAL, 0.3)
    ret, err = raw_send(sender, address_of(receiver))
    signal.setitimer(signal.ITIMER_REAL, 0)
    assert (ret, errno.errorcode.get(err)) == (-1, "EINTR")
    assert tx.statuses() == statuses, "a send that got no ring took frames"

    assert _seqs(receiver) == list(range(1, TX.frame_nr + 1))


def test_wait_for_another_sender_restarts_under_sa_restart(
        full_receiver: tuple[socket.socket, socket.socket, TxRing], another_sender: threading.Thread) -> None:
    """A blocking send that waits for another send of the socket has taken
    no frame: a signal whose handler has SA_RESTART restarts it, as it
    restarts a send waiting for its receiver.  It returns once the other
    send is done (0: that one sent every frame)."""
    receiver, sender, tx = full_receiver
    read_fd, write_fd = os.pipe()
    child = _drain_later(receiver, 1.5, write_fd)
    os.close(write_fd)
    signals: list[int] = []
    old = signal.signal(signal.SIGALRM, lambda number, _: signals.append(number))
    try:
        signal.siginterrupt(signal.SIGALRM, False)
        signal.setitimer(signal.ITIMER_REAL, 0.3)
        ret, err = raw_send(sender, address_of(receiver))
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    assert signals == [signal.SIGALRM], "the alarm did not come during the send"
    assert ret == 0, \
        f"the send waiting for another sender returned {ret} ({errno.errorcode.get(err, err)}) under SA_RESTART"
    another_sender.join(timeout=30)  # it let go of the ring before its call returned
    assert not another_sender.is_alive()
    assert tx.statuses() == [NL_MMAP_STATUS_UNUSED] * TX.frame_nr
    assert wait_child(child) == 0
    with os.fdopen(read_fd, "rb") as pipe:
        assert json.loads(pipe.read()) == list(range(1, TX.frame_nr + 1))
