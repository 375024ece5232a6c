"""A small reference client for memory-mapped netlink TX rings.

Fill the UNUSED frame at our head (message bytes, then nm_len, then the
status VALID), and send every VALID frame with one send of zero bytes.  The
kernel copies each frame's message, sends the copy as sendmsg() would and
sets the frame UNUSED; the call returns the bytes sent, 0 when no frame
was VALID, or the error of a frame that failed for good (that frame is
released too: it is the last frame the call set UNUSED).  A frame whose
unicast would block or met a signal stays VALID for the next call, unless
it also went to a multicast group (then it fails for good: EINTR).
"""

from __future__ import annotations

import mmap
import select
import socket
import struct
from dataclasses import dataclass

from nlmmap.abi import (
    NETLINK_RX_RING,
    NETLINK_TX_RING,
    NL_MMAP_HDRLEN,
    NL_MMAP_STATUS_UNUSED,
    NL_MMAP_STATUS_VALID,
    RingRequest,
    set_ring,
)
from nlmmap.frames import STATUS, FrameRing, map_socket
from nlmmap.ring import RxRing

NM_LEN = struct.Struct("=I")
NM_LEN_OFFSET = 4


class RingFull(BufferError):
    """Our head frame is not UNUSED: the kernel has not sent it yet."""


class TxRing(FrameRing):
    """The TX ring of one socket; fills frames from its own head."""

    def __init__(self, sock: socket.socket, req: RingRequest, mapping: mmap.mmap | None = None,
                 base: int = 0) -> None:
        if mapping is None:
            set_ring(sock, NETLINK_TX_RING, req)
            super().__init__(sock, req, map_socket(sock, req.size), base=0, owns_map=True)
        else:
            super().__init__(sock, req, mapping, base=base, owns_map=False)

    def write(self, index: int, data: bytes, status: int = NL_MMAP_STATUS_VALID,
              length: int | None = None) -> None:
        """Message bytes, then nm_len (len(data) unless given), then the status:
        x86 keeps these stores in order, as the ABI's release semantics ask (T1)."""
        offset = self.offset(index)
        if len(data) > self.room:
            raise ValueError(f"{len(data)} bytes do not fit a frame of {self.room}")
        self.map[offset + NL_MMAP_HDRLEN : offset + NL_MMAP_HDRLEN + len(data)] = data
        NM_LEN.pack_into(self.map, offset + NM_LEN_OFFSET, len(data) if length is None else length)
        STATUS.pack_into(self.map, offset, status)

    def put(self, data: bytes) -> int:
        """Queue one frame's worth of messages at our head; its index."""
        index = self.head
        if self.frame(index).status != NL_MMAP_STATUS_UNUSED:
            raise RingFull(f"TX frame {index} is not UNUSED")
        self.write(index, data)
        self.head = (index + 1) % self.req.frame_nr
        return index

    def send(self, dest: tuple[int, int] | None = None, flags: int = 0) -> int:
        """send(fd, NULL, 0) or sendto(fd, NULL, 0, dest): the bytes sent."""
        if dest is None:
            return self.sock.send(b"", flags)
        return self.sock.sendto(b"", flags, dest)

    def writable(self, timeout: float = 0.0) -> bool:
        """poll() for POLLOUT: is the kernel's TX head frame UNUSED, VALID or undefined?"""
        poller = select.poll()
        poller.register(self.sock, select.POLLOUT)
        return bool(poller.poll(int(timeout * 1000)))


@dataclass
class Rings:
    """Both rings of a socket in its single mapping: RX first, then TX."""

    map: mmap.mmap
    rx: RxRing | None
    tx: TxRing | None

    def close(self) -> None:
        self.map.close()


def open_rings(sock: socket.socket, rx: RingRequest | None, tx: RingRequest | None) -> Rings:
    """Set up the rings asked for and map them with one mmap()."""
    if rx is not None:
        set_ring(sock, NETLINK_RX_RING, rx)
    if tx is not None:
        set_ring(sock, NETLINK_TX_RING, tx)
    rx_size = rx.size if rx is not None else 0
    mapping = map_socket(sock, rx_size + (tx.size if tx is not None else 0))
    return Rings(
        map=mapping,
        rx=RxRing(sock, rx, mapping=mapping) if rx is not None else None,
        tx=TxRing(sock, tx, mapping=mapping, base=rx_size) if tx is not None else None,
    )
