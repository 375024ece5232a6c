"""poll() on a ring socket reads and moves nothing, so a dump never runs
with the rights of whoever polls (rule 18).

A dump round checks capabilities against the task that runs it: with an
explicit destination on the request (NETLINK_SKB_DST) tcp_diag adds
INET_DIAG_MARK for a task with CAP_NET_ADMIN, whoever opened the socket.
Without a ring a round runs only in the requester's sendmsg() or in a
recvmsg() on the socket.  So an unprivileged requester whose ring socket a
root task polls (the fd passed with SCM_RIGHTS), through poll() or aio's
IOCB_CMD_POLL (a kernel worker calls ->poll()), must see what it sees on a
plain socket: no INET_DIAG_MARK.  The oracle: a root requester's plain dump
carries the attribute, an unprivileged one's does not."""

from __future__ import annotations

import array
import ctypes
import os
import select
import socket
import struct
import sys
import time
from collections.abc import Callable, Iterator

import pytest

from nlmmap.abi import ring_request, ring_stats
from nlmmap.messages import walk_attributes
from nlmmap.process import become_nobody, fork_child, wait_child
from nlmmap.ring import NLMSG_DONE, NLMSG_HDR, RxRing, message_type, recv_until_done, recv_zero

NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
NLM_F_DUMP_REQUEST = 0x301
TCP_LISTEN_STATE = 1 << 10
INET_DIAG_MSG_LEN = 72
INET_DIAG_MARK = 15
SO_MARK = 36
LISTENERS = 150
# small frames (two of them on 4 KiB pages): the dump takes many rounds,
# each waiting for frames the reader released
SMALL = ring_request(2048, 2)
# the kernel at the destination: a request with an explicit address
KERNEL = (0, 0)


def tcp_dump_request() -> bytes:
    """SOCK_DIAG_BY_FAMILY for IPv4 TCP listeners (inet_diag_req_v2)."""
    body = struct.pack("=BBBxI", socket.AF_INET, socket.IPPROTO_TCP, 0, TCP_LISTEN_STATE) + bytes(48)
    return NLMSG_HDR.pack(NLMSG_HDR.size + len(body), SOCK_DIAG_BY_FAMILY, NLM_F_DUMP_REQUEST, 1, 0) + body


def marks(messages: list[bytes]) -> tuple[int, int]:
    """(sockets, sockets reported with INET_DIAG_MARK) of a tcp_diag dump."""
    sockets = [m for m in messages if message_type(m) == SOCK_DIAG_BY_FAMILY]
    marked = sum(any(kind == INET_DIAG_MARK for kind, _, _ in walk_attributes(m, NLMSG_HDR.size + INET_DIAG_MSG_LEN))
                 for m in sockets)
    return len(sockets), marked


@pytest.fixture(scope="module")
def marked_listeners() -> Iterator[None]:
    """LISTENERS TCP listeners on 127.0.0.1, each with a mark."""
    socks = []
    try:
        for _ in range(LISTENERS):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, SO_MARK, 0x2A)
            sock.bind(("127.0.0.1", 0))
            sock.listen()
            socks.append(sock)
        yield
    finally:
        for sock in socks:
            sock.close()


def plain_dump(unprivileged: bool) -> tuple[int, int]:
    """The oracle: a dump read with recvmsg() from a plain socket."""
    out_r, out_w = os.pipe()

    def body() -> None:
        if unprivileged:
            become_nobody()
        with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_SOCK_DIAG) as sock:
            sock.sendto(tcp_dump_request(), KERNEL)
            os.write(out_w, struct.pack("=II", *marks(recv_until_done(sock))))

    pid = fork_child(body)
    os.close(out_w)
    result = os.read(out_r, 8)
    os.close(out_r)
    assert wait_child(pid) == 0
    return struct.unpack("=II", result)


def send_fd(channel: socket.socket, fd: int) -> None:
    channel.sendmsg([b"f"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [fd]))])


def recv_fd(channel: socket.socket) -> int:
    fds = array.array("i")
    _, ancdata, _, _ = channel.recvmsg(1, socket.CMSG_SPACE(fds.itemsize))
    fds.frombytes(ancdata[0][2][: fds.itemsize])
    return fds[0]


def ring_requester(channel: socket.socket, result: int) -> None:
    """As nobody: a ring socket, the dump request with an explicit
    destination, the fd to the root task; then read the dump slowly,
    moving it on with zero-length reads, and report its marks."""
    become_nobody()
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_SOCK_DIAG) as sock:
        ring = RxRing(sock, SMALL)
        sock.sendto(tcp_dump_request(), KERNEL)
        send_fd(channel, sock.fileno())
        messages: list[bytes] = []
        deadline = time.monotonic() + 60
        while not messages or message_type(messages[-1]) != NLMSG_DONE:
            assert time.monotonic() < deadline, f"dump stalled after {len(messages)} messages"
            time.sleep(0.01)  # the poller has time to move the dump, if poll() did
            messages.extend(ring.messages())
        os.write(result, struct.pack("=II", *marks(messages)))
        ring.close()


def ring_dump_polled_by_root(poll_until_done: Callable[[int, Callable[[], bool]], None]) -> tuple[int, int]:
    """The unprivileged ring requester's dump while root polls its socket."""
    channel, child_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    out_r, out_w = os.pipe()
    pid = fork_child(lambda: ring_requester(child_end, out_w))
    os.close(out_w)
    child_end.close()
    fd = recv_fd(channel)
    os.set_blocking(out_r, False)
    got = b""

    def done() -> bool:
        nonlocal got
        try:
            got += os.read(out_r, 8)
        except BlockingIOError:
            pass
        return len(got) == 8

    try:
        poll_until_done(fd, done)
    finally:
        os.close(fd)
        channel.close()
    assert wait_child(pid) == 0
    os.close(out_r)
    return struct.unpack("=II", got)


