"""A small nfnetlink_queue client over the rings: bind a queue, read packets
from the RX ring (COPY ones with recvmsg()), send verdicts through the TX
ring, one frame holding many verdict messages."""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass

from nlmmap.abi import RingRequest
from nlmmap.messages import NETLINK_NETFILTER, NFGENMSG, NLM_F_ACK, NLM_F_REQUEST, ack_error, attr, attributes
from nlmmap.netns import netlink_socket
from nlmmap.ring import NLMSG_ERROR, NLMSG_HDR, message_type, split_messages
from nlmmap.tx import Rings, open_rings

NFNL_SUBSYS_QUEUE = 3
NFQNL_MSG_PACKET = 0
NFQNL_MSG_VERDICT = 1
NFQNL_MSG_CONFIG = 2
NFQNL_MSG_VERDICT_BATCH = 3

NFQA_PACKET_HDR = 1
NFQA_VERDICT_HDR = 2
NFQA_MARK = 3
NFQA_PAYLOAD = 10
NFQA_CAP_LEN = 13
NFQA_SKB_INFO = 14
NFQA_SKB_CSUMNOTREADY = 1 << 0
NFQA_SKB_GSO = 1 << 1

NFQA_CFG_CMD = 1
NFQA_CFG_PARAMS = 2
NFQA_CFG_QUEUE_MAXLEN = 3
NFQA_CFG_MASK = 4
NFQA_CFG_FLAGS = 5
NFQNL_CFG_CMD_BIND = 1
NFQNL_CFG_CMD_UNBIND = 2
NFQNL_COPY_PACKET = 2
NFQA_CFG_F_FAIL_OPEN = 1 << 0
NFQA_CFG_F_GSO = 1 << 2

SO_RCVBUFFORCE = 33

NF_DROP = 0
NF_ACCEPT = 1
NF_QUEUE = 3


def nf_queue_to(queue: int) -> int:
    """The verdict that requeues a packet to another queue."""
    return NF_QUEUE | queue << 16


def queue_message(msg: int, queue: int, body: bytes, seq: int = 0, flags: int = NLM_F_REQUEST) -> bytes:
    payload = NFGENMSG.pack(socket.AF_UNSPEC, 0, queue) + body
    return NLMSG_HDR.pack(NLMSG_HDR.size + len(payload), NFNL_SUBSYS_QUEUE << 8 | msg, flags, seq, 0) + payload


def verdict(queue: int, packet_id: int, verdict: int, mark: int | None = None,
            payload: bytes | None = None) -> bytes:
    """NFQNL_MSG_VERDICT for one packet, optionally with a mark and a new payload."""
    body = attr(NFQA_VERDICT_HDR, struct.pack("!II", verdict, packet_id))
    if mark is not None:
        body += attr(NFQA_MARK, struct.pack("!I", mark))
    if payload is not None:
        body += attr(NFQA_PAYLOAD, payload)
    return queue_message(NFQNL_MSG_VERDICT, queue, body)


def verdict_batch(queue: int, packet_id: int, verdict: int) -> bytes:
    """NFQNL_MSG_VERDICT_BATCH: the verdict for every queued packet up to packet_id."""
    return queue_message(NFQNL_MSG_VERDICT_BATCH, queue, attr(NFQA_VERDICT_HDR, struct.pack("!II", verdict,
                                                                                             packet_id)))


@dataclass(frozen=True)
class Packet:
    """One queued packet as NFQNL_MSG_PACKET describes it."""

    queue: int
    id: int
    payload: bytes
    cap_len: int | None
    mark: int | None
    skb_info: int = 0  # NFQA_SKB_* flags


def parse_packet(message: bytes) -> Packet:
    if message_type(message) != NFNL_SUBSYS_QUEUE << 8 | NFQNL_MSG_PACKET:
        raise ValueError(f"not a queued packet: type {message_type(message):#x}")
    queue = NFGENMSG.unpack_from(message, NLMSG_HDR.size)[2]
    attrs = attributes(message[NLMSG_HDR.size + NFGENMSG.size : NLMSG_HDR.unpack_from(message)[0]])
    packet_id = struct.unpack_from("!I", attrs[NFQA_PACKET_HDR])[0]
    cap_len = struct.unpack("!I", attrs[NFQA_CAP_LEN])[0] if NFQA_CAP_LEN in attrs else None
    mark = struct.unpack("!I", attrs[NFQA_MARK])[0] if NFQA_MARK in attrs else None
    skb_info = struct.unpack("!I", attrs[NFQA_SKB_INFO])[0] if NFQA_SKB_INFO in attrs else 0
    return Packet(queue, packet_id, attrs.get(NFQA_PAYLOAD, b""), cap_len, mark, skb_info)


