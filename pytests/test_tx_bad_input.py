"""TX ring error rules, as documented in the series:

- a malformed frame (nm_len 0, below a netlink header, beyond the frame; a
  netlink header that claims more than nm_len; trailing bytes that are not
  a whole message) ends the batch with EINVAL; it is released like every
  frame the call took, the frames after it stay VALID, and the frames
  before it were sent;
- a status value that enum nl_mmap_status does not define ends the batch
  and is left alone: EINVAL when it is the first frame, else the call
  returns the bytes sent before it and the next call the EINVAL; RESERVED
  (a frame being written) ends it quietly;
- a send-path error (no such port, over the send buffer) is that frame's
  error, the frame released;
- a frame that would block (a full receiver with MSG_DONTWAIT) is not
  taken: it stays VALID, and the call returns the bytes sent before it,
  or EAGAIN when none (test_tx_signal.py: the same for a signal);
- an error of the call itself (a destination the caller may not use)
  comes before any frame is taken (test_tx_permissions.py).
In every case the ring stays usable."""

from __future__ import annotations

import errno
import socket
import threading
import time
from collections.abc import Callable

import pytest

from nlmmap.abi import (
    NETLINK_TX_RING,
    NL_MMAP_HDRLEN,
    NL_MMAP_STATUS_COPY,
    NL_MMAP_STATUS_RESERVED,
    NL_MMAP_STATUS_SKIP,
    NL_MMAP_STATUS_UNUSED,
    NL_MMAP_STATUS_VALID,
    RingRequest,
    ring_request,
    ring_stats,
    set_ring,
)
from nlmmap.messages import address_of, has_queued, message_seq, pending_datagrams, send_user, user_message
from nlmmap.ring import NLMSG_HDR
from nlmmap.tx import Rings, TxRing

TX = ring_request(1024, 8, per_block=4)  # eight frames
ROOM = TX.frame_size - NL_MMAP_HDRLEN
# one frame larger than the smallest send buffer
BIG = ring_request(16384)


def _seqs(receiver: socket.socket) -> list[int]:
    return [message_seq(d) for d in pending_datagrams(receiver)]


def _send_errno(tx: TxRing, dest: tuple[int, int], flags: int = 0) -> int:
    with pytest.raises(OSError) as err:
        tx.send(dest, flags)
    return err.value.errno or 0


@pytest.fixture
def tx_pair(usersock_pair: tuple[socket.socket, socket.socket],
            make_rings: Callable[..., Rings]) -> tuple[socket.socket, socket.socket, TxRing]:
    """(receiver, sender, the sender's TX ring)."""
    receiver, sender = usersock_pair
    tx = make_rings(sender, tx=TX).tx
    assert tx is not None
    return receiver, sender, tx


def _header_says(total: int, claimed: int) -> bytes:
    """A message of total bytes whose nlmsg_len says claimed."""
    return NLMSG_HDR.pack(claimed, 0x100, 0, 2, 0) + bytes(total - NLMSG_HDR.size)


MALFORMED = [
    # (frame bytes, nm_len, why)
    (user_message(64, 2), 0, "nm_len 0"),
    (user_message(64, 2), 8, "nm_len below a netlink header"),
    (user_message(64, 2), ROOM + 4, "nm_len beyond the frame"),
    (user_message(64, 2), 0xFFFFFFFF, "nm_len 2^32-1"),
    (_header_says(32, 64), 32, "nlmsg_len beyond nm_len (half-written message)"),
    (_header_says(32, 8), 32, "nlmsg_len below a header"),
    (user_message(32, 2) + b"\0" * 8, 40, "trailing bytes, not a whole message"),
]


