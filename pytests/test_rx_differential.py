"""Dumps read from a ring against an oracle: the same dump read by a plain
recvmsg() socket.  For every kind of dump (each rtnetlink object that dumps,
generic netlink, nf_tables objects, conntrack entries) and rings whose
frames are smaller than, about as large as and larger than the messages,
the messages from frames and COPY reads equal the plain reader's, header
port id aside (each requester gets its own).

A dump taken twice by a plain socket must agree with itself first: objects
that change between two dumps (a timer, a counter) would make any reader
differ.  Multicast deliveries have their own oracle (test_rx_multicast_oracle.py),
unicast and TX the model (test_model_random.py), nfqueue the packets sent
(test_nfq_ring.py)."""

from __future__ import annotations

import socket
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from nlmmap.abi import RingRequest, ring_request
from nlmmap.messages import NETLINK_GENERIC, NETLINK_NETFILTER, first_difference, walk_attributes
from nlmmap.netns import ip, ip_batch, netlink_socket
from nlmmap.ring import NLMSG_DONE, NLMSG_HDR, RxRing, recv_until_done

NLM_F_DUMP_REQUEST = 0x301
AF_INET6 = socket.AF_INET6


@dataclass(frozen=True)
class Dump:
    protocol: int
    msg_type: int
    body: bytes  # the family header of the request
    min_messages: int  # that the populated netns gives, DONE included
    clock_attr: int = 0  # an attribute that reports ages (cache info): left out of the comparison


def _nft(msg: int) -> int:
    return (10 << 8) | msg  # NFNL_SUBSYS_NFTABLES


DUMPS = {
    "link": Dump(socket.NETLINK_ROUTE, 18, bytes(16), 4),
    "addr": Dump(socket.NETLINK_ROUTE, 22, bytes(8), 6),
    "route": Dump(socket.NETLINK_ROUTE, 26, bytes(12), 8, clock_attr=12),  # RTA_CACHEINFO
    "neigh": Dump(socket.NETLINK_ROUTE, 30, bytes(12), 3, clock_attr=3),  # NDA_CACHEINFO
    "rule": Dump(socket.NETLINK_ROUTE, 34, bytes(12), 4),
    "netconf": Dump(socket.NETLINK_ROUTE, 82, bytes(4), 4),
    "nexthop": Dump(socket.NETLINK_ROUTE, 106, bytes(8), 3),
    # if_stats_msg with IFLA_STATS_LINK_64 in filter_mask
    "stats": Dump(socket.NETLINK_ROUTE, 94, struct.pack("=BBHiI", 0, 0, 0, 0, 1), 4),
    # CTRL_CMD_GETFAMILY, version 1
    "genl-families": Dump(NETLINK_GENERIC, 0x10, bytes([3, 1, 0, 0]), 4),
    "nft-tables": Dump(NETLINK_NETFILTER, _nft(1), bytes(4), 2),
    "nft-chains": Dump(NETLINK_NETFILTER, _nft(4), bytes(4), 3),
    "nft-rules": Dump(NETLINK_NETFILTER, _nft(7), bytes(4), 20),
    "nft-sets": Dump(NETLINK_NETFILTER, _nft(10), bytes(4), 2),
    # IPCTNL_MSG_CT_GET for IPv4
    "conntrack": Dump(NETLINK_NETFILTER, (1 << 8) | 1, bytes([socket.AF_INET, 0, 0, 0]), 2,
                      clock_attr=7),  # CTA_TIMEOUT: seconds left, ticks between two dumps
}

RINGS = {
    "frames256": ring_request(256, 128),
    "frames4k": ring_request(4096, 32),
    "frames64k": ring_request(65536, 4),
}

NFT_RULES = "\n".join(
    ["add table inet diff", "add chain inet diff in { type filter hook input priority 0; }",
     "add chain inet diff out { type filter hook output priority 0; }",
     "add set inet diff ports { type inet_service; elements = { 1, 2, 3 }; }",
     "add rule inet diff out ct state new counter"]
    + [f"add rule inet diff in udp dport {2000 + n} counter comment \"rule {n} {'x' * (n * 4)}\"" for n in range(24)]
) + "\n"


