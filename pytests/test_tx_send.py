"""NETLINK_TX_RING sending: one empty send sends the VALID frames at the head,
in order, each as one sendmsg() of its nm_len bytes; the call returns the
bytes sent; the rings share one mapping; plain sendmsg() keeps working."""

from __future__ import annotations

import errno
import mmap
import socket
from collections.abc import Callable

import pytest

from nlmmap.abi import (
    NETLINK_TX_RING,
    NL_MMAP_STATUS_UNUSED,
    NL_MMAP_STATUS_VALID,
    PAGE_SIZE,
    SOL_NETLINK,
    RingRequest,
    ring_request,
    ring_stats,
    set_ring,
)
from nlmmap.messages import (
    NETLINK_EXT_ACK,
    NETLINK_NETFILTER,
    RTM_GETLINK,
    ack_error,
    address_of,
    address_request,
    dump_request,
    ext_ack_text,
    message_seq,
    nftables_batch,
    noop_request,
    pending_datagrams,
    send_user,
    user_message,
)
from nlmmap.netns import ifindex, ip, ip_batch, ipv4_addresses, netlink_socket
from nlmmap.ring import NLMSG_DONE, NLMSG_ERROR, message_type, split_messages
from nlmmap.tx import Rings, TxRing

# sixteen frames (larger ones on pages over 4 KiB): a round of acks for
# every frame fills the RX ring and spills into the receive buffer alike
TX = ring_request(1024, 16, per_block=4)
RX = ring_request(4096, 32)


def test_empty_send_without_tx_ring_is_enodata(usersock_pair: tuple[socket.socket, socket.socket]) -> None:
    receiver, sender = usersock_pair
    with pytest.raises(OSError) as err:
        sender.sendto(b"", address_of(receiver))
    assert err.value.errno == errno.ENODATA


def test_no_valid_frame_sends_nothing(usersock_pair: tuple[socket.socket, socket.socket],
                                      make_rings: Callable[..., Rings]) -> None:
    receiver, sender = usersock_pair
    tx = make_rings(sender, tx=TX).tx
    assert tx is not None
    assert tx.send(address_of(receiver)) == 0
    assert pending_datagrams(receiver) == []
    assert ring_stats(sender).tx_frames == 0


def test_frames_are_sent_in_order_as_datagrams(usersock_pair: tuple[socket.socket, socket.socket],
                                               make_rings: Callable[..., Rings]) -> None:
    """Each frame becomes one datagram with exactly its nm_len bytes; the call
    returns their sum and every frame it sent is UNUSED again."""
    receiver, sender = usersock_pair
    tx = make_rings(sender, tx=TX).tx
    assert tx is not None
    sizes = [16, 17, 100, 999, tx.room]
    messages = [user_message(size, seq) for seq, size in enumerate(sizes, 1)]
    for message in messages:
        tx.put(message)
    assert tx.send(address_of(receiver)) == sum(sizes)
    assert pending_datagrams(receiver) == messages
    assert tx.statuses() == [NL_MMAP_STATUS_UNUSED] * TX.frame_nr
    stats = ring_stats(sender)
    assert (stats.tx_frames, stats.tx_errors) == (len(sizes), 0)


def test_batch_wraps_around_the_ring(usersock_pair: tuple[socket.socket, socket.socket],
                                     make_rings: Callable[..., Rings]) -> None:
    receiver, sender = usersock_pair
    tx = make_rings(sender, tx=TX).tx
    assert tx is not None
    seq = 0
    for batch in (10, TX.frame_nr, 3, TX.frame_nr):
        expected = []
        for _ in range(batch):
            seq += 1
            expected.append(user_message(64, seq))
            tx.put(expected[-1])
        assert tx.send(address_of(receiver)) == 64 * batch
        assert pending_datagrams(receiver) == expected


def test_one_frame_with_several_messages_is_one_sendmsg(usersock_pair: tuple[socket.socket, socket.socket],
                                                        make_rings: Callable[..., Rings]) -> None:
    receiver, sender = usersock_pair
    tx = make_rings(sender, tx=TX).tx
    assert tx is not None
    frame = b"".join(user_message(40, seq) for seq in (1, 2, 3))
    tx.put(frame)
    assert tx.send(address_of(receiver)) == len(frame)
    (datagram,) = pending_datagrams(receiver)
    assert [message_seq(m) for m in split_messages(datagram)] == [1, 2, 3]


