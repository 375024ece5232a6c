"""poll() on a ring socket: POLLIN exactly when a VALID or COPY frame waits,
the queue holds a message or a zero-length read would fill a frame, and no
wakeup is lost with a reader in another thread."""

from __future__ import annotations

import random
import select
import socket
import threading
import time
from collections.abc import Callable

from nlmmap.abi import NL_MMAP_STATUS_COPY, NL_MMAP_STATUS_SKIP, NL_MMAP_STATUS_VALID, ring_request
from nlmmap.messages import message_seq, send_user, user_message
from nlmmap.model import BATCH
from nlmmap.ring import RECV_BUFFER, RxRing

RING = ring_request(1024, 8)
COPIED = 4 * RING.frame_size  # larger than a frame: comes by COPY
TWO = ring_request(2048, 2, per_block=2)  # two frames
WIDE = ring_request(1024, 64)  # more frames than the SKIP test keeps
KEPT = ring_request(1024, 32)  # every frame kept with SKIP


def test_pollin_is_exact(usersock_pair: tuple[socket.socket, socket.socket],
                         make_rx_ring: Callable[..., RxRing]) -> None:
    receiver, sender = usersock_pair
    ring = make_rx_ring(receiver, RING)
    assert not ring.wait(0)

    send_user(sender, receiver, user_message(64, 1))
    assert ring.wait(0)  # a VALID frame
    frame = ring.next_frame()
    assert frame is not None
    ring.release(frame, NL_MMAP_STATUS_SKIP)
    assert not ring.wait(0)  # a kept frame is not waiting
    ring.set_status(frame.index, 0)

    send_user(sender, receiver, user_message(COPIED, 2))
    assert ring.wait(0)  # a COPY frame
    frame = ring.next_frame()
    assert frame is not None
    ring.release(frame)
    assert ring.wait(0)  # the queued message behind it
    assert message_seq(receiver.recv(RECV_BUFFER)) == 2
    assert not ring.wait(0)


def test_a_copy_frame_waits_after_its_message_was_read(usersock_pair: tuple[socket.socket, socket.socket],
                                                       make_rx_ring: Callable[..., RxRing]) -> None:
    """A reader may take a COPY frame's message with recvmsg() before it
    looks at the frame: the frame still waits for its release, so POLLIN
    stays until it is handed back (poll() must count COPY frames, not only
    the receive queue)."""
    receiver, sender = usersock_pair
    ring = make_rx_ring(receiver, RING)
    send_user(sender, receiver, user_message(COPIED, 1))
    assert message_seq(receiver.recv(RECV_BUFFER, socket.MSG_DONTWAIT)) == 1
    assert ring.wait(0), "a COPY frame waits for its release, the queue is empty: no POLLIN"
    frame = ring.next_frame()
    assert frame is not None and frame.status == NL_MMAP_STATUS_COPY
    ring.release(frame)
    assert not ring.wait(0)


def test_no_wakeup_is_lost(usersock_pair: tuple[socket.socket, socket.socket],
                           make_rx_ring: Callable[..., RxRing]) -> None:
    receiver, sender = usersock_pair
    ring = make_rx_ring(receiver, RING)
    count = 300
    got: list[int] = []

    def reader() -> None:
        deadline = time.monotonic() + 60
        while len(got) < count and time.monotonic() < deadline:
            if ring.wait(5.0):  # blocks in poll() with nothing waiting
                got.extend(message_seq(m) for m in ring.messages())

    thread = threading.Thread(target=reader)
    thread.start()
    rng = random.Random(7)
    for seq in range(count):
        send_user(sender, receiver, user_message(64, seq))  # blocks while the reader is behind
        if rng.random() < 0.1:
            time.sleep(rng.random() / 100)
    thread.join()
    assert got == list(range(count))


def test_edge_triggered_reader_that_polls_after_releasing_gets_everything(
        usersock_pair: tuple[socket.socket, socket.socket], make_rx_ring: Callable[..., RxRing]) -> None:
    """The documented rule for an edge-triggered epoll reader: releasing a
    frame is a store the kernel does not see, so after releasing frames it
    makes a zero-length read (which moves waiting messages into the
    released frames; RxRing.read() does it when no frame waits) and reads
    on.  Messages that waited behind a full ring then all arrive, in order,
    with no new edge."""
    receiver, sender = usersock_pair
    ring = make_rx_ring(receiver, TWO)
    epoll = select.epoll()
    epoll.register(receiver, select.EPOLLIN | select.EPOLLET)
    for seq in range(12):  # two in frames, ten waiting for them
        send_user(sender, receiver, user_message(64, seq))

    seqs: list[int] = []
    assert epoll.poll(5.0), "no edge for the first messages"
    while True:
        seqs.extend(message_seq(m) for m in ring.messages())
        if not ring.wait(0):
            break
    assert seqs == list(range(12))
    epoll.close()


