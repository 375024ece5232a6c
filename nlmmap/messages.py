"""Netlink messages the tests send and read: rtnetlink, nftables and
generic netlink control messages through pyroute2's classes, NETLINK_USERSOCK
messages of an exact size, acks, and the one attribute walker for raw
messages."""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator

from pyroute2.netlink import ctrlmsg, nlmsg
from pyroute2.netlink.nfnetlink import NFNL_SUBSYS_NFTABLES, nfgen_msg
from pyroute2.netlink.nfnetlink.nftsocket import nft_table_msg
from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
from pyroute2.netlink.rtnl.marshal import MarshalRtnl
from pyroute2.netlink.rtnl.rtmsg import rtmsg

from nlmmap.ring import NLMSG_HDR

RTM_GETLINK = 18
RTM_NEWADDR = 20
RTM_GETADDR = 22
RTM_NEWROUTE = 24
RTM_GETROUTE = 26
NLM_F_REQUEST = 0x1
NLM_F_ACK = 0x4
NLM_F_REQUEST_DUMP = 0x301
NLM_F_CAPPED = 0x100
NLM_F_ACK_TLVS = 0x200
NLM_F_EXCL = 0x200
NLM_F_CREATE = 0x400
NLMSGERR_ATTR_MSG = 1
NETLINK_EXT_ACK = 11
NETLINK_USERSOCK = 2
USER_TYPE = 0x100  # any type above the reserved control types


def dump_request(rtm_type: int, seq: int = 1) -> bytes:
    """An RTM_GET* dump request for all families."""
    msg = {RTM_GETLINK: ifinfmsg, RTM_GETADDR: ifaddrmsg, RTM_GETROUTE: rtmsg}[rtm_type]()
    return encoded(msg, rtm_type, NLM_F_REQUEST_DUMP, seq, {})


def _new_request(msg: ifaddrmsg | rtmsg, msg_type: int, seq: int, fields: dict[str, object],
                 attrs: list[tuple[str, object]]) -> bytes:
    """An RTM_NEW* request with NLM_F_ACK, CREATE and EXCL."""
    return encoded(msg, msg_type, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, seq, fields, attrs)


def address_request(ifindex: int, address: str, seq: int, prefixlen: int = 32) -> bytes:
    """RTM_NEWADDR for an IPv4 address."""
    return _new_request(ifaddrmsg(), RTM_NEWADDR, seq,
                        {"family": socket.AF_INET, "prefixlen": prefixlen, "index": ifindex},
                        [("IFA_LOCAL", address), ("IFA_ADDRESS", address)])


def route_request(dst: str, oif: int, seq: int) -> bytes:
    """RTM_NEWROUTE for an IPv4 /32 via a link, in the main table."""
    return _new_request(rtmsg(), RTM_NEWROUTE, seq,
                        {"family": socket.AF_INET, "dst_len": 32, "table": 254, "proto": 4,  # static
                         "scope": 253, "type": 1},  # link scope, unicast
                        [("RTA_DST", dst), ("RTA_OIF", oif)])


NETLINK_NETFILTER = 12
NFNL_MSG_BATCH_BEGIN = 0x10
NFNL_MSG_BATCH_END = 0x11
NFT_MSG_NEWTABLE = 0
NFPROTO_INET = 1


def encoded(msg: nlmsg, msg_type: int, flags: int, seq: int, fields: dict[str, object],
             attrs: list[tuple[str, object]] | None = None) -> bytes:
    """A pyroute2 message with this header, fields and attributes, as bytes:
    the one encoder of the clients' requests."""
    for key, value in fields.items():
        msg[key] = value
    if attrs is not None:
        msg["attrs"] = attrs
    msg["header"]["type"] = msg_type
    msg["header"]["flags"] = flags
    msg["header"]["sequence_number"] = seq
    msg.encode()
    return bytes(msg.data)


def nftables_batch(table: str, seq: int) -> bytes:
    """An nfnetlink batch (BEGIN, NFT_MSG_NEWTABLE with NLM_F_ACK, END) that
    creates an inet table: what `nft add table inet <table>` sends."""
    batch = {"nfgen_family": 0, "res_id": NFNL_SUBSYS_NFTABLES}
    return b"".join([
        encoded(nfgen_msg(), NFNL_MSG_BATCH_BEGIN, NLM_F_REQUEST, seq, batch),
        encoded(nft_table_msg(), NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_NEWTABLE,
                 NLM_F_REQUEST | NLM_F_CREATE | NLM_F_ACK, seq + 1, {"nfgen_family": NFPROTO_INET, "res_id": 0},
                 [("NFTA_TABLE_NAME", table)]),
        encoded(nfgen_msg(), NFNL_MSG_BATCH_END, NLM_F_REQUEST, seq + 2, batch),
    ])


def noop_request(seq: int) -> bytes:
    """NLMSG_NOOP with NLM_F_ACK: any netlink family acks it with error 0."""
    return NLMSG_HDR.pack(NLMSG_HDR.size, 1, NLM_F_REQUEST | NLM_F_ACK, seq, 0)


def ack_error(message: bytes) -> tuple[int, int]:
    """(errno, sequence number of the request) of an NLMSG_ERROR ack; errno 0 for success."""
    error = struct.unpack_from("=i", message, NLMSG_HDR.size)[0]
    seq = NLMSG_HDR.unpack_from(message, NLMSG_HDR.size + 4)[3]
    return -error, seq


