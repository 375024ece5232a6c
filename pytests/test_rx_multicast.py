"""Multicast into the RX ring: rtnetlink link and address events of changes
in the socket's netns arrive in frames with their group in the header."""

from __future__ import annotations

from collections.abc import Callable

from pyroute2.netlink.rtnl.marshal import MarshalRtnl

from nlmmap.abi import NETLINK_ADD_MEMBERSHIP, SOL_NETLINK, ring_request, ring_stats
from nlmmap.netns import ip, netlink_socket
from nlmmap.ring import RxRing, split_messages

RTNLGRP_LINK = 1
RTNLGRP_IPV4_IFADDR = 5
RTM_NEWLINK = 16
RTM_NEWADDR = 20
RING = ring_request(4096, 16)


def test_link_and_address_events_arrive_in_frames(netns: str, make_rx_ring: Callable[..., RxRing]) -> None:
    sock = netlink_socket(netns, groups=(1 << (RTNLGRP_LINK - 1)) | (1 << (RTNLGRP_IPV4_IFADDR - 1)))
    ring = make_rx_ring(sock, RING)

    ip("link", "add", "ev0", "type", "dummy", netns=netns)
    ip("addr", "add", "192.0.2.1/24", "dev", "ev0", netns=netns)

    events: list[tuple[int, int, object]] = []  # (group, type, name or address)
    while ring.wait(2.0):
        while (got := ring.read()) is not None:
            frame, data = got
            for message in split_messages(data):
                msg = next(iter(MarshalRtnl().parse(message)))
                key = msg.get("IFLA_IFNAME") if msg["header"]["type"] == RTM_NEWLINK else msg.get("IFA_ADDRESS")
                events.append((frame.group, msg["header"]["type"], key))
        if (RTNLGRP_IPV4_IFADDR, RTM_NEWADDR, "192.0.2.1") in events:
            break
    assert (RTNLGRP_LINK, RTM_NEWLINK, "ev0") in events
    assert (RTNLGRP_IPV4_IFADDR, RTM_NEWADDR, "192.0.2.1") in events
    assert ring_stats(sock).rx_frames >= 2
    sock.close()


def test_events_of_other_netns_do_not_arrive(netns: str, make_rx_ring: Callable[..., RxRing]) -> None:
    sock = netlink_socket(netns)
    sock.setsockopt(SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, RTNLGRP_LINK)
    ring = make_rx_ring(sock, RING)
    ip("link", "add", "nlmmap-other", "type", "dummy")
    try:
        assert not ring.wait(0.5)
        assert ring_stats(sock).rx_frames == 0
    finally:
        ip("link", "del", "nlmmap-other")
    sock.close()
