"""sock_diag for netlink sockets: what NDIAG_SHOW_RING_CFG reports."""

from __future__ import annotations

import socket
import struct

from nlmmap.abi import RingRequest
from nlmmap.messages import attributes
from nlmmap.ring import NLMSG_DONE, NLMSG_HDR, split_messages

NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
NDIAG_SHOW_RING_CFG = 0x4
NETLINK_DIAG_RX_RING = 2
NETLINK_DIAG_TX_RING = 3
# struct netlink_diag_req: family, protocol, pad, ino, show, cookie[2]
DIAG_REQ = struct.Struct("=BBHIIII")
# struct netlink_diag_msg: family, type, protocol, state, portid, dst_portid, dst_group, ino, cookie[2]
DIAG_MSG = struct.Struct("=BBBBIIIIII")


def diag_ring(protocol: int, portid: int, tx: bool = False) -> RingRequest | None:
    """The RX (or TX) ring sock_diag reports for the socket (protocol, portid); None if none."""
    attr = NETLINK_DIAG_TX_RING if tx else NETLINK_DIAG_RX_RING
    request = DIAG_REQ.pack(socket.AF_NETLINK, protocol, 0, 0, NDIAG_SHOW_RING_CFG, 0, 0)
    header = NLMSG_HDR.pack(NLMSG_HDR.size + len(request), SOCK_DIAG_BY_FAMILY, 0x301, 1, 0)
    found: RingRequest | None = None
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_SOCK_DIAG) as diag:
        diag.send(header + request)
        while True:
            for message in split_messages(diag.recv(1 << 16)):
                msg_type = NLMSG_HDR.unpack_from(message)[1]
                if msg_type == NLMSG_DONE:
                    return found
                if msg_type != SOCK_DIAG_BY_FAMILY:
                    raise OSError(f"sock_diag answered type {msg_type}")
                fields = DIAG_MSG.unpack_from(message, NLMSG_HDR.size)
                if fields[2] == protocol and fields[4] == portid:
                    found = _ring_attr(message[NLMSG_HDR.size + DIAG_MSG.size :], attr)


def _ring_attr(attrs: bytes, attr: int) -> RingRequest | None:
    payload = attributes(attrs).get(attr)
    return None if payload is None else RingRequest.unpack(payload)