def _config(sock: socket.socket, queue: int, body: bytes, ack: bool = True) -> None:
    """One NFQNL_MSG_CONFIG; with ack, wait for it (a socket without an RX ring)."""
    sock.send(queue_message(NFQNL_MSG_CONFIG, queue, body, flags=NLM_F_REQUEST | (NLM_F_ACK if ack else 0)))
    if not ack:
        return
    (ack_message,) = [m for m in split_messages(sock.recv(1 << 16)) if message_type(m) == NLMSG_ERROR]
    error, _ = ack_error(ack_message)
    if error:
        raise OSError(error, f"nfqueue config of queue {queue} failed")


def bind_queue(sock: socket.socket, queue: int, copy_range: int = 0xFFFF, flags: int = 0,
               maxlen: int | None = None, ack: bool = True) -> None:
    """Bind the socket to a queue and ask for packet copies of up to copy_range
    bytes; ack=False on a socket whose acks would land in its RX ring."""
    _config(sock, queue, attr(NFQA_CFG_CMD, struct.pack("!BBH", NFQNL_CFG_CMD_BIND, 0, 0)), ack)
    _config(sock, queue, attr(NFQA_CFG_PARAMS, struct.pack("!IB", copy_range, NFQNL_COPY_PACKET)), ack)
    if flags:
        _config(sock, queue, attr(NFQA_CFG_FLAGS, struct.pack("!I", flags))
                + attr(NFQA_CFG_MASK, struct.pack("!I", flags)), ack)
    if maxlen is not None:
        _config(sock, queue, attr(NFQA_CFG_QUEUE_MAXLEN, struct.pack("!I", maxlen)), ack)


def unbind_queue(sock: socket.socket, queue: int) -> None:
    """Unbind (no ack: it would land in the RX ring); queued packets are dropped."""
    _config(sock, queue, attr(NFQA_CFG_CMD, struct.pack("!BBH", NFQNL_CFG_CMD_UNBIND, 0, 0)), ack=False)


class RingQueue:
    """An nfqueue reader on RX and TX rings of one socket."""

    def __init__(self, sock: socket.socket, rx: RingRequest, tx: RingRequest) -> None:
        self.sock = sock
        self.rings: Rings = open_rings(sock, rx, tx)
        assert self.rings.rx is not None and self.rings.tx is not None
        self.rx = self.rings.rx
        self.tx = self.rings.tx

    def packets(self) -> Iterator[Packet]:
        """Every packet waiting now, in ring order (COPY ones via recvmsg())."""
        for message in self.rx.messages():
            if message_type(message) == NLMSG_ERROR:
                error, seq = ack_error(message)
                raise OSError(error, f"nfqueue answered an error for seq {seq}")
            yield parse_packet(message)

    def send_verdicts(self, messages: list[bytes]) -> int:
        """Pack verdict messages into as few TX frames as hold them, send them
        with one empty send; the bytes sent."""
        frame = b""
        for message in messages:
            if len(frame) + len(message) > self.tx.room:
                self.tx.put(frame)
                frame = b""
            frame += message
        if frame:
            self.tx.put(frame)
        return self.tx.send()

    def close(self) -> None:
        self.rings.close()


def open_queue(netns: str, queue: int, rx: RingRequest, tx: RingRequest, flags: int = 0,
               maxlen: int | None = None, rcvbuf: int = 8 << 20) -> RingQueue:
    """A socket of the netns bound to a queue (with a receive buffer of
    rcvbuf bytes behind the ring), its RX and TX rings mapped."""
    sock = netlink_socket(netns, NETLINK_NETFILTER)
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, rcvbuf)
        bind_queue(sock, queue, flags=flags, maxlen=maxlen)
        return RingQueue(sock, rx, tx)
    except BaseException:
        sock.close()
        raise
