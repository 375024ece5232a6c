"""The rules of memory-mapped netlink as an executable model.

A pure-Python netlink socket with rings, written from the rules of
docs/design.md, not from the kernel's code paths.  The randomized test
(test_model_random.py) applies the same operations to a real socket and to
this model and compares every observable after every step.  Each rule of the
design doc is a function or an assertion here; the comments name the rule.

Where the kernel may decide either way (whether a receive buffer that holds
something has room for one more skb depends on skb truesize), the caller
passes what the kernel did, and the model checks that the rules allowed it.
"""

from __future__ import annotations

import errno
import functools
import select
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from nlmmap.abi import (
    NL_MMAP_HDRLEN,
    NL_MMAP_MSG_ALIGNMENT,
    NL_MMAP_STATUS_COPY,
    NL_MMAP_STATUS_RESERVED,
    NL_MMAP_STATUS_SKIP,
    NL_MMAP_STATUS_UNUSED,
    NL_MMAP_STATUS_VALID,
    PAGE_SIZE,
    RingRequest,
)
from nlmmap.ring import NLMSG_HDR

RING_MAX_SIZE = 1 << 30  # 64-bit kernels
BATCH = 16  # work units per hold of the receive queue lock (rule 14)
COPY_UNIT = 4096  # bytes copied per extra work unit: 4 KiB (SZ_4K), whatever the page size
COPY_MAX = 128 << 10  # the most one frame takes under the lock, whatever its size (rule 14)
NLMSG_HDRLEN = NLMSG_HDR.size

# A delivery whose fate the rules leave to the kernel: called when the
# receiver holds skbs, it says whether the kernel refused this one.
Refused = Callable[[], bool]


def align(length: int) -> int:
    return (length + NL_MMAP_MSG_ALIGNMENT - 1) & ~(NL_MMAP_MSG_ALIGNMENT - 1)


def geometry_error(req: RingRequest) -> int:
    """Rule 6: 0 for a ring setsockopt() accepts, else its errno."""
    if req.block_nr == 0:
        return errno.EINVAL if req.frame_nr else 0
    if req.block_size == 0 or req.block_size % PAGE_SIZE:
        return errno.EINVAL
    if req.frame_size < NL_MMAP_HDRLEN or req.frame_size % NL_MMAP_MSG_ALIGNMENT:
        return errno.EINVAL
    per_block = req.block_size // req.frame_size
    if per_block == 0 or per_block * req.block_nr != req.frame_nr:
        return errno.EINVAL
    if req.block_size * req.block_nr > RING_MAX_SIZE:
        return errno.EINVAL
    return 0


def whole_messages(data: bytes, room: int, limit: int) -> int:
    """Bytes at the front of data for a frame of room bytes (rule 3: a
    message is never split; 0 means the skb goes by COPY).  The first
    message goes if it fits the frame, more only while they end within
    limit, the copy budget left in the lock hold (rule 14).  Bytes that do
    not parse as messages go whole if they fit the frame.  A frame takes
    COPY_MAX bytes at most, whatever its size (rule 14)."""
    room = min(room, COPY_MAX)
    if len(data) <= min(room, limit):
        return len(data)
    off = 0
    while len(data) - off >= NLMSG_HDRLEN:
        length = NLMSG_HDR.unpack_from(data, off)[0]
        if length < NLMSG_HDRLEN or length > len(data) - off:
            break
        step = min(align(length), len(data) - off)
        if off + step > room or (off and off + step > limit):
            break
        off += step
    if off == 0 and len(data) <= room:
        return len(data)
    return off


def tx_messages_ok(data: bytes) -> bool:
    """Rule 6: a TX frame carries whole netlink messages, as one sendmsg()."""
    off = 0
    while True:
        if len(data) - off < NLMSG_HDRLEN:
            return False
        length = NLMSG_HDR.unpack_from(data, off)[0]
        if length < NLMSG_HDRLEN or length > len(data) - off:
            return False
        off += min(align(length), len(data) - off)
        if off >= len(data):
            return True


@dataclass
class Skb:
    data: bytes  # what is left of it: a ring consumes split skbs from the front
    group: int
    pid: int


@dataclass
class FrameState:
    """A frame's header and message as the kernel last wrote them."""

    status: int = NL_MMAP_STATUS_UNUSED
    length: int = 0
    group: int = 0
    pid: int = 0
    data: bytes = b""