def test_connected_destination_applies(usersock_pair: tuple[socket.socket, socket.socket],
                                       make_rings: Callable[..., Rings]) -> None:
    receiver, sender = usersock_pair
    sender.connect(address_of(receiver))
    tx = make_rings(sender, tx=TX).tx
    assert tx is not None
    tx.put(user_message(32, 5))
    assert tx.send() == 32
    assert [message_seq(m) for m in pending_datagrams(receiver)] == [5]


def test_sendmsg_with_data_still_works(usersock_pair: tuple[socket.socket, socket.socket],
                                       make_rings: Callable[..., Rings]) -> None:
    """A TX ring takes over empty sends only: data sends bypass the frames,
    also one larger than a frame."""
    receiver, sender = usersock_pair
    tx = make_rings(sender, tx=TX).tx
    assert tx is not None
    tx.write(0, user_message(32, 1))  # VALID, but not sent by a data send
    big = user_message(TX.frame_size * 2, 2)
    send_user(sender, receiver, big)
    assert pending_datagrams(receiver) == [big]
    assert tx.frame(0).status == NL_MMAP_STATUS_VALID
    assert tx.send(address_of(receiver)) == 32


def test_tx_ring_follows_rx_ring_in_the_mapping(usersock_pair: tuple[socket.socket, socket.socket],
                                                make_rings: Callable[..., Rings]) -> None:
    """One mapping, RX ring first: a frame written at rx_size + offset is sent,
    and a mapping of the RX size alone is refused."""
    receiver, sender = usersock_pair
    rings = make_rings(sender, rx=RX, tx=TX)
    assert rings.rx is not None and rings.tx is not None
    assert rings.tx.offset(0) == RX.size
    rings.tx.put(user_message(48, 9))
    assert rings.tx.send(address_of(receiver)) == 48
    assert [message_seq(m) for m in pending_datagrams(receiver)] == [9]
    assert rings.rx.statuses() == [NL_MMAP_STATUS_UNUSED] * RX.frame_nr
    for length in (RX.size, TX.size, RX.size + TX.size + PAGE_SIZE):
        with pytest.raises(OSError) as err:
            mmap.mmap(sender.fileno(), length)
        assert err.value.errno == errno.EINVAL


def test_tx_ring_alone_maps_at_offset_zero(usersock_pair: tuple[socket.socket, socket.socket]) -> None:
    receiver, sender = usersock_pair
    tx = TxRing(sender, TX)
    try:
        assert tx.base == 0
        tx.put(user_message(20, 3))
        assert tx.send(address_of(receiver)) == 20
        assert [message_seq(m) for m in pending_datagrams(receiver)] == [3]
    finally:
        tx.close()


def test_requests_get_replies_in_the_rx_ring(make_rings: Callable[..., Rings]) -> None:
    """Acks and dump replies to requests sent through the TX ring arrive in
    the RX ring, in order."""
    sock = netlink_socket(None, socket.NETLINK_ROUTE)
    try:
        rings = make_rings(sock, rx=RX, tx=TX)
        assert rings.rx is not None and rings.tx is not None
        for seq in (1, 2, 3):
            rings.tx.put(noop_request(seq))
        rings.tx.put(dump_request(RTM_GETLINK, seq=4))
        assert rings.tx.send() == 3 * 16 + len(dump_request(RTM_GETLINK, seq=4))
        replies = rings.rx.drain()
        assert [ack_error(m) for m in replies[:3]] == [(0, 1), (0, 2), (0, 3)]
        assert {message_seq(m) for m in replies[3:]} == {4}
        assert message_type(replies[3]) == 16  # RTM_NEWLINK, lo at least
        assert message_type(replies[-1]) == NLMSG_DONE
    finally:
        sock.close()


def _send_one_by_one(sock: socket.socket, requests: list[bytes]) -> list[bytes]:
    acks = []
    for request in requests:
        sock.send(request)
        acks.extend(split_messages(sock.recv(1 << 16)))
    return acks


