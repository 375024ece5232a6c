"""Work with interrupts off is bounded, whatever the ring's geometry and
whatever user space writes into it.

The kernel fills frames under sk_receive_queue.lock (interrupts off), also
from softirq.  An unprivileged user could make that work proportional to
its ring: 33 million frames all kept with SKIP, or a deep backlog of skbs
released into frames at once.  The irqsoff tracer measures the longest
interrupts-off section of the whole guest while each attack runs; it must
stay within BOUND_US of the longest one the same traffic causes with a
plain socket (measured first, in the same boot).  Without the bound the
SKIP ring took 3.3 s and the backlog moves 32 MiB in one section.

The copy into a frame runs with interrupts on: a 127 KiB message costs
the interrupts-off time of a 64-byte one, within COPY_BOUND_US."""

from __future__ import annotations

import array
import os
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from nlmmap.abi import NL_MMAP_STATUS_SKIP, NL_MMAP_STATUS_UNUSED, ring_request
from nlmmap.messages import message_seq, pending_datagrams, send_user, user_message
from nlmmap.ring import RxRing

TRACING = Path("/sys/kernel/tracing")
# The stated bound: a batch of 16 frames is microseconds even under TCG
# with KASAN; the unbounded code took seconds for the SKIP ring.
BOUND_US = 5000

