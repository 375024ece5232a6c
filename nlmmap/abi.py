"""The historical memory-mapped netlink ABI (include/uapi/linux/netlink.h)."""

from __future__ import annotations

import mmap
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

# The running kernel's page size (4 KiB on x86_64, 64 KiB on arm64 with
# CONFIG_ARM64_64K_PAGES): a ring block is a multiple of it, and ring
# memory counts against RLIMIT_MEMLOCK in these pages.  The one definition
# the clients, the model and the tests use.
PAGE_SIZE = mmap.PAGESIZE


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


def _round_up(value: int, unit: int) -> int:
    return -(-value // unit) * unit


def ring_request(frame_size: int, frames: int = 1, per_block: int | None = None) -> RingRequest:
    """A valid geometry for this kernel's page size with at least `frames`
    frames, for a test to state what it needs instead of block sizes.

    Without per_block the frame size is exact: a block is the fewest pages
    that hold one frame and takes as many frames as fit, so larger pages
    give more frames (a test counts them with req.frame_nr).  With
    per_block every block holds exactly that many frames, and the ring
    exactly `frames` (rounded up to whole blocks): frame_size is then the
    least frame size, grown on larger pages just enough that no further
    frame fits a block (which can end in a gap).  On 4 KiB pages both give
    the geometries the suites were written with."""
    if frame_size < NL_MMAP_HDRLEN or frame_size % NL_MMAP_MSG_ALIGNMENT or frames < 1 or (per_block or 1) < 1:
        raise ValueError(f"no ring of {frames} frames of {frame_size} bytes")
    block_size = _round_up(frame_size * (per_block or 1), PAGE_SIZE)
    if per_block is None:
        per_block = block_size // frame_size
    else:
        frame_size = max(frame_size, _round_up(block_size // (per_block + 1) + 1, NL_MMAP_MSG_ALIGNMENT))
        if block_size // frame_size != per_block:
            raise ValueError(f"no frame size puts exactly {per_block} frames in a block of {block_size} bytes")
    block_nr = -(-frames // per_block)
    return RingRequest(block_size, block_nr, frame_size, block_nr * per_block)


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
