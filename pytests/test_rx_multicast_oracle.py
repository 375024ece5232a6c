"""Multicast to many listeners, checked against an oracle: every listener,
with a ring of any frame size or without one, sees exactly the messages a
plain recvmsg() listener of the same group sees, in every bind order
(under emulation 8 of the 24, ORDERS below).

The first listener of a kernel multicast shares the sender's skb
(skb_get() in do_one_broadcast()) and later listeners clone it: a ring
that split that skb between frames, or marked it as announced by a COPY
frame, would change what every later listener gets.  nf_tables puts the
notifications of a transaction into one skb (split between small frames);
an rtnetlink link event is one large message (COPY in small frames);
conntrack events come from the packet path (softirq); ethtool notifications
are generic netlink.

A listener with a socket filter that keeps 16 bytes, a plain socket or a
ring, bound at every position among them, gets the first 16 bytes of each
skb the plain listener reads, and the others still see the plain stream:
sk_filter() trims the skb it runs on, and the net fix (patches/net) gives
such a listener a copy of its own.  A ring honours the trim: the 16 bytes
go into one frame."""

from __future__ import annotations

import itertools
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from nlmmap.abi import NETLINK_ADD_MEMBERSHIP, SOL_NETLINK, RingRequest, ring_request
from nlmmap.messages import NETLINK_GENERIC, NETLINK_NETFILTER, first_difference, genl_group
from nlmmap.netns import ip, netlink_socket
from nlmmap.ring import RECV_BUFFER, RxRing, split_messages
from nlmmap.sockfilter import attach_keep_filter

NFNLGRP_NFTABLES = 7
NFNLGRP_CONNTRACK_NEW = 1
RTNLGRP_LINK = 1

# name -> geometry (None: a plain socket, the oracle)
LISTENERS: dict[str, RingRequest | None] = {
    "plain": None,
    "ring64": ring_request(64, 64),
    "ring256": ring_request(256, 64),
    "ring16k": ring_request(16384, 8),
}
# The listener bound last is delivered first and may share the sender's skb:
# rotations put each kind there once (sources beyond the first two).
ROTATIONS = [tuple(list(LISTENERS)[n:] + list(LISTENERS)[:n]) for n in range(len(LISTENERS))]
# The first two sources in every bind order on KVM (or NLMMAP_ALL_ORDERS=1);
# under emulation, where a case takes about 11 s and the boot has an hour,
# the rotations both ways: each kind delivered first, and last, once per
# direction, 8 of the 24 orders.
ALL_ORDERS = os.environ.get("NLMMAP_ACCEL") == "kvm" or os.environ.get("NLMMAP_ALL_ORDERS") == "1"
ORDERS = (list(itertools.permutations(LISTENERS)) if ALL_ORDERS
          else ROTATIONS + [order[::-1] for order in ROTATIONS])


def _nftables_transaction(netns: str) -> None:
    rules = "\n".join(f"add rule inet oracle c udp dport {1000 + n} counter" for n in range(12))
    ip("netns", "exec", netns, "nft", "-f", "-",
       stdin="add table inet oracle\n"
             "add chain inet oracle c { type filter hook input priority 0; }\n" + rules + "\n")


def _link_changes(netns: str) -> None:
    ip("link", "add", "oracle0", "type", "dummy", netns=netns)
    ip("link", "set", "oracle0", "up", netns=netns)


def _new_connections(netns: str) -> None:
    """A ct rule turns conntrack on in the netns; four UDP flows on lo."""
    ip("netns", "exec", netns, "nft", "-f", "-",
       stdin="add table inet conn\nadd chain inet conn out { type filter hook output priority 0; }\n"
             "add rule inet conn out ct state new counter\n")
    ip("netns", "exec", netns, "python3", "-c",
       "import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
       "[s.sendto(b'x' * 100, ('127.0.0.1', 4000 + n)) for n in range(4)]")


def _feature_changes(netns: str) -> None:
    """ethtool feature changes: an ETHTOOL_MSG_FEATURES_NTF each (generic netlink)."""
    ip("link", "add", "oracle1", "type", "dummy", netns=netns)
    for setting in ("sg off", "sg on", "tso off", "tso on"):
        ip("netns", "exec", netns, "ethtool", "-K", "oracle1", *setting.split())


def _ethtool_monitor() -> int:
    return genl_group("ethtool", "monitor")


@dataclass(frozen=True)
class Source:
    """A kernel multicast: its protocol, group (or how to find it) and what makes it."""

    protocol: int
    group: int | Callable[[], int]
    min_messages: int
    trigger: Callable[[str], None]

    def group_id(self) -> int:
        return self.group() if callable(self.group) else self.group


