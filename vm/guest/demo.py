"""The main job's show, run inside the guest: what the series does right now.

Prints the kernel release and the feature's config state, then reads a
route dump from a live RX ring next to the same dump through recvmsg(),
and adds routes with one send of a TX ring whose acks come back in the RX
ring, with the rings' counters.  Each check is a TAP point, so `make` fails
loudly when the kernel shown is not the one just built or the ring does
not work.
"""

from __future__ import annotations

import errno
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "pytests"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from guestinfo import expected, running_build_id, running_config  # noqa: E402
from harness.results import tap_document  # noqa: E402
from nlmmap.abi import RingRequest, ring_stats  # noqa: E402
from nlmmap.messages import RTM_GETROUTE, ack_error, dump_request, route_request, rtnl_key  # noqa: E402
from nlmmap.netns import add_dummies, ifindex, ip, netlink_socket  # noqa: E402
from nlmmap.ring import NLMSG_DONE, RxRing, message_type, recv_until_done, split_messages  # noqa: E402
from nlmmap.tx import open_rings  # noqa: E402

TX_ROUTES = 200


def show_rx_ring() -> bool:
    """Dump the routes of a netns with 50 links through an RX ring of 16
    frames, and the same dump with recvmsg(); print both and the counters."""
    netns = "nlmmap-demo"
    ip("netns", "add", netns)
    try:
        add_dummies(netns, 50, routes_per_link=4)
        plain = netlink_socket(netns)
        plain.send(dump_request(RTM_GETROUTE))
        expected_dump = recv_until_done(plain)
        plain.close()

        sock = netlink_socket(netns)
        ring = RxRing(sock, RingRequest(block_size=16384, block_nr=4, frame_size=4096, frame_nr=16))
        sock.send(dump_request(RTM_GETROUTE))
        first = ring.frame(0)
        got = ring.collect_until_done()
        stats = ring_stats(sock)
        print(f"NETLINK_RX_RING  {ring.req.frame_nr} frames of {ring.req.frame_size} bytes, mapped at offset 0")
        print(f"  first frame    status {first.status} (VALID), nm_len {first.length}, "
              f"{len(split_messages(ring.payload(first)))} messages" if first.status else "  first frame    empty")
        print(f"  route dump     {len(got)} messages from the ring, {len(expected_dump)} with recvmsg(), "
              f"last {'NLMSG_DONE' if message_type(got[-1]) == NLMSG_DONE else message_type(got[-1])}")
        print(f"  counters       {stats.rx_frames} frames written, {stats.rx_copies} COPY, {stats.rx_drops} dropped")
        ring.close()
        sock.close()
        same = [rtnl_key(m) for m in got] == [rtnl_key(m) for m in expected_dump]
        return same and stats.rx_frames > 0
    except OSError as err:
        print(f"NETLINK_RX_RING  failed: {errno.errorcode.get(err.errno or 0, err.errno)} ({err})")
        return False
    finally:
        ip("netns", "del", netns)


def show_tx_ring() -> bool:
    """Add 200 routes with one send of a TX ring; read their acks from the RX
    ring; check the routing table and the counters."""
    netns = "nlmmap-demo-tx"
    ip("netns", "add", netns)
    try:
        add_dummies(netns, 1)
        oif = ifindex(netns, "d0")
        sock = netlink_socket(netns)
        small = RingRequest(block_size=4096, block_nr=16, frame_size=256, frame_nr=256)
        rings = open_rings(sock, small, small)
        assert rings.rx is not None and rings.tx is not None
        for n in range(TX_ROUTES):
            rings.tx.put(route_request(f"192.0.2.{n}", oif, seq=n + 1))
        sent = rings.tx.send()
        acks = [ack_error(m) for m in rings.rx.drain()]
        stats = ring_stats(sock)
        rings.close()
        sock.close()
        routes = ip("route", "show", "proto", "static", netns=netns).count("192.0.2.")
        print(f"NETLINK_TX_RING  {small.frame_nr} frames of {small.frame_size} bytes, after the RX ring in one mapping")
        print(f"  one send       {sent} bytes: {TX_ROUTES} RTM_NEWROUTE requests; routing table now holds {routes}")
        print(f"  acks           {len(acks)} read from the RX ring, {sum(1 for e, _ in acks if e)} with an error")
        print(f"  counters       TX {stats.tx_frames} frames sent, {stats.tx_errors} errors; "
              f"RX {stats.rx_frames} frames written, {stats.rx_drops} dropped")
        return (routes == TX_ROUTES and acks == [(0, n + 1) for n in range(TX_ROUTES)]
                and stats.tx_frames == TX_ROUTES)
    except OSError as err:
        print(f"NETLINK_TX_RING  failed: {errno.errorcode.get(err.errno or 0, err.errno)} ({err})")
        return False
    finally:
        ip("netns", "del", netns)


def main() -> int:
    tap_path = Path(sys.argv[1])
    points: list[str] = []

    def check(ok: bool, what: str) -> None:
        points.append(f"{'ok' if ok else 'not ok'} {len(points) + 1} {what}")

    release = os.uname().release
    build_id = running_build_id()
    print(f"kernel release   {release}")
    print(f"build id         {build_id}")
    check(release == expected("NLMMAP_EXPECT_RELEASE") and build_id == expected("NLMMAP_EXPECT_BUILD_ID"),
          "guest runs the kernel just built")
    config = running_config()
    for option in ("CONFIG_NETLINK_MMAP", "CONFIG_NETLINK_DIAG", "CONFIG_KASAN", "CONFIG_PROVE_LOCKING"):
        print(f"{option:<24} {config.get(option, 'not set')}")
    check(config.get("CONFIG_NETLINK_MMAP") == "y", "CONFIG_NETLINK_MMAP=y")

    check(show_rx_ring(), "a route dump read from the RX ring equals the recvmsg() dump")
    check(show_tx_ring(), "routes added with one TX ring send, acks read from the RX ring")
    tap_path.write_text(tap_document(points))
    return 0


if __name__ == "__main__":
    sys.exit(main())