def ext_ack_text(message: bytes) -> str | None:
    """The NLMSGERR_ATTR_MSG of an ack with extended ack attributes, if any."""
    flags = NLMSG_HDR.unpack_from(message)[2]
    if not flags & NLM_F_ACK_TLVS:
        return None
    off = NLMSG_HDR.size + 4
    off += NLMSG_HDR.size if flags & NLM_F_CAPPED else (NLMSG_HDR.unpack_from(message, off)[0] + 3) & ~3
    text = attributes(message, off).get(NLMSGERR_ATTR_MSG)
    return None if text is None else text.rstrip(b"\0").decode()


def rtnl_key(message: bytes) -> tuple[object, ...]:
    """What identifies a link, address or route: stable between two dumps,
    unlike counters and lifetimes."""
    msg_type = NLMSG_HDR.unpack_from(message)[1]
    parsed = list(MarshalRtnl().parse(message))
    if not parsed or msg_type < 16:
        return (msg_type,)
    msg = parsed[0]
    if msg_type == 16:  # RTM_NEWLINK
        return (msg_type, msg["index"], msg.get("IFLA_IFNAME"))
    if msg_type == 20:  # RTM_NEWADDR
        return (msg_type, msg["index"], msg["prefixlen"], msg.get("IFA_ADDRESS"))
    return (msg_type, msg["family"], msg["table"], msg["dst_len"], msg.get("RTA_DST"),
            msg.get("RTA_OIF"), msg.get("RTA_TABLE"))


def user_message(total: int, seq: int, fill: int | None = None) -> bytes:
    """A NETLINK_USERSOCK message of exactly total bytes; the payload says seq."""
    if total < NLMSG_HDR.size:
        raise ValueError("a netlink message has at least a 16-byte header")
    body = bytes([(seq if fill is None else fill) & 0xFF]) * (total - NLMSG_HDR.size)
    return NLMSG_HDR.pack(total, USER_TYPE, 0, seq, 0) + body


def message_seq(message: bytes) -> int:
    return int(NLMSG_HDR.unpack_from(message)[3])


def address_of(sock: socket.socket) -> tuple[int, int]:
    """The (port id, groups) address that unicasts to a bound socket."""
    return (sock.getsockname()[0], 0)


def send_user(sender: socket.socket, receiver: socket.socket, message: bytes, flags: int = 0) -> None:
    """Unicast one message from one USERSOCK socket to another."""
    sender.sendto(message, flags, address_of(receiver))


def pending_datagrams(sock: socket.socket) -> list[bytes]:
    """Every datagram waiting on a socket without an RX ring, read now."""
    out = []
    while True:
        try:
            out.append(sock.recv(1 << 16, socket.MSG_DONTWAIT))
        except BlockingIOError:
            return out


def has_queued(sock: socket.socket) -> bool:
    """Is anything waiting in the socket's receive queue?"""
    try:
        sock.recv(1, socket.MSG_DONTWAIT | socket.MSG_PEEK)
    except BlockingIOError:
        return False
    return True


def send_group(sender: socket.socket, group: int, message: bytes) -> None:
    """Multicast one message to a USERSOCK group.  netlink_sendmsg() also
    unicasts to port 0, the kernel, which USERSOCK lacks: that part answers
    ECONNREFUSED after the multicast went out."""
    try:
        sender.sendto(message, (0, 1 << (group - 1)))
    except ConnectionRefusedError:
        pass


NETLINK_GENERIC = 16
GENL_ID_CTRL = 0x10
CTRL_CMD_GETFAMILY = 3
NLA_HDR = struct.Struct("=HH")  # nla_len, nla_type
NLA_TYPE_MASK = 0x3FFF  # without NLA_F_NESTED and NLA_F_NET_BYTEORDER


def attr(kind: int, payload: bytes) -> bytes:
    """One netlink attribute, padded to 4 bytes."""
    data = NLA_HDR.pack(NLA_HDR.size + len(payload), kind) + payload
    return data + bytes(-len(data) % 4)


def walk_attributes(data: bytes, off: int = 0) -> Iterator[tuple[int, int, int]]:
    """(type with the flag bits masked, offset, nla_len) of every netlink
    attribute from off on; the walk stops at a length below a header.  The
    one attribute walker of the clients and the tests."""
    while off + NLA_HDR.size <= len(data):
        length, kind = NLA_HDR.unpack_from(data, off)
        if length < NLA_HDR.size:
            return
        yield kind & NLA_TYPE_MASK, off, length
        off += (length + 3) & ~3


def attributes(data: bytes, off: int = 0) -> dict[int, bytes]:
    """The netlink attributes from off on: type (flags masked) -> payload."""
    return {kind: data[start + NLA_HDR.size : start + length] for kind, start, length in walk_attributes(data, off)}


def genl_group(family: str, group: str) -> int:
    """The id of a generic netlink family's multicast group (asked of nlctrl)."""
    request = encoded(ctrlmsg(), GENL_ID_CTRL, NLM_F_REQUEST, 1, {"cmd": CTRL_CMD_GETFAMILY, "version": 1},
                       [("CTRL_ATTR_FAMILY_NAME", family)])
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_GENERIC) as sock:
        sock.send(request)
        reply = ctrlmsg(sock.recv(1 << 16))
    reply.decode()
    for entry in reply.get_attr("CTRL_ATTR_MCAST_GROUPS") or []:
        if entry.get_attr("CTRL_ATTR_MCAST_GRP_NAME") == group:
            return int(entry.get_attr("CTRL_ATTR_MCAST_GRP_ID"))
    raise LookupError(f"generic netlink family {family} has no multicast group {group}")


def first_difference(got: list[bytes], want: list[bytes]) -> int:
    """Index of the first message two streams disagree on (or the shorter length)."""
    for index, (a, b) in enumerate(zip(got, want, strict=False)):
        if a != b:
            return index
    return min(len(got), len(want))