SOURCES = {
    # table, chain, 12 rules and the generation: one or two skbs
    "nftables": Source(NETLINK_NETFILTER, NFNLGRP_NFTABLES, 15, _nftables_transaction),
    # one RTM_NEWLINK per change, each larger than 256-byte frames
    "rtnetlink": Source(socket.NETLINK_ROUTE, RTNLGRP_LINK, 2, _link_changes),
    # conntrack events (IPCTNL_MSG_CT_NEW), one skb each, sent from the packet path
    "conntrack": Source(NETLINK_NETFILTER, NFNLGRP_CONNTRACK_NEW, 4, _new_connections),
    # generic netlink: ethtool's monitor group
    "genetlink": Source(NETLINK_GENERIC, _ethtool_monitor, 4, _feature_changes),
}


def _plain_datagrams(sock: socket.socket, idle: float = 0.5) -> list[bytes]:
    sock.settimeout(idle)
    out: list[bytes] = []
    while True:
        try:
            out.append(sock.recv(RECV_BUFFER))
        except TimeoutError:
            return out


def _plain_messages(sock: socket.socket, idle: float = 0.5) -> list[bytes]:
    return [message for datagram in _plain_datagrams(sock, idle) for message in split_messages(datagram)]


CASES = [(name, order) for name in SOURCES
         for order in (ORDERS if name in ("nftables", "rtnetlink") else ROTATIONS)]


@pytest.mark.parametrize("source_name, order", CASES, ids=[f"{n}-{'-'.join(o)}" for n, o in CASES])
def test_every_listener_sees_the_plain_stream(netns: str, source_name: str, order: tuple[str, ...],
                                              make_rx_ring: Callable[..., RxRing]) -> None:
    source = SOURCES[source_name]
    sockets: dict[str, socket.socket] = {}
    rings: dict[str, RxRing] = {}
    try:
        for name in order:  # bound in this order: the last one bound is delivered to first
            sockets[name] = netlink_socket(netns, source.protocol)
            sockets[name].setsockopt(SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, source.group_id())
            req = LISTENERS[name]
            if req is not None:
                rings[name] = make_rx_ring(sockets[name], req)

        source.trigger(netns)

        streams = {name: rings[name].drain() if name in rings else _plain_messages(sockets[name])
                   for name in order}
        oracle = streams["plain"]
        assert len(oracle) >= source.min_messages, f"the oracle saw {len(oracle)} messages"
        for name in order:
            assert streams[name] == oracle, (
                f"{name} saw {len(streams[name])} messages, the plain listener {len(oracle)}; "
                f"first difference at {first_difference(streams[name], oracle)}")
    finally:
        for sock in sockets.values():
            sock.close()



# Bytes a listener's socket filter keeps; the filtered listeners: a plain
# socket and a ring.
TRIM = 16
FILTERED: dict[str, RingRequest | None] = {"trim": None, "ringtrim": LISTENERS["ring256"]}
# Each filtered listener bound at every position among the others (first
# ... last: last bound is delivered to first and would get the sender's
# skb), for the sources of one large message and of many in one skb; the
# others with the filtered listener bound last.
FILTER_CASES = [(name, kind, position) for name in SOURCES for kind in FILTERED
                for position in (range(len(LISTENERS) + 1) if name in ("nftables", "rtnetlink")
                                 else (len(LISTENERS),))]


@pytest.mark.parametrize("source_name, kind, position", FILTER_CASES,
                         ids=[f"{n}-{k}-at{p}" for n, k, p in FILTER_CASES])
def test_a_trimming_filter_trims_only_its_own_copy(netns: str, source_name: str, kind: str, position: int,
                                                   make_rx_ring: Callable[..., RxRing]) -> None:
    source = SOURCES[source_name]
    order = list(LISTENERS)
    order.insert(position, kind)
    geometry = {**LISTENERS, **FILTERED}
    sockets: dict[str, socket.socket] = {}
    rings: dict[str, RxRing] = {}
    try:
        for name in order:
            sockets[name] = netlink_socket(netns, source.protocol)
            if name == kind:
                attach_keep_filter(sockets[name], TRIM)
            sockets[name].setsockopt(SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, source.group_id())
            req = geometry[name]
            if req is not None:
                rings[name] = make_rx_ring(sockets[name], req)

        source.trigger(netns)

        datagrams = _plain_datagrams(sockets["plain"])
        oracle = [message for datagram in datagrams for message in split_messages(datagram)]
        assert len(oracle) >= source.min_messages, f"the oracle saw {len(oracle)} messages"
        assert all(len(datagram) > TRIM for datagram in datagrams), "a datagram the filter cannot trim"
        for name in LISTENERS:
            if name == "plain":
                continue
            stream = rings[name].drain() if name in rings else _plain_messages(sockets[name])
            assert stream == oracle, (
                f"{name} saw {len(stream)} messages, the plain listener {len(oracle)}; "
                f"first difference at {first_difference(stream, oracle)}")
        # the filtered listener: each delivery trimmed, a ring's in one frame
        trimmed = rings[kind].drain_frames() if kind in rings else _plain_datagrams(sockets[kind])
        assert trimmed == [datagram[:TRIM] for datagram in datagrams], (
            f"{kind} got {[len(t) for t in trimmed]} bytes per delivery, the plain listener "
            f"{[len(d) for d in datagrams]}")
    finally:
        for sock in sockets.values():
            sock.close()
