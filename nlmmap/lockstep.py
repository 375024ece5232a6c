"""Operations applied in lock step to real sockets and to the model.

Two NETLINK_USERSOCK sockets: a receiver (RX ring, set up, replaced, torn
down, mapped and unmapped at will, member of group 1) and a sender (a fixed
TX ring, mapped).  Every operation runs on both the kernel and the model
(nlmmap.model); check() then compares every observable: ring geometry,
every frame header and message, the counters, the TX statuses.  Each step
is recorded, so a failing sequence can be written out and replayed.
"""

from __future__ import annotations

import errno
import json
import mmap
import os
import select
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nlmmap.abi import (
    NETLINK_ADD_MEMBERSHIP,
    NETLINK_NO_ENOBUFS,
    NETLINK_RX_RING,
    NETLINK_TX_RING,
    NL_MMAP_HDRLEN,
    NL_MMAP_STATUS_COPY,
    NL_MMAP_STATUS_UNUSED,
    NL_MMAP_STATUS_VALID,
    PAGE_SIZE,
    SOL_NETLINK,
    RingRequest,
    get_ring,
    ring_request,
    ring_stats,
    set_ring,
)
from nlmmap.frames import FrameRing, map_socket
from nlmmap.messages import NETLINK_USERSOCK
from nlmmap.model import Skb, Socket
from nlmmap.ring import NLMSG_HDR, recv_zero
from nlmmap.tx import TxRing

GROUP = 1
# 16 frames (of 512 bytes on 4 KiB pages, larger on larger pages)
TX_REQ = ring_request(512, 16, per_block=8)
TX_ROOM = TX_REQ.frame_size - NL_MMAP_HDRLEN
POLL_BITS = select.POLLIN | select.POLLERR | select.POLLOUT