@pytest.mark.parametrize("frame, nm_len", [m[:2] for m in MALFORMED], ids=[m[2] for m in MALFORMED])
def test_malformed_frame_is_einval_and_released(tx_pair: tuple[socket.socket, socket.socket, TxRing],
                                                frame: bytes, nm_len: int) -> None:
    receiver, sender, tx = tx_pair
    tx.put(user_message(64, 1))
    bad = tx.put(frame)
    tx.write(bad, frame, length=nm_len)
    tx.put(user_message(64, 3))
    assert _send_errno(tx, address_of(receiver)) == errno.EINVAL
    # the frame before was sent, the bad one released, the one after still VALID
    assert _seqs(receiver) == [1]
    assert tx.statuses()[:3] == [NL_MMAP_STATUS_UNUSED, NL_MMAP_STATUS_UNUSED, NL_MMAP_STATUS_VALID]
    stats = ring_stats(sender)
    assert (stats.tx_frames, stats.tx_errors) == (1, 1)
    # the ring goes on where it stopped
    assert tx.send(address_of(receiver)) == 64
    assert _seqs(receiver) == [3]


@pytest.mark.parametrize("status", [5, 0xDEADBEEF, 0xFFFFFFFF], ids=["five", "deadbeef", "all-ones"])
def test_undefined_status_is_einval_and_left_alone(tx_pair: tuple[socket.socket, socket.socket, TxRing],
                                                   status: int) -> None:
    receiver, sender, tx = tx_pair
    tx.write(0, user_message(64, 1), status=status)
    tx.write(1, user_message(64, 2))
    assert _send_errno(tx, address_of(receiver)) == errno.EINVAL
    assert tx.frame(0).status == status
    assert tx.frame(1).status == NL_MMAP_STATUS_VALID
    assert _seqs(receiver) == []
    assert ring_stats(sender).tx_errors == 0  # nothing was taken
    tx.set_status(0, NL_MMAP_STATUS_VALID)
    assert tx.send(address_of(receiver)) == 128
    assert _seqs(receiver) == [1, 2]


@pytest.mark.parametrize("status", [5, 0xDEADBEEF], ids=["five", "deadbeef"])
def test_undefined_status_after_sent_frames_returns_their_bytes_first(
        tx_pair: tuple[socket.socket, socket.socket, TxRing], status: int) -> None:
    """The frames before it went out: the call says so, as a short write
    does, and the next call reports the frame that stopped it.  An EINVAL
    here would point user space at the last frame released, which was sent
    fine."""
    receiver, sender, tx = tx_pair
    tx.write(0, user_message(64, 1))
    tx.write(1, user_message(64, 2))
    tx.write(2, user_message(64, 3), status=status)
    assert tx.send(address_of(receiver)) == 128
    assert tx.statuses()[:3] == [NL_MMAP_STATUS_UNUSED, NL_MMAP_STATUS_UNUSED, status]
    assert _seqs(receiver) == [1, 2]
    assert _send_errno(tx, address_of(receiver)) == errno.EINVAL
    assert tx.frame(2).status == status
    assert (ring_stats(sender).tx_frames, ring_stats(sender).tx_errors) == (2, 0)


@pytest.mark.parametrize("status", [NL_MMAP_STATUS_RESERVED, NL_MMAP_STATUS_COPY, NL_MMAP_STATUS_SKIP],
                         ids=["reserved", "copy", "skip"])
def test_defined_statuses_end_the_batch_quietly(tx_pair: tuple[socket.socket, socket.socket, TxRing],
                                                 status: int) -> None:
    """RESERVED (a frame being written), COPY or SKIP at the head: 0 bytes
    sent, nothing taken, nothing lost, no error."""
    receiver, _, tx = tx_pair
    tx.write(0, user_message(64, 1), status=status)
    tx.write(1, user_message(64, 2))
    assert tx.send(address_of(receiver)) == 0
    assert tx.statuses()[:2] == [status, NL_MMAP_STATUS_VALID]
    tx.set_status(0, NL_MMAP_STATUS_VALID)
    assert tx.send(address_of(receiver)) == 128
    assert _seqs(receiver) == [1, 2]


def test_message_over_the_send_buffer_is_emsgsize(usersock_pair: tuple[socket.socket, socket.socket],
                                                  make_rings: Callable[..., Rings]) -> None:
    """The send buffer limit of sendmsg() applies to each frame."""
    receiver, sender = usersock_pair
    sender.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1024)
    limit = sender.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) - 32
    tx = make_rings(sender, tx=BIG).tx
    assert tx is not None and tx.room > limit
    message = user_message(limit + 4, 1)
    with pytest.raises(OSError) as err:
        send_user(sender, receiver, message)
    assert err.value.errno == errno.EMSGSIZE
    tx.put(message)
    assert _send_errno(tx, address_of(receiver)) == errno.EMSGSIZE
    assert tx.frame(0).status == NL_MMAP_STATUS_UNUSED
    tx.put(user_message(limit, 2))
    assert tx.send(address_of(receiver)) == limit


