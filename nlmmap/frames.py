"""Frames of one ring inside a socket's mapping: geometry and status words.

Frame i lives in block i // frames_per_block at offset
(i % frames_per_block) * frame_size, so a block can end in a gap.  The RX
ring starts at offset 0 of the mapping and the TX ring right after it.
"""

from __future__ import annotations

import ctypes
import mmap
import socket
import struct
from dataclasses import dataclass

from nlmmap.abi import NL_MMAP_HDR, NL_MMAP_HDRLEN, RingRequest

STATUS = struct.Struct("=I")


@dataclass(frozen=True)
class Frame:
    """One frame as user space sees it: where it is and what its header says."""

    index: int
    offset: int
    status: int
    length: int
    group: int
    pid: int
    uid: int
    gid: int


def map_socket(sock: socket.socket, size: int) -> mmap.mmap:
    """mmap(NULL, size, PROT_READ|PROT_WRITE, MAP_SHARED, fd, 0)."""
    return mmap.mmap(sock.fileno(), size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)


def is_mapped_here(mapping: mmap.mmap) -> bool:
    """Does this process have the pages of mapping?  A forked child holds the
    parent's mmap object whether or not the kernel copied the mapping into it;
    /proc/self/maps says which, without touching a page."""
    address = ctypes.addressof(ctypes.c_char.from_buffer(mapping))
    with open("/proc/self/maps", encoding="ascii") as maps:
        for line in maps:
            start, end = (int(bound, 16) for bound in line.split(maxsplit=1)[0].split("-"))
            if start <= address < end:
                return True
    return False


class FrameRing:
    """One ring's frames at base in a mapping of the socket."""

    def __init__(self, sock: socket.socket, req: RingRequest, mapping: mmap.mmap,
                 base: int, owns_map: bool) -> None:
        self.sock = sock
        self.req = req
        self.map = mapping
        self.base = base
        self.owns_map = owns_map
        self.head = 0

    @property
    def frames_per_block(self) -> int:
        return self.req.block_size // self.req.frame_size

    @property
    def room(self) -> int:
        """Message bytes one frame holds."""
        return self.req.frame_size - NL_MMAP_HDRLEN

    def offset(self, index: int) -> int:
        block, slot = divmod(index, self.frames_per_block)
        return self.base + block * self.req.block_size + slot * self.req.frame_size

    def frame(self, index: int) -> Frame:
        offset = self.offset(index)
        return Frame(index, offset, *NL_MMAP_HDR.unpack_from(self.map, offset))

    def set_status(self, index: int, status: int) -> None:
        STATUS.pack_into(self.map, self.offset(index), status)

    def statuses(self) -> list[int]:
        return [self.frame(i).status for i in range(self.req.frame_nr)]

    def close(self) -> None:
        if self.owns_map:
            self.map.close()