def test_poll_moves_one_batch_of_what_waited(
        usersock_pair: tuple[socket.socket, socket.socket], make_rx_ring: Callable[..., RxRing]) -> None:
    """A reader of the 3.10 ABI never calls recvmsg(): messages that waited
    behind a full ring reach the frames it released through its poll(),
    one batch per call, as a delivery would move them."""
    receiver, sender = usersock_pair
    ring = make_rx_ring(receiver, TWO)
    for seq in range(4):  # two in frames, two in the backlog
        send_user(sender, receiver, user_message(64, seq))
    for seq in range(2):
        frame = ring.next_frame()
        assert frame is not None and message_seq(ring.payload(frame)) == seq
        ring.release(frame)
    assert ring.statuses() == [0, 0]
    assert ring.wait(0), "poll() moved nothing into the released frames"
    got = []
    while (frame := ring.next_frame()) is not None:
        got.append(message_seq(ring.payload(frame)))
        ring.release(frame)
    assert got == [2, 3]


def test_a_poller_is_not_left_asleep_beside_frames_kept_with_skip(
        usersock_pair: tuple[socket.socket, socket.socket], make_rx_ring: Callable[..., RxRing]) -> None:
    """A delivery steps over 10 SKIP frames and stops at frame 10, which user
    space still holds; a poll() looks at those 10 and says nothing waits.  Then
    user space keeps frames 10 to 40 with SKIP.  The next poll() steps over 16
    of them (its batch) with the message still waiting, and its look at the
    frames stepped over finds nothing to read: it must still report POLLIN, so
    that the poller comes back for the next batch instead of sleeping."""
    receiver, sender = usersock_pair
    kept = 41
    ring = make_rx_ring(receiver, WIDE)
    for index in range(10):
        ring.set_status(index, NL_MMAP_STATUS_SKIP)
    ring.set_status(10, NL_MMAP_STATUS_VALID)  # not handed back yet
    send_user(sender, receiver, user_message(64, 7))
    assert not ring.wait(0), "nothing to read yet: frames 0-9 are kept, frame 10 is not the kernel's"
    for index in range(10, kept):
        ring.set_status(index, NL_MMAP_STATUS_SKIP)
    polls = 0
    while ring.frame(kept).status != NL_MMAP_STATUS_VALID:
        polls += 1
        assert polls <= kept // BATCH + 1, "the message never reached a frame"
        started = time.monotonic()
        assert ring.wait(1.0), f"poll() {polls} slept beside a message in the backlog"
        assert time.monotonic() - started < 0.5
    assert message_seq(ring.payload(ring.frame(kept))) == 7


def test_a_poller_does_not_spin_while_user_space_holds_every_frame(
        usersock_pair: tuple[socket.socket, socket.socket], make_rx_ring: Callable[..., RxRing]) -> None:
    """Every frame kept with SKIP and a message waiting: poll() steps over
    them a batch at a time, but once it has seen a lap of them it stops
    reporting POLLIN (a poller would spin).  A reader that hands a frame back
    makes a zero-length recv(), which looks at a lap again and fills it."""
    receiver, sender = usersock_pair
    ring = make_rx_ring(receiver, KEPT)
    for index in range(KEPT.frame_nr):
        ring.set_status(index, NL_MMAP_STATUS_SKIP)
    send_user(sender, receiver, user_message(64, 9))
    polls = 0
    while ring.wait(0):
        polls += 1
        assert polls <= KEPT.frame_nr // BATCH + 2, "poll() keeps reporting POLLIN over a ring user space holds"
    ring.set_status(5, 0)  # a plain store: the kernel does not see it
    ring.kick()  # the zero-length recv()
    assert ring.frame(5).status == NL_MMAP_STATUS_VALID
    assert message_seq(ring.payload(ring.frame(5))) == 9
