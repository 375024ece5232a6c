"""A small reference client for memory-mapped netlink RX rings.

Set up a ring, map it, walk the frames in order (frame i lives in block
i // frames_per_block, so a block can end in a gap), read each message in
place, release the frame, and fetch COPY messages with recvmsg().

Python's stores and loads on the mapping are plain memory accesses; on
x86 (the guest) that gives the release/acquire ordering the ABI asks for:
(R2) read the status before the frame, (R3) hand the frame back after the
last read (labels of net/netlink/ring.c and nl_ring.h).
"""

from __future__ import annotations

import errno
import mmap
import select
import socket
import struct
from collections.abc import Iterator

from nlmmap.abi import (
    NETLINK_RX_RING,
    NL_MMAP_HDRLEN,
    NL_MMAP_STATUS_COPY,
    NL_MMAP_STATUS_SKIP,
    NL_MMAP_STATUS_UNUSED,
    NL_MMAP_STATUS_VALID,
    RingRequest,
    set_ring,
)
from nlmmap.frames import Frame, FrameRing, map_socket

NLMSG_HDR = struct.Struct("=IHHII")  # nlmsg_len, type, flags, seq, pid
NLMSG_DONE = 3
NLMSG_ERROR = 2
RECV_BUFFER = 1 << 20


def split_messages(data: bytes) -> list[bytes]:
    """The netlink messages in one frame or datagram, each without padding."""
    messages = []
    off = 0
    while len(data) - off >= NLMSG_HDR.size:
        length = NLMSG_HDR.unpack_from(data, off)[0]
        if length < NLMSG_HDR.size or length > len(data) - off:
            raise ValueError(f"bad nlmsg_len {length} at offset {off} of {len(data)}")
        messages.append(data[off : off + length])
        off += (length + 3) & ~3
    return messages


def recv_zero(sock: socket.socket) -> int:
    """A recvmsg() of zero bytes, MSG_DONTWAIT: on a ring socket it moves
    the ring on (the kernel's rule 18).  Not sock.recv(0), which returns
    b"" without a system call.  The bytes received: 0."""
    data, _, _, _ = sock.recvmsg(0, 0, socket.MSG_DONTWAIT)
    return len(data)


def message_type(message: bytes) -> int:
    return int(NLMSG_HDR.unpack_from(message)[1])


class RxRing(FrameRing):
    """The RX ring of one socket, mapped; walks frames from its own head.

    RxRing(sock, req) sets the ring up and maps it alone; rings sharing one
    mapping with a TX ring come from nlmmap.tx.open_rings()."""

    def __init__(self, sock: socket.socket, req: RingRequest, map_size: int | None = None,
                 mapping: mmap.mmap | None = None) -> None:
        if mapping is None:
            set_ring(sock, NETLINK_RX_RING, req)
            mapping = map_socket(sock, map_size or req.size)
            super().__init__(sock, req, mapping, base=0, owns_map=True)
        else:
            super().__init__(sock, req, mapping, base=0, owns_map=False)
        # ENOBUFS reports a kick took (kick())
        self.overruns = 0

    def payload(self, frame: Frame) -> bytes:
        start = frame.offset + NL_MMAP_HDRLEN
        return bytes(self.map[start : start + frame.length])

    def next_frame(self) -> Frame | None:
        """The frame at our head if the kernel handed it to us (VALID or COPY); steps over SKIP."""
        for _ in range(self.req.frame_nr):
            frame = self.frame(self.head)
            if frame.status != NL_MMAP_STATUS_SKIP:
                return frame if frame.status in (NL_MMAP_STATUS_VALID, NL_MMAP_STATUS_COPY) else None
            self.head = (self.head + 1) % self.req.frame_nr
        return None

    def release(self, frame: Frame, status: int = NL_MMAP_STATUS_UNUSED) -> None:
        """Hand the frame back (UNUSED) or keep it (SKIP), and move on."""
        self.set_status(frame.index, status)
        self.head = (frame.index + 1) % self.req.frame_nr

    def kick(self) -> None:
        """Move the ring on: a zero-length read makes the kernel fill the
        frames we released from its backlog and continue a dump; poll()
        moves nothing.  It reports a pending socket error: an overrun
        (ENOBUFS) is counted in `overruns`, any other error raised."""
        try:
            recv_zero(self.sock)
        except OSError as error:
            if error.errno != errno.ENOBUFS:
                raise
            self.overruns += 1

    def read(self) -> tuple[Frame, bytes] | None:
        """The next frame's data (a COPY frame's from recvmsg()), frame
        released; when none waits, the ring is moved on and looked at once
        more."""
        frame = self.next_frame()
        if frame is None:
            self.kick()
            frame = self.next_frame()
        if frame is None:
            return None
        if frame.status == NL_MMAP_STATUS_COPY:
            data = self.sock.recv(RECV_BUFFER, socket.MSG_DONTWAIT)
        else:
            data = self.payload(frame)
        self.release(frame)
        return frame, data

    def messages(self) -> Iterator[bytes]:
        """Every message waiting now, in order."""
        while (got := self.read()) is not None:
            yield from split_messages(got[1])

    def wait(self, timeout: float = 5.0) -> bool:
        """poll() for POLLIN; True if it came."""
        poller = select.poll()
        poller.register(self.sock, select.POLLIN)
        return bool(poller.poll(int(timeout * 1000)))

    def drain_frames(self, idle: float = 0.5) -> list[bytes]:
        """Every frame's data (a COPY frame's from recvmsg()) until nothing
        more comes for idle seconds: what each delivery put in a frame."""
        out: list[bytes] = []
        while True:
            while (got := self.read()) is not None:
                out.append(got[1])
            if not self.wait(idle):
                return out

    def drain(self, idle: float = 0.5) -> list[bytes]:
        """Every message until nothing more comes for idle seconds."""
        out: list[bytes] = []
        while True:
            out.extend(self.messages())
            if not self.wait(idle):
                return out

    def collect_until_done(self, timeout: float = 30.0) -> list[bytes]:
        """Messages of a dump, read from the ring, up to and including NLMSG_DONE or an error."""
        out: list[bytes] = []
        while True:
            for message in self.messages():
                out.append(message)
                if message_type(message) in (NLMSG_DONE, NLMSG_ERROR):
                    return out
            if not self.wait(timeout):
                raise TimeoutError(f"dump stalled after {len(out)} messages")


def recv_until_done(sock: socket.socket, timeout: float = 30.0) -> list[bytes]:
    """The same dump read the classic way, with recvmsg()."""
    sock.settimeout(timeout)
    out: list[bytes] = []
    while True:
        for message in split_messages(sock.recv(RECV_BUFFER)):
            out.append(message)
            if message_type(message) in (NLMSG_DONE, NLMSG_ERROR):
                return out