# RX geometries the random test picks from (a replay names them by index):
# valid ones (frames with no room, gaps at the end of blocks, frames beyond
# the 4 KiB copy unit) and invalid ones, each breaking the one rule it
# names on any page size; the all-zero request tears the ring down.  Where
# a replay depends on the number of frames, larger pages keep it and grow
# the frames; elsewhere they keep the frame size.
RX_REQS = (
    ring_request(256, 16, per_block=16),
    ring_request(96, 84, per_block=42),
    ring_request(24, 170),
    ring_request(PAGE_SIZE, 1),
    ring_request(1024, 32),
    ring_request(2048, 24),
    ring_request(16384, 2),
    ring_request(8192, 16, per_block=8),
    RingRequest(0, 0, 0, 0),
    RingRequest(PAGE_SIZE - 96, 1, 256, (PAGE_SIZE - 96) // 256),  # block not a page
    RingRequest(PAGE_SIZE, 1, 250, PAGE_SIZE // 250),  # frame not aligned
    RingRequest(PAGE_SIZE, 1, 256, PAGE_SIZE // 256 + 1),  # frame count does not match
    RingRequest(PAGE_SIZE, 1, 16, PAGE_SIZE // 16),  # frame smaller than its header
    RingRequest(0, 0, 256, 16),  # frames without blocks
    RingRequest(1 << 20, 2048, 4096, 1 << 19),  # 2 GiB
)


def messages(sizes: list[int], seq: int, garbage: bool = False) -> bytes:
    """Netlink messages of the given sizes (the last one unpadded); with
    garbage, nlmsg_len of the first claims more than there is."""
    out = b""
    for n, size in enumerate(sizes):
        size = max(size, NLMSG_HDR.size)
        body = bytes([(seq + n) & 0xFF]) * (size - NLMSG_HDR.size)
        out += NLMSG_HDR.pack(size, 0x10 + n, 0, seq, 0) + body
        if n + 1 < len(sizes):
            out += b"\0" * (-size % 4)
    if garbage:
        out = NLMSG_HDR.pack(len(out) + 64, 0x10, 0, seq, 0) + out[NLMSG_HDR.size :]
    return out


def _errno_of(call: Callable[[], Any]) -> tuple[int, Any]:
    try:
        return 0, call()
    except OSError as err:
        return err.errno or -1, None


class Lockstep:
    """The kernel's sockets and the model's, driven by the same steps."""

    def __init__(self) -> None:
        self.steps: list[tuple[str, dict[str, Any]]] = []
        self.seq = 0
        self.pid = os.getpid()
        self.sender = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_USERSOCK)
        self.sender.bind((0, 0))
        self.tx = TxRing(self.sender, TX_REQ)
        self.model_sender = Socket(self.pid)
        assert self.model_sender.set_ring(TX_REQ, tx=True) == 0
        self.model_sender.map(TX_REQ.size)
        self._open_receiver()

    def _open_receiver(self) -> None:
        self.receiver = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_USERSOCK)
        self.receiver.bind((0, 0))
        self.receiver.setsockopt(SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, GROUP)
        self.port = self.receiver.getsockname()[0]
        self.rx_map: mmap.mmap | None = None
        self.model = Socket()

    def close(self) -> None:
        if self.rx_map is not None:
            self.rx_map.close()
        self.receiver.close()
        self.tx.close()
        self.sender.close()

    # --- steps ---

    def do(self, name: str, **args: Any) -> None:
        """Run one step on both sides and compare."""
        self.steps.append((name, args))
        getattr(self, "op_" + name)(**args)
        self.check()

    def op_set_rx(self, which: int) -> None:
        req = RX_REQS[which % len(RX_REQS)]
        err, _ = _errno_of(lambda: set_ring(self.receiver, NETLINK_RX_RING, req))
        assert err == self.model.set_ring(req, tx=False), f"setsockopt(RX_RING, {req})"

    def op_map(self, wrong_size: bool) -> None:
        if self.rx_map is not None:
            return
        ring = self.model.rx
        size = (ring.req.size if ring else 0) + (PAGE_SIZE if wrong_size else 0)
        err, mapping = _errno_of(lambda: map_socket(self.receiver, size or PAGE_SIZE))
        assert err == self.model.map(size), f"mmap({size})"
        self.rx_map = mapping

    def op_unmap(self) -> None:
        if self.rx_map is None:
            return
        self.rx_map.close()
        self.rx_map = None
        self.model.unmap()

    def op_reopen(self) -> None:
        self.op_unmap()
        self.receiver.close()
        self._open_receiver()

    def op_unicast(self, sizes: list[int], garbage: bool) -> None:
        self.seq += 1
        data = messages(sizes, self.seq, garbage)
        err, _ = _errno_of(lambda: self.sender.sendto(data, socket.MSG_DONTWAIT, (self.port, 0)))
        assert err in (0, errno.EAGAIN), f"unicast: {os.strerror(err)}"
        accepted = self.model.unicast(Skb(data, 0, self.pid), refused=lambda: err == errno.EAGAIN)
        assert accepted == (err == 0), "unicast refused" if err else "unicast accepted"

    def op_multicast(self, sizes: list[int]) -> None:
        self.seq += 1
        data = messages(sizes, self.seq)
        before = ring_stats(self.receiver).rx_drops
        err, _ = _errno_of(lambda: self.sender.sendto(data, socket.MSG_DONTWAIT, (0, 1 << (GROUP - 1))))
        assert err == errno.ECONNREFUSED, f"multicast: {os.strerror(err)}"  # no port 0 in USERSOCK
        dropped = ring_stats(self.receiver).rx_drops > before
        self.model.multicast(Skb(data, GROUP, self.pid), refused=lambda: dropped)

    def op_user_status(self, frame: int, status: int) -> None:
        ring = self.model.rx
        if ring is None or self.rx_map is None:
            return
        index = frame % ring.req.frame_nr
        self._rx_frames().set_status(index, status)
        self.model.user_status(ring, index, status)

    def op_release_all(self) -> None:
        """What a reader does: hand back every frame it was given."""
        ring = self.model.rx
        if ring is None or self.rx_map is None:
            return
        frames = self._rx_frames()
        for index, frame in enumerate(ring.frames):
            if frame.status in (NL_MMAP_STATUS_VALID, NL_MMAP_STATUS_COPY):
                frames.set_status(index, NL_MMAP_STATUS_UNUSED)
                self.model.user_status(ring, index, NL_MMAP_STATUS_UNUSED)

    def op_recv(self) -> None:
        err, data = _errno_of(lambda: self.receiver.recv(1 << 16, socket.MSG_DONTWAIT))
        want = self.model.recv()
        got = err if err else data
        assert got == want, f"recvmsg(): {_show(got)}, model {_show(want)}"

    def op_kick(self) -> None:
        """A zero-length read: moves the ring on, takes no message (rule 18)."""
        err, got_bytes = _errno_of(lambda: recv_zero(self.receiver))
        want = self.model.kick_read()
        got = err if err else got_bytes
        assert got == want, f"recvmsg() of 0 bytes: {_show(got)}, model {_show(want)}"

    def _poll_mask(self) -> int:
        poller = select.poll()
        poller.register(self.receiver, POLL_BITS)
        events = poller.poll(0)
        return events[0][1] & POLL_BITS if events else 0

    def op_poll(self) -> None:
        got = self._poll_mask()
        want = self.model.poll()
        assert got == want, f"poll(): {got:#x}, model {want:#x}"

    def op_poll_other(self) -> None:
        """poll() from a second task that never reads: it sees what the
        reader's poll() would and moves nothing (rule 18)."""
        masks: list[int] = []
        poller = threading.Thread(target=lambda: masks.append(self._poll_mask()))
        poller.start()
        poller.join()
        want = self.model.poll()
        assert masks == [want], f"poll() in another task: {masks}, model {want:#x}"

    def op_no_enobufs(self, on: bool) -> None:
        self.receiver.setsockopt(SOL_NETLINK, NETLINK_NO_ENOBUFS, int(on))
        self.model.set_no_enobufs(on)

    def op_rcvbuf(self, size: int) -> None:
        self.receiver.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)

    def op_tx_fill(self, frame: int, sizes: list[int], length: int | None, status: int) -> None:
        index = frame % TX_REQ.frame_nr
        self.seq += 1
        data = messages(sizes, self.seq)[: self.tx.room]
        nm_len = len(data) if length is None else length
        self.tx.write(index, data, status=status, length=nm_len)
        self.model_sender.tx_fill(index, data, nm_len, status)

    def op_tx_send(self) -> None:
        err, sent = _errno_of(lambda: self.sender.sendto(b"", socket.MSG_DONTWAIT, (self.port, 0)))
        after = self.tx.statuses()
        want = self.model_sender.tx_send(self.model, refused=lambda i: after[i] == NL_MMAP_STATUS_VALID)
        got = -err if err else sent
        assert got == want, f"TX send: {got}, model {want}"

    # --- observables ---

    def _rx_frames(self) -> FrameRing:
        assert self.model.rx is not None and self.rx_map is not None
        return FrameRing(self.receiver, self.model.rx.req, self.rx_map, base=0, owns_map=False)

    def check(self) -> None:
        ring = self.model.rx
        assert get_ring(self.receiver, NETLINK_RX_RING) == (ring.req if ring else RingRequest(0, 0, 0, 0))
        stats = ring_stats(self.receiver)
        model_rx = (ring.done, ring.copies) if ring else (0, 0)
        got_rx, want_rx = (stats.rx_frames, stats.rx_copies, stats.rx_drops), (*model_rx, self.model.drops)
        assert got_rx == want_rx, f"RX frames, copies, drops: {got_rx}, model {want_rx}"
        if ring is not None and self.rx_map is not None:
            frames = self._rx_frames()
            for index, want in enumerate(ring.frames):
                got = frames.frame(index)
                where = f"RX frame {index} of {ring.req}"
                got_hdr = (got.status, got.length, got.group, got.pid)
                want_hdr = (want.status, want.length, want.group, want.pid)
                assert got_hdr == want_hdr, f"{where}: status, nm_len, nm_group, nm_pid {got_hdr}, model {want_hdr}"
                if want.data:
                    start = got.offset + NL_MMAP_HDRLEN
                    assert bytes(frames.map[start : start + got.length]) == want.data, f"{where}: message"
        tx = self.model_sender.tx
        assert tx is not None
        got_st, want_st = self.tx.statuses(), [f.status for f in tx.frames]
        assert got_st == want_st, f"TX statuses {got_st}, model {want_st}"
        stats = ring_stats(self.sender)
        got_tx, want_tx = (stats.tx_frames, stats.tx_errors), (tx.done, tx.errors)
        assert got_tx == want_tx, f"TX frames, errors: {got_tx}, model {want_tx}"
        assert get_ring(self.sender, NETLINK_TX_RING) == TX_REQ

    # --- replay files ---

    def save(self, path: Path) -> None:
        """Write the steps so far as a replay file (kept if shorter than one there)."""
        if path.exists() and len(json.loads(path.read_text())["steps"]) <= len(self.steps):
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"steps": [[n, a] for n, a in self.steps]}, indent=1) + "\n")


def replay(path: Path) -> None:
    """Run the steps of a replay file against fresh sockets and the model."""
    lock = Lockstep()
    try:
        for name, args in json.loads(path.read_text())["steps"]:
            lock.do(name, **args)
    finally:
        lock.close()


def _show(value: object) -> str:
    if isinstance(value, bytes):
        return f"{len(value)} bytes {value[:24].hex()}"
    if isinstance(value, int) and value > 0:
        return errno.errorcode.get(value, str(value))
    return repr(value)