@pytest.fixture(scope="module")
def populated() -> Iterator[str]:
    """One netns with objects of every kind that dumps: links, addresses,
    routes, neighbours, rules, nexthops, nf_tables objects, conntrack entries."""
    from nlmmap.netns import scratch_netns

    with scratch_netns("nlmmap-differential") as netns:
        commands = []
        for n in range(3):
            commands += [f"link add dd{n} type dummy", f"link set dd{n} up",
                         f"addr add 10.9.{n}.1/24 dev dd{n}", f"addr add fd00:{n}::1/64 dev dd{n} nodad",
                         f"neigh add 10.9.{n}.2 lladdr 02:00:00:00:00:0{n} dev dd{n} nud permanent",
                         f"nexthop add id {n + 1} via 10.9.{n}.2 dev dd{n}",
                         f"rule add from 10.9.{n}.0/24 table {100 + n}"]
            commands += [f"route add 172.20.{n}.{r}/32 dev dd{n}" for r in range(8)]
        ip_batch(netns, commands)
        ip("netns", "exec", netns, "nft", "-f", "-", stdin=NFT_RULES)
        yield netns


def _conntrack_flows(netns: str) -> None:
    """Conntrack entries (UDP on lo through the ct rule; they live 30 s)."""
    ip("netns", "exec", netns, "python3", "-c",
       "import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
       "[s.sendto(b'x', ('127.0.0.1', 3000 + n)) for n in range(3)]")


def _request(dump: Dump, seq: int) -> bytes:
    """A dump request: nlmsghdr and the family header of the request."""
    return NLMSG_HDR.pack(NLMSG_HDR.size + len(dump.body), dump.msg_type, NLM_F_DUMP_REQUEST, seq, 0) + dump.body


def _comparable(dump: Dump, messages: list[bytes]) -> list[bytes]:
    """The messages without the requester's port id and without ages."""
    out = []
    for m in messages:
        m = m[:12] + bytes(4) + m[16:]
        if dump.clock_attr and NLMSG_HDR.unpack_from(m)[1] != NLMSG_DONE:
            m = _drop_attr(m, NLMSG_HDR.size + len(dump.body), dump.clock_attr)
        out.append(m)
    return out


def _drop_attr(message: bytes, start: int, attr_type: int) -> bytes:
    body = message[:start]
    for kind, off, length in walk_attributes(message, start):
        if kind != attr_type:
            body += message[off : off + ((length + 3) & ~3)]
    return struct.pack("=I", len(body)) + body[4:]


def _plain_dump(netns: str, dump: Dump, seq: int) -> list[bytes]:
    sock = netlink_socket(netns, dump.protocol)
    try:
        sock.send(_request(dump, seq))
        return _comparable(dump, recv_until_done(sock))
    finally:
        sock.close()


@pytest.mark.parametrize("ring", RINGS.values(), ids=list(RINGS))
@pytest.mark.parametrize("dump", DUMPS.values(), ids=list(DUMPS))
def test_a_ring_reader_gets_the_plain_dump(populated: str, dump: Dump, ring: RingRequest,
                                           make_rx_ring: Callable[..., RxRing]) -> None:
    seq = 4242
    if dump.msg_type == DUMPS["conntrack"].msg_type:
        _conntrack_flows(populated)
    for _ in range(3):
        before = _plain_dump(populated, dump, seq)
        sock = netlink_socket(populated, dump.protocol)
        try:
            rx = make_rx_ring(sock, ring)
            sock.send(_request(dump, seq))
            got = _comparable(dump, rx.collect_until_done())
        finally:
            sock.close()
        after = _plain_dump(populated, dump, seq)
        if before == after:
            break
    else:
        pytest.fail(f"three pairs of plain dumps disagreed: the {dump} objects keep changing")
    assert len(before) >= dump.min_messages, f"the plain dump gave {len(before)} messages"
    assert NLMSG_HDR.unpack_from(before[-1])[1] == NLMSG_DONE, "the plain dump did not end in NLMSG_DONE"
    assert got == before, (f"ring: {len(got)} messages, plain: {len(before)}; "
                           f"first difference at {first_difference(got, before)}")
