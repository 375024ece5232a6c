"""The historical memory-mapped netlink ABI (include/uapi/linux/netlink.h)."""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

SOL_NETLINK = 270
NETLINK_RX_RING = 6
NETLINK_TX_RING = 7

NL_MMAP_STATUS_UNUSED = 0
NL_MMAP_STATUS_RESERVED = 1
NL_MMAP_STATUS_VALID = 2
NL_MMAP_STATUS_COPY = 3
NL_MMAP_STATUS_SKIP = 4

# struct nl_mmap_hdr { __u32 nm_status, nm_len, nm_group, nm_pid, nm_uid, nm_gid; }
NL_MMAP_HDR = struct.Struct("=IIIIII")
NL_MMAP_MSG_ALIGNMENT = 4
NL_MMAP_HDRLEN = (NL_MMAP_HDR.size + NL_MMAP_MSG_ALIGNMENT - 1) & ~(NL_MMAP_MSG_ALIGNMENT - 1)


@dataclass(frozen=True)
class RingRequest:
    """struct nl_mmap_req: the geometry of one ring."""

    block_size: int
    block_nr: int
    frame_size: int
    frame_nr: int

    _FORMAT = struct.Struct("=IIII")

    def pack(self) -> bytes:
        return self._FORMAT.pack(self.block_size, self.block_nr, self.frame_size, self.frame_nr)

    @classmethod
    def unpack(cls, data: bytes) -> RingRequest:
        return cls(*cls._FORMAT.unpack(data[: cls._FORMAT.size]))

    @property
    def size(self) -> int:
        return self.block_size * self.block_nr


def set_ring(sock: socket.socket, option: int, req: RingRequest) -> None:
    """setsockopt(SOL_NETLINK, NETLINK_RX_RING or NETLINK_TX_RING, req); raises OSError."""
    sock.setsockopt(SOL_NETLINK, option, req.pack())

NETLINK_ADD_MEMBERSHIP = 1
NETLINK_NO_ENOBUFS = 5
NETLINK_RING_STATS = 13  # addition of this series: getsockopt only


@dataclass(frozen=True)
class RingStats:
    """struct nl_mmap_stats: what the rings of one socket did."""

    rx_frames: int
    rx_copies: int
    rx_drops: int
    tx_frames: int
    tx_errors: int

    _FORMAT = struct.Struct("=QQQQQ")


def get_ring(sock: socket.socket, option: int = NETLINK_RX_RING) -> RingRequest:
    """getsockopt(SOL_NETLINK, NETLINK_RX_RING or NETLINK_TX_RING): the current
    geometry, zeros without a ring."""
    return RingRequest.unpack(sock.getsockopt(SOL_NETLINK, option, 16))


def ring_stats(sock: socket.socket) -> RingStats:
    """getsockopt(SOL_NETLINK, NETLINK_RING_STATS)."""
    data = sock.getsockopt(SOL_NETLINK, NETLINK_RING_STATS, RingStats._FORMAT.size)
    return RingStats(*RingStats._FORMAT.unpack(data))