def poll_loop(fd: int, done: Callable[[], bool]) -> None:
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    while not done():
        poller.poll(1)


# aio's IOCB_CMD_POLL: the kernel's worker calls ->poll() when the socket
# wakes (aio_poll_complete_work()), in no process of the caller's
_libc = ctypes.CDLL(None, use_errno=True)
# io_setup, io_destroy, io_submit, io_getevents: x86_64's table, the
# generic one (arm64), s390x's
AIO_SYSCALLS = {"x86_64": (206, 207, 209, 208), "aarch64": (0, 1, 2, 4), "s390x": (243, 244, 246, 245)}
SYS_IO_SETUP, SYS_IO_DESTROY, SYS_IO_SUBMIT, SYS_IO_GETEVENTS = AIO_SYSCALLS.get(os.uname().machine, (-1,) * 4)
IOCB_CMD_POLL = 5
# struct iocb (<linux/aio_abi.h>): data, two 32-bit words (key and rw_flags
# on little-endian, rw_flags and key on big-endian: its PADDED macro),
# opcode, reqprio, fildes, buf (the poll events), nbytes, offset,
# reserved2, flags, resfd
IOCB = struct.Struct("=QIIHhIQQqQII")


def iocb_poll(fd: int, events: int, key: int = 0, rw_flags: int = 0) -> bytes:
    """An IOCB_CMD_POLL iocb for events on fd, in the machine's byte order."""
    words = (key, rw_flags) if sys.byteorder == "little" else (rw_flags, key)
    return IOCB.pack(1, *words, IOCB_CMD_POLL, 0, fd, events, 0, 0, 0, 0, 0)


def _syscall(number: int, *args: object) -> int:
    ret = _libc.syscall(number, *args)
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return int(ret)


def aio_poll_loop(fd: int, done: Callable[[], bool]) -> None:
    """One IOCB_CMD_POLL for POLLIN after another until done()."""
    ctx = ctypes.c_ulong(0)
    _syscall(SYS_IO_SETUP, 1, ctypes.byref(ctx))
    try:
        while not done():
            iocb = ctypes.create_string_buffer(iocb_poll(fd, select.POLLIN))
            iocbs = (ctypes.c_void_p * 1)(ctypes.addressof(iocb))
            _syscall(SYS_IO_SUBMIT, ctx, 1, iocbs)
            events = ctypes.create_string_buffer(32)
            timeout = struct.pack("=qq", 0, 5_000_000)
            while not done():
                if _syscall(SYS_IO_GETEVENTS, ctx, 0, 1, events, ctypes.c_char_p(timeout)):
                    break
    finally:
        _syscall(SYS_IO_DESTROY, ctx)


def test_the_oracle_root_sees_marks_nobody_does_not(marked_listeners: None) -> None:
    root_sockets, root_marked = plain_dump(unprivileged=False)
    nobody_sockets, nobody_marked = plain_dump(unprivileged=True)
    assert root_sockets >= LISTENERS and root_marked >= LISTENERS, "a root requester gets INET_DIAG_MARK"
    assert nobody_sockets >= LISTENERS and nobody_marked == 0, "an unprivileged one does not"


@pytest.mark.parametrize("poller", [poll_loop, aio_poll_loop], ids=["poll", "aio-poll"])
def test_a_dump_never_runs_with_the_pollers_rights(marked_listeners: None,
                                                    poller: Callable[[int, Callable[[], bool]], None]) -> None:
    if poller is aio_poll_loop and SYS_IO_SETUP < 0:
        pytest.skip(f"no aio system call numbers for {os.uname().machine}")
    sockets, marked = ring_dump_polled_by_root(poller)
    assert sockets >= LISTENERS, f"the ring requester saw {sockets} sockets"
    assert marked == 0, f"{marked} of {sockets} sockets came with INET_DIAG_MARK: a dump round ran with root's rights"


def test_poll_never_runs_a_dump_round(marked_listeners: None, make_rx_ring: Callable[..., RxRing]) -> None:
    """After the request's own round filled a frame and the reader released
    it, poll() (fifty times) runs no further round: no frame is filled, no
    POLLIN.  The reader's zero-length recv() runs the next rounds."""
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_SOCK_DIAG)
    try:
        ring = make_rx_ring(sock, SMALL)
        sock.sendto(tcp_dump_request(), KERNEL)
        first = []
        while (frame := ring.next_frame()) is not None:
            first.append(ring.payload(frame))
            ring.release(frame)
        assert first, "the request's own round filled no frame"
        before = ring_stats(sock)
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        for _ in range(50):
            assert not poller.poll(0), "POLLIN with no frame to read: a dump round ran in poll()"
        after = ring_stats(sock)
        assert (after.rx_frames, after.rx_copies) == (before.rx_frames, before.rx_copies), "poll() moved the dump"
        assert ring.next_frame() is None
        assert recv_zero(sock) == 0
        assert ring.next_frame() is not None, "a zero-length recv() moves the dump on"
        messages = ring.drain()
        assert messages and message_type(messages[-1]) == NLMSG_DONE, "the dump did not end"
    finally:
        sock.close()