@dataclass
class Ring:
    req: RingRequest
    frames: list[FrameState] = field(default_factory=list)
    head: int = 0  # the kernel's next frame
    seq: int = 0  # frames the kernel's head has passed, ever
    tail: int = 0  # poll()'s oldest frame not known to be handed back
    tail_seq: int = 0
    skipped: int = 0  # consecutive SKIP frames the head stepped over (reset by a drain), at most frame_nr
    done: int = 0  # counters: frames sent or published, COPY frames, TX errors
    copies: int = 0
    errors: int = 0

    def __post_init__(self) -> None:
        self.frames = [FrameState() for _ in range(self.req.frame_nr)]

    @property
    def room(self) -> int:
        return self.req.frame_size - NL_MMAP_HDRLEN

    def advance(self) -> None:
        self.head = (self.head + 1) % self.req.frame_nr
        self.seq += 1


class Socket:
    """One netlink socket: its receive side, its RX and TX rings, its mapping."""

    def __init__(self, pid: int = 0) -> None:
        self.pid = pid
        self.rx: Ring | None = None
        self.tx: Ring | None = None
        self.backlog: deque[Skb] = deque()  # skbs waiting for RX frames
        self.queue: deque[Skb] = deque()  # sk_receive_queue: what recvmsg() returns
        self.err = 0
        self.congested = False
        self.no_enobufs = False
        self.drops = 0
        self.maps = 0
        self.tx_data: dict[int, bytearray] = {}  # TX frame -> its message area as user space wrote it

    # --- the receive buffer (rule 2) ---

    def holds(self) -> bool:
        """Does the receive buffer hold anything? Only then may it refuse."""
        return bool(self.backlog or self.queue)

    def accepts(self, refused: Refused) -> bool:
        """netlink_attachskb() / netlink_broadcast_deliver(): a congested
        socket refuses, an empty one accepts, otherwise the kernel's choice."""
        if self.congested:
            return False
        if not self.holds():
            return True
        return not refused()

    def overrun(self) -> None:
        """A multicast that did not fit: counted, and ENOBUFS once per congestion."""
        if not self.no_enobufs and not self.congested:
            self.congested = True
            self.err = errno.ENOBUFS
        self.drops += 1

    def wake(self) -> None:
        """netlink_rcv_wake(): congestion ends when no skb waits, in the
        receive queue or in the ring's backlog."""
        if not self.queue and not self.backlog:
            self.congested = False

    # --- delivery (rules 1-3, 13, 14) ---

    def unicast(self, skb: Skb, refused: Refused) -> bool:
        """A unicast that may not wait: False is EAGAIN for the sender."""
        if not self.accepts(refused):
            return False
        self.enqueue(skb)
        return True

    def multicast(self, skb: Skb, refused: Refused) -> None:
        if self.accepts(refused):
            self.enqueue(Skb(skb.data, skb.group, skb.pid))  # a private copy (rule 13)
        else:
            self.overrun()

    def enqueue(self, skb: Skb) -> None:
        """Into the ring's backlog and one batch of frames, or the receive queue."""
        if self.rx is None:
            self.queue.append(skb)
            return
        self.backlog.append(skb)
        self.batch()

    def head_frame(self, ring: Ring, budget: list[int]) -> FrameState | None:
        """Rule 1: the kernel writes only an UNUSED head frame; it steps over
        SKIP frames, one unit each (rule 14)."""
        while budget[0]:
            frame = ring.frames[ring.head]
            if frame.status == NL_MMAP_STATUS_UNUSED:
                ring.skipped = 0
                return frame
            if frame.status != NL_MMAP_STATUS_SKIP:
                ring.skipped = 0  # a frame user space holds: not a lap of SKIP
                return None
            budget[0] -= 1
            ring.advance()
            ring.skipped = min(ring.skipped + 1, ring.req.frame_nr)
        return None

    def batch(self) -> bool:
        """One hold of the queue lock: at most BATCH units (rule 14); frames
        in delivery order (rule 4).  True if the budget ran out with work left."""
        ring = self.rx
        budget = [BATCH]
        while ring is not None and self.backlog:
            skb = self.backlog[0]
            frame = self.head_frame(ring, budget)
            if frame is None:
                return budget[0] == 0
            budget[0] -= 1
            length = whole_messages(skb.data, ring.room, max(budget[0], 1) * COPY_UNIT)
            if length == 0 and skb.data:
                self.queue.append(self.backlog.popleft())  # rule 3: COPY, in order
                self.publish(ring, frame, skb, len(skb.data), b"", NL_MMAP_STATUS_COPY)
                continue
            self.publish(ring, frame, skb, length, skb.data[:length], NL_MMAP_STATUS_VALID)
            budget[0] -= min(budget[0], length // COPY_UNIT)
            skb.data = skb.data[length:]
            if not skb.data:
                self.backlog.popleft()
        return False

    @staticmethod
    def publish(ring: Ring, frame: FrameState, skb: Skb, length: int, data: bytes, status: int) -> None:
        frame.status, frame.length, frame.group, frame.pid, frame.data = status, length, skb.group, skb.pid, data
        ring.advance()
        if status == NL_MMAP_STATUS_COPY:
            ring.copies += 1
        else:
            ring.done += 1

    def drain(self) -> None:
        """recvmsg() and setsockopt() move the backlog in batches,
        for one lap of the ring at most (rule 14: the lock is dropped between
        batches, and a batch that ran out of budget moved the head)."""
        ring = self.rx
        if ring is None:
            return
        start = ring.seq
        while True:
            ring.skipped = 0  # user space may have handed back a frame behind the head
            if not self.batch() or ring.seq - start >= ring.req.frame_nr:
                break

    def kick(self) -> None:
        if self.rx is not None:
            self.drain()
            self.wake()

    # --- what user space calls ---

    def recv(self) -> bytes | int:
        """recvmsg(MSG_DONTWAIT): bytes, or an errno (a pending error first)."""
        self.kick()
        if self.err:
            err, self.err = self.err, 0
            self.wake()
            return err
        if not self.queue:
            self.wake()
            return errno.EAGAIN
        data = self.queue.popleft().data
        self.wake()
        return data

    def kick_read(self) -> int:
        """recvmsg() of zero bytes on a socket with an RX ring (rule 18):
        moves the ring on as every recvmsg() does first, takes no message;
        0 or the pending error.  Without an RX ring it is any recvmsg()
        with no room: it takes the next message (0 bytes) or says EAGAIN."""
        if self.rx is None:
            got = self.recv()
            return got if isinstance(got, int) else 0
        self.kick()
        if self.err:
            err, self.err = self.err, 0
            self.wake()
            return err
        self.wake()
        return 0

    def rx_waiting(self) -> bool:
        """Rule 11: POLLIN for a VALID or COPY frame the kernel's head passed
        since poll() last looked; an idle poll() looks at no frame.  At most
        BATCH frames per call (rule 18: poll() is bounded); a walk that
        stops there says POLLIN."""
        ring = self.rx
        if ring is None:
            return False
        nr = ring.req.frame_nr
        pending = ring.seq - ring.tail_seq
        if pending > nr:
            ring.tail, ring.tail_seq, pending = ring.head, ring.seq - nr, nr
        for budget in range(BATCH, BATCH - pending, -1):
            if budget == 0:
                return True
            if ring.frames[ring.tail].status in (NL_MMAP_STATUS_VALID, NL_MMAP_STATUS_COPY):
                return True
            ring.tail = (ring.tail + 1) % nr
            ring.tail_seq += 1
        return False

    def poll(self) -> int:
        """The POLLIN, POLLERR and POLLOUT bits of poll().  It moves one
        batch of the backlog into released frames, as a delivery does, and
        never a dump round (rule 18: whoever polls may not be the reader);
        it ends a congestion as recvmsg() does.  POLLIN also when the batch
        ran out with skbs left, so the poller comes back for the next; after
        a lap of SKIP frames (user space holds them all) it steps no more
        until a recvmsg() (rule 18)."""
        ring = self.rx
        more = False
        if ring is not None and self.backlog and ring.skipped < ring.req.frame_nr:
            more = self.batch()
            if ring.skipped >= ring.req.frame_nr:
                more = False
        if ring is not None:
            self.wake()
        mask = select.POLLERR if self.err else 0
        if self.queue or self.rx_waiting() or more:
            mask |= select.POLLIN
        # writable (rule 11): the TX head is free to fill, or a send has
        # something to do: a VALID frame (after EAGAIN nothing else would
        # ever set it free) or an undefined status to report with EINVAL
        head = None if self.tx is None else self.tx.frames[self.tx.head].status
        if head is None or head in (NL_MMAP_STATUS_UNUSED, NL_MMAP_STATUS_VALID) or head > NL_MMAP_STATUS_SKIP:
            mask |= select.POLLOUT
        return mask

    def set_ring(self, req: RingRequest, tx: bool) -> int:
        """setsockopt(NETLINK_RX_RING / NETLINK_TX_RING): 0 or an errno;
        like recvmsg(), it ends a congestion the receive queue no longer has."""
        err = self.swap_ring(req, tx)
        self.wake()
        return err

    def set_no_enobufs(self, on: bool) -> None:
        """NETLINK_NO_ENOBUFS: turning it on ends a congestion."""
        self.no_enobufs = on
        if on:
            self.congested = False

    def swap_ring(self, req: RingRequest, tx: bool) -> int:
        err = geometry_error(req)
        if err:
            return err
        if self.maps:
            return errno.EBUSY
        ring = Ring(req) if req.block_nr else None
        if tx:
            self.tx = ring
            self.tx_data = {}
            return 0
        if ring is not None:  # rule 3: what was queued goes first, in order
            self.backlog = deque(list(self.queue) + list(self.backlog))
            self.queue.clear()
        else:
            self.queue.extend(self.backlog)
            self.backlog.clear()
        self.rx = ring
        self.drain()
        return 0

    def map(self, size: int) -> int:
        """mmap() of exactly both rings, RX first."""
        total = sum(r.req.size for r in (self.rx, self.tx) if r is not None)
        if total == 0 or size != total:
            return errno.EINVAL
        self.maps += 1
        return 0

    def unmap(self) -> None:
        assert self.maps > 0
        self.maps -= 1

    def user_status(self, ring: Ring, index: int, status: int) -> None:
        """User space may store any value into any status word at any time."""
        ring.frames[index].status = status

    def tx_fill(self, index: int, data: bytes, length: int, status: int) -> None:
        assert self.tx is not None
        frame = self.tx.frames[index]
        area = self.tx_data.setdefault(index, bytearray(self.tx.room))
        area[: len(data)] = data
        frame.length, frame.status = length, status

    def tx_send(self, dest: Socket, refused: Callable[[int], bool]) -> int:
        """A send of zero bytes to dest's port (rules 5, 6, 15): bytes sent or
        -errno.  refused(frame) says whether the kernel left that frame VALID
        because the receiver's buffer was full (only asked when it holds
        something)."""
        ring = self.tx
        if ring is None:
            return -errno.ENODATA
        sent, err, taken = 0, 0, False
        for _ in range(ring.req.frame_nr):
            index = ring.head
            frame = ring.frames[index]
            if frame.status != NL_MMAP_STATUS_VALID:
                if frame.status > NL_MMAP_STATUS_SKIP and not taken:
                    # undefined status: that frame is left alone; after
                    # sent frames their bytes come first (rule 5)
                    err = -errno.EINVAL
                break
            length = frame.length  # read once: the copy is what is checked and sent (rule 5)
            data = bytes(self.tx_data.get(index, bytearray(ring.room))[:length])
            if length < NLMSG_HDRLEN or length > ring.room or not tx_messages_ok(data):
                err = -errno.EINVAL
            elif dest.unicast(Skb(data, 0, self.pid), functools.partial(refused, index)):
                err = length
            else:
                err = -errno.EAGAIN
                break  # rule 15: the frame stays VALID for the next send
            frame.status = NL_MMAP_STATUS_UNUSED
            ring.advance()
            taken = True
            if err < 0:
                ring.errors += 1
                break
            ring.done += 1
            sent += err
            err = 0
        if sent and err == -errno.EAGAIN:
            return sent
        return err if err < 0 else sent


# Status values user space writes in the randomized test, hostile ones too.
USER_STATUSES = (
    NL_MMAP_STATUS_UNUSED,
    NL_MMAP_STATUS_RESERVED,
    NL_MMAP_STATUS_VALID,
    NL_MMAP_STATUS_COPY,
    NL_MMAP_STATUS_SKIP,
    7,
)