def test_rtnetlink_batch_equals_sendmsg(netns: str, make_rings: Callable[..., Rings]) -> None:
    """N address requests through the ring take effect exactly as N sendmsg()
    calls: the same addresses, the same acks, the same errors and extended
    ack messages for the requests that fail."""
    ip_batch(netns, ["link add ring0 type dummy", "link add plain0 type dummy"])
    count = 12

    def requests(link: str) -> list[bytes]:
        index = ifindex(netns, link)
        out = [address_request(index, f"10.9.0.{n}", seq=n) for n in range(1, count + 1)]
        out.append(address_request(index, "10.9.0.1", seq=count + 1))  # EEXIST
        out.append(address_request(999999, "10.9.0.99", seq=count + 2))  # ENODEV
        return out

    plain = netlink_socket(netns, socket.NETLINK_ROUTE)
    ringed = netlink_socket(netns, socket.NETLINK_ROUTE)
    try:
        for sock in (plain, ringed):
            sock.setsockopt(SOL_NETLINK, NETLINK_EXT_ACK, 1)
        plain_acks = _send_one_by_one(plain, requests("plain0"))

        rings = make_rings(ringed, rx=RX, tx=TX)
        assert rings.rx is not None and rings.tx is not None
        batch = requests("ring0")
        for request in batch:
            rings.tx.put(request)
        assert rings.tx.send() == sum(len(r) for r in batch)
        ring_acks = rings.rx.drain()
    finally:
        plain.close()
        ringed.close()

    assert all(message_type(m) == NLMSG_ERROR for m in ring_acks)
    assert [ack_error(m) for m in ring_acks] == [ack_error(m) for m in plain_acks]
    assert [ack_error(m)[0] for m in ring_acks[-2:]] == [errno.EEXIST, errno.ENODEV]
    assert [ext_ack_text(m) for m in ring_acks] == [ext_ack_text(m) for m in plain_acks]
    expected = [f"10.9.0.{n}/32" for n in range(1, count + 1)]
    assert ipv4_addresses(netns, "ring0") == sorted(expected)
    assert ipv4_addresses(netns, "plain0") == sorted(expected)


def test_tx_ring_replaced_and_torn_down(usersock_pair: tuple[socket.socket, socket.socket]) -> None:
    receiver, sender = usersock_pair
    set_ring(sender, NETLINK_TX_RING, TX)
    set_ring(sender, NETLINK_TX_RING, RingRequest(0, 0, 0, 0))
    with pytest.raises(OSError) as err:
        sender.sendto(b"", address_of(receiver))
    assert err.value.errno == errno.ENODATA


def test_rx_and_tx_rings_together_without_enobufs(make_rings: Callable[..., Rings]) -> None:
    """Round after round of batches whose acks fill the RX ring and spill into
    the receive buffer: every ack arrives in order, nothing is dropped, no
    ENOBUFS is raised on the socket."""
    sock = netlink_socket(None, socket.NETLINK_ROUTE)
    try:
        rings = make_rings(sock, rx=RX, tx=TX)
        assert rings.rx is not None and rings.tx is not None
        per_frame, seq = 4, 0
        acked: list[tuple[int, int]] = []
        for _ in range(20):
            for _ in range(TX.frame_nr):
                rings.tx.put(b"".join(noop_request(seq + n) for n in range(1, per_frame + 1)))
                seq += per_frame
            assert rings.tx.send() == TX.frame_nr * per_frame * 16
            acked.extend(ack_error(m) for m in rings.rx.drain(idle=0.2))
        assert acked == [(0, n) for n in range(1, seq + 1)]
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0
        stats = ring_stats(sock)
        assert (stats.rx_drops, stats.tx_frames, stats.tx_errors) == (0, 20 * TX.frame_nr, 0)
    finally:
        sock.close()


def test_nfnetlink_batch_in_one_frame(netns: str, make_rings: Callable[..., Rings]) -> None:
    """A frame is one sendmsg(): an nfnetlink batch (BEGIN, requests, END)
    in one frame is one transaction for nf_tables, as in one buffer today."""
    sock = netlink_socket(netns, NETLINK_NETFILTER)
    try:
        rings = make_rings(sock, rx=RX, tx=TX)
        assert rings.rx is not None and rings.tx is not None
        batch = nftables_batch("ringtable", seq=10)
        rings.tx.put(batch)
        assert rings.tx.send() == len(batch)
        assert [ack_error(m) for m in rings.rx.drain()] == [(0, 11)]
    finally:
        sock.close()
    assert "table inet ringtable" in ip("netns", "exec", netns, "nft", "list", "tables")
