"""sock_diag for netlink sockets: what NDIAG_SHOW_RING_CFG reports."""

from __future__ import annotations

import socket

from pyroute2.netlink import nlmsg
from pyroute2.netlink.diag import SOCK_DIAG_BY_FAMILY, sock_diag_req

from nlmmap.abi import RingRequest
from nlmmap.messages import NLM_F_REQUEST_DUMP, encoded
from nlmmap.ring import NLMSG_DONE, message_type, split_messages

NETLINK_SOCK_DIAG = 4
NDIAG_SHOW_RING_CFG = 0x4


# pyroute2 has sock_diag's request header but not netlink_diag's request and
# answer (<linux/netlink_diag.h>): these are its message classes for them.
class netlink_diag_req(sock_diag_req):  # type: ignore[misc]
    fields = (*sock_diag_req.fields, ("pad", "H"), ("ndiag_ino", "I"), ("ndiag_show", "I"),
              ("ndiag_cookie0", "I"), ("ndiag_cookie1", "I"))


class netlink_diag_msg(nlmsg):  # type: ignore[misc]
    fields = (("ndiag_family", "B"), ("ndiag_type", "B"), ("ndiag_protocol", "B"), ("ndiag_state", "B"),
              ("ndiag_portid", "I"), ("ndiag_dst_portid", "I"), ("ndiag_dst_group", "I"), ("ndiag_ino", "I"),
              ("ndiag_cookie0", "I"), ("ndiag_cookie1", "I"))
    nla_map = ((0, "NETLINK_DIAG_MEMINFO", "hex"),
               (1, "NETLINK_DIAG_GROUPS", "hex"),
               (2, "NETLINK_DIAG_RX_RING", "cdata"),
               (3, "NETLINK_DIAG_TX_RING", "cdata"),
               (4, "NETLINK_DIAG_FLAGS", "uint32"))


def diag_request(protocol: int) -> bytes:
    """A dump of every netlink socket of the protocol, with its ring configuration."""
    return encoded(netlink_diag_req(), SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST_DUMP, 1,
                   {"sdiag_family": socket.AF_NETLINK, "sdiag_protocol": protocol, "ndiag_show": NDIAG_SHOW_RING_CFG})


def diag_ring(protocol: int, portid: int, tx: bool = False) -> RingRequest | None:
    """The RX (or TX) ring sock_diag reports for the socket (protocol, portid); None if none."""
    attr = "NETLINK_DIAG_TX_RING" if tx else "NETLINK_DIAG_RX_RING"
    found: RingRequest | None = None
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_SOCK_DIAG) as diag:
        diag.send(diag_request(protocol))
        while True:
            for message in split_messages(diag.recv(1 << 16)):
                msg_type = message_type(message)
                if msg_type == NLMSG_DONE:
                    return found
                if msg_type != SOCK_DIAG_BY_FAMILY:
                    raise OSError(f"sock_diag answered type {msg_type}")
                answer = netlink_diag_msg(message)
                answer.decode()
                if answer["ndiag_protocol"] == protocol and answer["ndiag_portid"] == portid:
                    payload = answer.get_attr(attr)
                    found = None if payload is None else RingRequest.unpack(payload)