# The largest geometry: 1 GiB of 32-byte frames (33,554,432 frames)
HUGE = ring_request(32, (1 << 30) // 32)
# A ring that a deep backlog of 1 KiB messages moves into at once (32 MiB)
DEEP = ring_request(2048, 32768)
DEEP_MESSAGE = 1024
# Frames that take the largest message a frame may carry (NETLINK_RING_COPY_MAX)
BIG = ring_request(256 << 10, 8)
BIG_MESSAGE = 127 << 10
ROUNDS = 8
# Under TCG with KASAN the guest's floor is about 200 us per delivery and
# a 127 KiB copy takes far less: the bound catches gross regressions only.
COPY_BOUND_US = 400
SO_RCVBUFFORCE = 33
SO_SNDBUFFORCE = 32


@pytest.fixture
def max_irqsoff() -> Iterator[Callable[[bool], int]]:
    """The irqsoff tracer, running: call with True to reset the maximum,
    with False to read it (microseconds)."""
    if not (TRACING / "available_tracers").exists() and subprocess.run(
            ["mount", "-t", "tracefs", "nodev", str(TRACING)], check=False).returncode:
        pytest.skip("kernel without tracefs (CONFIG_FTRACE): no irqsoff tracer to measure with")
    if "irqsoff" not in (TRACING / "available_tracers").read_text().split():
        pytest.skip("kernel without the irqsoff tracer (CONFIG_IRQSOFF_TRACER)")
    (TRACING / "current_tracer").write_text("irqsoff")
    (TRACING / "tracing_on").write_text("1")

    def measure(reset: bool) -> int:
        if reset:
            (TRACING / "tracing_max_latency").write_text("0")
            return 0
        return int((TRACING / "tracing_max_latency").read_text())

    try:
        yield measure
    finally:
        (TRACING / "current_tracer").write_text("nop")


def _baseline(usersock_pair: tuple[socket.socket, socket.socket], measure: Callable[[bool], int],
              count: int) -> int:
    receiver, sender = usersock_pair
    measure(True)
    for seq in range(count):
        send_user(sender, receiver, user_message(64, seq))
    worst = measure(False)
    assert len(pending_datagrams(receiver)) == count
    return worst


def _set_every_status(ring: RxRing, status: int) -> None:
    """Every frame's status word, written block by block (the frames tile
    the blocks of the geometries used here)."""
    words = memoryview(ring.map).cast("I")
    per_chunk = 1 << 20
    stride = ring.req.frame_size // 4
    chunk = array.array("I", [status]) * (per_chunk // ring.req.frame_size)
    for start in range(0, ring.req.size, per_chunk):
        words[start // 4 : (start + per_chunk) // 4 : stride] = chunk
    words.release()


def test_a_ring_of_skip_frames(usersock_pair: tuple[socket.socket, socket.socket],
                               make_rx_ring: Callable[..., RxRing], max_irqsoff: Callable[[bool], int]) -> None:
    receiver, sender = usersock_pair
    baseline = _baseline(usersock_pair, max_irqsoff, 16)
    attacked = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, receiver.proto)
    attacked.bind((0, 0))
    ring = make_rx_ring(attacked, HUGE)
    _set_every_status(ring, NL_MMAP_STATUS_SKIP)

    max_irqsoff(True)
    for seq in range(4):
        send_user(sender, attacked, user_message(64, seq))
    worst = max_irqsoff(False)
    print(f"longest interrupts-off section: {worst} us with {HUGE.frame_nr} SKIP frames, "
          f"{baseline} us with a plain socket")
    assert worst <= baseline + BOUND_US
    attacked.close()


def test_a_deep_backlog(usersock_pair: tuple[socket.socket, socket.socket],
                        make_rx_ring: Callable[..., RxRing], max_irqsoff: Callable[[bool], int]) -> None:
    receiver, sender = usersock_pair
    baseline = _baseline(usersock_pair, max_irqsoff, 64)
    receiver.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 512 << 20)
    ring = make_rx_ring(receiver, DEEP)
    total = 2 * DEEP.frame_nr + 1
    for seq in range(total - 1):  # every frame VALID, as many skbs waiting
        send_user(sender, receiver, user_message(DEEP_MESSAGE, seq))
    _set_every_status(ring, NL_MMAP_STATUS_UNUSED)  # released at once, unread

    max_irqsoff(True)
    send_user(sender, receiver, user_message(DEEP_MESSAGE, total - 1))
    worst = max_irqsoff(False)
    print(f"longest interrupts-off section: {worst} us moving a backlog of {DEEP.frame_nr} skbs, "
          f"{baseline} us with a plain socket")
    assert worst <= baseline + BOUND_US

    # bounded, and still everything arrives, in order, after the frames
    # the reader released without reading
    ring.head = 0
    seqs: list[int] = []
    while len(seqs) < total and ring.wait(5.0):
        seqs.extend(message_seq(m) for m in ring.messages())
    assert seqs == list(range(DEEP.frame_nr, total))


def _interrupts_off_per_delivery(usersock_pair: tuple[socket.socket, socket.socket], ring: RxRing,
                                 measure: Callable[[bool], int], size: int) -> list[int]:
    """The guest's longest interrupts-off section while one message of
    `size` bytes is delivered, for each of ROUNDS messages; each read back."""
    receiver, sender = usersock_pair
    sections = []
    for seq in range(ROUNDS):
        measure(True)
        send_user(sender, receiver, user_message(size, seq))
        sections.append(measure(False))
        assert [(len(m), message_seq(m)) for m in ring.messages()] == [(size, seq)]
    return sections


@pytest.fixture
def ring_warnings() -> Iterator[Callable[[], list[str]]]:
    """Kernel log records written since the fixture began that name
    net/netlink/ring.c (a WARN, such as lockdep's assertion that no copy
    into a frame runs under the queue lock)."""
    fd = os.open("/dev/kmsg", os.O_RDONLY | os.O_NONBLOCK)
    os.lseek(fd, 0, os.SEEK_END)

    def records() -> list[str]:
        found = []
        while True:
            try:
                record = os.read(fd, 8192).decode(errors="replace")
            except BlockingIOError:
                return found
            except BrokenPipeError:  # records overwritten meanwhile
                continue
            if "net/netlink/ring.c" in record:
                found.append(record.strip())

    try:
        yield records
    finally:
        os.close(fd)


def test_a_big_message_costs_no_more_interrupts_off_than_a_small_one(
        usersock_pair: tuple[socket.socket, socket.socket], make_rx_ring: Callable[..., RxRing],
        max_irqsoff: Callable[[bool], int], ring_warnings: Callable[[], list[str]]) -> None:
    """127 KiB messages into 256 KiB frames against 64-byte ones: the least
    interrupts-off maximum any delivery saw (the guest's other sections
    come and go; a copy under the queue lock would be in every delivery).
    Under TCG a 127 KiB copy takes less than the guest's floor, so this
    bounds gross regressions; lockdep's assertion in the copy path (a
    WARN naming ring.c in the kernel log) is what catches a copy under
    the lock."""
    receiver, sender = usersock_pair
    for sock, option in ((receiver, SO_RCVBUFFORCE), (sender, SO_SNDBUFFORCE)):
        sock.setsockopt(socket.SOL_SOCKET, option, 8 << 20)
    ring = make_rx_ring(receiver, BIG)
    small: list[int] = []
    big: list[int] = []
    for _ in range(2):  # interleaved, so that noise falls on both
        small += _interrupts_off_per_delivery(usersock_pair, ring, max_irqsoff, 64)
        big += _interrupts_off_per_delivery(usersock_pair, ring, max_irqsoff, BIG_MESSAGE)
    report = (f"interrupts off per delivery (least, median): {min(big)}, {sorted(big)[len(big) // 2]} us "
              f"for {BIG_MESSAGE}-byte messages; {min(small)}, {sorted(small)[len(small) // 2]} us "
              f"for 64-byte ones, into {BIG.frame_size}-byte frames")
    print(report)
    assert not ring_warnings(), "a copy into a frame ran under the queue lock (lockdep)"
    assert min(big) <= min(small) + COPY_BOUND_US, report