def test_unknown_port_is_econnrefused(tx_pair: tuple[socket.socket, socket.socket, TxRing]) -> None:
    receiver, sender, tx = tx_pair
    nowhere = (0x7FFFFF00, 0)
    with pytest.raises(ConnectionRefusedError):
        sender.sendto(user_message(32, 0), nowhere)
    tx.put(user_message(32, 1))
    tx.put(user_message(32, 2))
    assert _send_errno(tx, nowhere) == errno.ECONNREFUSED
    assert tx.statuses()[:2] == [NL_MMAP_STATUS_UNUSED, NL_MMAP_STATUS_VALID]
    assert tx.send(address_of(receiver)) == 32
    assert _seqs(receiver) == [2]


def test_full_receiver_with_dontwait_keeps_the_frame(tx_pair: tuple[socket.socket, socket.socket, TxRing]) -> None:
    """MSG_DONTWAIT and a full receiver: the frames before it were delivered
    and the call returns their bytes; the frame that met the full receiver
    is not taken (it stays VALID with the rest) and the next send delivers
    it first; with nothing sent, the call fails with EAGAIN."""
    receiver, _, tx = tx_pair
    receiver.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
    for seq in range(1, TX.frame_nr + 1):
        tx.put(user_message(900, seq))
    sent = tx.send(address_of(receiver), socket.MSG_DONTWAIT)
    released = tx.statuses().count(NL_MMAP_STATUS_UNUSED)
    assert 0 < released < TX.frame_nr - 2
    assert sent == released * 900
    assert tx.statuses() == [NL_MMAP_STATUS_UNUSED] * released + [NL_MMAP_STATUS_VALID] * (TX.frame_nr - released)
    assert _seqs(receiver) == list(range(1, released + 1))

    again = tx.send(address_of(receiver), socket.MSG_DONTWAIT)
    assert again > 0
    now = tx.statuses().count(NL_MMAP_STATUS_UNUSED)
    assert again == (now - released) * 900
    before = tx.statuses()
    assert _send_errno(tx, address_of(receiver), socket.MSG_DONTWAIT) == errno.EAGAIN
    assert tx.statuses() == before
    assert _seqs(receiver) == list(range(released + 1, now + 1))


def test_tx_ring_is_busy_while_a_send_waits(usersock_pair: tuple[socket.socket, socket.socket]) -> None:
    """A blocking send that waits for a full receiver holds the TX ring:
    replacing it fails with EBUSY instead of waiting; the send completes
    once the receiver reads."""
    receiver, sender = usersock_pair
    receiver.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
    tx = TxRing(sender, TX)
    for seq in range(1, 4):
        tx.put(user_message(900, seq))
    tx.close()  # unmapped: only the running send keeps the ring busy
    result: list[int] = []
    thread = threading.Thread(target=lambda: result.append(sender.sendto(b"", address_of(receiver))))
    thread.start()
    deadline = time.monotonic() + 10
    while not has_queued(receiver) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)
    assert thread.is_alive(), "the send did not wait for the full receiver"
    with pytest.raises(OSError) as err:
        set_ring(sender, NETLINK_TX_RING, RingRequest(0, 0, 0, 0))
    assert err.value.errno == errno.EBUSY
    seqs: list[int] = []
    while thread.is_alive() or len(seqs) < 3:
        try:
            seqs.append(message_seq(receiver.recv(1 << 16, socket.MSG_DONTWAIT)))
        except BlockingIOError:
            time.sleep(0.05)
        assert time.monotonic() < deadline + 10
    thread.join()
    assert result == [2700]
    assert seqs == [1, 2, 3]
    set_ring(sender, NETLINK_TX_RING, RingRequest(0, 0, 0, 0))
