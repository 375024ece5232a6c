"""A small nfnetlink_queue client over the rings: bind a queue, read packets
from the RX ring (COPY ones with recvmsg()), send verdicts through the TX
ring, one frame holding many verdict messages."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass

from pyroute2.netlink import nla
from pyroute2.netlink.nfnetlink import NFNL_SUBSYS_QUEUE, nfgen_msg

from nlmmap.abi import RingRequest
from nlmmap.messages import NETLINK_NETFILTER, NLM_F_ACK, NLM_F_REQUEST, ack_error, encoded
from nlmmap.netns import netlink_socket
from nlmmap.ring import NLMSG_ERROR, message_type, split_messages
from nlmmap.tx import Rings, open_rings

NFQNL_MSG_PACKET = 0
NFQNL_MSG_VERDICT = 1
NFQNL_MSG_CONFIG = 2
NFQNL_MSG_VERDICT_BATCH = 3

NFQA_SKB_CSUMNOTREADY = 1 << 0
NFQA_SKB_GSO = 1 << 1
NFQNL_CFG_CMD_BIND = 1
NFQNL_CFG_CMD_UNBIND = 2
NFQNL_COPY_PACKET = 2
NFQA_CFG_F_FAIL_OPEN = 1 << 0
NFQA_CFG_F_GSO = 1 << 2

SO_RCVBUFFORCE = 33

NF_DROP = 0
NF_ACCEPT = 1
NF_QUEUE = 3


# pyroute2 has nfnetlink's header (nfgen_msg) but not nfnetlink_queue's
# messages: these are its message classes for them, attribute numbers as in
# <linux/netfilter/nfnetlink_queue.h>.
class nfqnl_msg(nfgen_msg):  # type: ignore[misc]
    """NFQNL_MSG_PACKET, NFQNL_MSG_VERDICT and NFQNL_MSG_VERDICT_BATCH."""

    nla_map = ((1, "NFQA_PACKET_HDR", "packet_hdr"),
               (2, "NFQA_VERDICT_HDR", "verdict_hdr"),
               (3, "NFQA_MARK", "be32"),
               (10, "NFQA_PAYLOAD", "cdata"),
               (13, "NFQA_CAP_LEN", "be32"),
               (14, "NFQA_SKB_INFO", "be32"))

    class packet_hdr(nla):  # type: ignore[misc]
        fields = (("packet_id", ">I"), ("hw_protocol", ">H"), ("hook", "B"))

    class verdict_hdr(nla):  # type: ignore[misc]
        fields = (("verdict", ">I"), ("id", ">I"))


class nfqnl_config_msg(nfgen_msg):  # type: ignore[misc]
    """NFQNL_MSG_CONFIG."""

    nla_map = ((1, "NFQA_CFG_CMD", "cmd"),
               (2, "NFQA_CFG_PARAMS", "params"),
               (3, "NFQA_CFG_QUEUE_MAXLEN", "be32"),
               (4, "NFQA_CFG_MASK", "be32"),
               (5, "NFQA_CFG_FLAGS", "be32"))

    class cmd(nla):  # type: ignore[misc]
        fields = (("command", "B"), ("_pad", "B"), ("pf", ">H"))

    class params(nla):  # type: ignore[misc]
        fields = (("copy_range", ">I"), ("copy_mode", "B"))


Attrs = list[tuple[str, object]]


def nf_queue_to(queue: int) -> int:
    """The verdict that requeues a packet to another queue."""
    return NF_QUEUE | queue << 16


def queue_message(msg: int, queue: int, attrs: Attrs, seq: int = 0, flags: int = NLM_F_REQUEST) -> bytes:
    """One nfnetlink_queue message of type msg for the queue."""
    message = nfqnl_config_msg() if msg == NFQNL_MSG_CONFIG else nfqnl_msg()
    return encoded(message, NFNL_SUBSYS_QUEUE << 8 | msg, flags, seq,
                   {"nfgen_family": socket.AF_UNSPEC, "res_id": queue}, attrs)


def verdict(queue: int, packet_id: int, verdict: int, mark: int | None = None,
            payload: bytes | None = None) -> bytes:
    """NFQNL_MSG_VERDICT for one packet, optionally with a mark and a new payload."""
    attrs: Attrs = [("NFQA_VERDICT_HDR", {"verdict": verdict, "id": packet_id})]
    if mark is not None:
        attrs.append(("NFQA_MARK", mark))
    if payload is not None:
        attrs.append(("NFQA_PAYLOAD", payload))
    return queue_message(NFQNL_MSG_VERDICT, queue, attrs)


def verdict_batch(queue: int, packet_id: int, verdict: int) -> bytes:
    """NFQNL_MSG_VERDICT_BATCH: the verdict for every queued packet up to packet_id."""
    return queue_message(NFQNL_MSG_VERDICT_BATCH, queue,
                         [("NFQA_VERDICT_HDR", {"verdict": verdict, "id": packet_id})])


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
    msg = nfqnl_msg(message)
    msg.decode()
    return Packet(msg["res_id"], msg.get_attr("NFQA_PACKET_HDR")["packet_id"],
                  msg.get_attr("NFQA_PAYLOAD") or b"", msg.get_attr("NFQA_CAP_LEN"), msg.get_attr("NFQA_MARK"),
                  msg.get_attr("NFQA_SKB_INFO") or 0)


def _config(sock: socket.socket, queue: int, attrs: Attrs, ack: bool = True) -> None:
    """One NFQNL_MSG_CONFIG; with ack, wait for it (a socket without an RX ring)."""
    sock.send(queue_message(NFQNL_MSG_CONFIG, queue, attrs, flags=NLM_F_REQUEST | (NLM_F_ACK if ack else 0)))
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
    _config(sock, queue, [("NFQA_CFG_CMD", {"command": NFQNL_CFG_CMD_BIND, "pf": 0})], ack)
    _config(sock, queue, [("NFQA_CFG_PARAMS", {"copy_range": copy_range, "copy_mode": NFQNL_COPY_PACKET})], ack)
    if flags:
        _config(sock, queue, [("NFQA_CFG_FLAGS", flags), ("NFQA_CFG_MASK", flags)], ack)
    if maxlen is not None:
        _config(sock, queue, [("NFQA_CFG_QUEUE_MAXLEN", maxlen)], ack)


def unbind_queue(sock: socket.socket, queue: int) -> None:
    """Unbind (no ack: it would land in the RX ring); queued packets are dropped."""
    _config(sock, queue, [("NFQA_CFG_CMD", {"command": NFQNL_CFG_CMD_UNBIND, "pf": 0})], ack=False)


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
