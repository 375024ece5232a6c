"""The main job's show, run inside the guest: what the series does right now.

Prints the kernel release and the feature's config state, then reads a
route dump from a live RX ring next to the same dump through recvmsg(),
adds routes with one send of a TX ring whose acks come back in the RX
ring, and passes packets through an nfqueue on the rings (packets in RX
frames, batch verdicts from the TX ring), with the counters of both sides.  Each check is a TAP point, so `make` fails
loudly when the kernel shown is not the one just built or the ring does
not work.
"""

from __future__ import annotations

import errno
import os
import socket
import sys
from collections.abc import Callable
from pathlib import Path

from harness.results import tap_document
from nlmmap.abi import RingRequest, ring_stats
from nlmmap.guestinfo import expected, running_build_id, running_config
from nlmmap.messages import (
    NETLINK_NETFILTER,
    RTM_GETROUTE,
    ack_error,
    dump_request,
    route_request,
    rtnl_key,
)
from nlmmap.netns import add_dummies, ifindex, inside, ip, netlink_socket, scratch_netns
from nlmmap.nfqueue import NF_ACCEPT, Packet, RingQueue, bind_queue, verdict_batch
from nlmmap.process import wait_child
from nlmmap.ring import NLMSG_DONE, RxRing, message_type, recv_until_done, split_messages
from nlmmap.traffic import PORT, collect, load_rules, queue_counters, received, send_flows
from nlmmap.tx import open_rings

TX_ROUTES = 200


def show_rx_ring(netns: str) -> bool:
    """Dump the routes of a netns with 50 links through an RX ring of 16
    frames, and the same dump with recvmsg(); print both and the counters."""
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


def show_tx_ring(netns: str) -> bool:
    """Add 200 routes with one send of a TX ring; read their acks from the RX
    ring; check the routing table and the counters."""
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


def show_nfqueue(netns: str) -> bool:
    """Four processes send 100 UDP packets each into nfqueue 0; the daemon
    reads them from its RX ring and accepts them with a batch verdict from
    its TX ring every 32 packets; both sides' counters must agree."""
    load_rules(netns)
    with inside(netns):
        receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.setsockopt(socket.SOL_SOCKET, 33, 8 << 20)  # SO_RCVBUFFORCE
    receiver.bind(("127.0.0.1", PORT))
    sock = netlink_socket(netns, NETLINK_NETFILTER)
    sock.setsockopt(socket.SOL_SOCKET, 33, 8 << 20)
    bind_queue(sock, 0)
    queue = RingQueue(sock, RingRequest(4096, 128, 2048, 256), RingRequest(4096, 1, 4096, 1))
    ids: list[int] = []
    in_order = True

    def on_packet(packet: Packet) -> None:
        nonlocal in_order
        in_order = in_order and (not ids or packet.id > ids[-1])
        ids.append(packet.id)
        if len(ids) % 32 == 0:
            queue.send_verdicts([verdict_batch(0, packet.id, NF_ACCEPT)])

    pids = send_flows(netns, 4, 100, [64])
    collect(queue, 400, on_packet)
    queue.send_verdicts([verdict_batch(0, ids[-1], NF_ACCEPT)])
    senders_ok = all(wait_child(pid) == 0 for pid in pids)
    delivered = len(received(receiver, 400))
    counters = queue_counters(netns, 0)
    stats = ring_stats(sock)
    queue.close()
    sock.close()
    receiver.close()
    print("NFQUEUE rings    queue 0, RX 256 frames of 2048 bytes, TX 1 frame; 4 senders x 100 UDP packets")
    print(f"  daemon         {len(ids)} packets read from frames, ids {ids[0]}..{ids[-1]} "
          f"{'strictly rising' if in_order else 'OUT OF ORDER'}, "
          f"{(len(ids) + 31) // 32} batch verdicts from the TX ring")
    print(f"  receiver       {delivered} packets delivered after the verdicts")
    print(f"  queue          {counters['total']} waiting, {counters['dropped']} dropped, "
          f"{counters['user_dropped']} user-dropped, id sequence {counters['id_sequence']}")
    print(f"  rings          RX {stats.rx_frames} frames, {stats.rx_copies} COPY, {stats.rx_drops} dropped; "
          f"TX {stats.tx_frames} frames sent")
    return (senders_ok and in_order and delivered == 400 and counters["total"] == 0
            and counters["user_dropped"] == 0 and stats.rx_frames == 400)


def run_show(label: str, show: Callable[[str], bool], netns: str) -> bool:
    """One part of the show in a scratch netns; an error fails the part."""
    try:
        with scratch_netns(netns) as name:
            return show(name)
    except (OSError, TimeoutError) as err:
        print(f"{label:<16} failed: {errno.errorcode.get(getattr(err, 'errno', 0) or 0, '')} ({err})")
        return False


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

    check(run_show("NETLINK_RX_RING", show_rx_ring, "nlmmap-demo"),
          "a route dump read from the RX ring equals the recvmsg() dump")
    check(run_show("NETLINK_TX_RING", show_tx_ring, "nlmmap-demo-tx"),
          "routes added with one TX ring send, acks read from the RX ring")
    check(run_show("NFQUEUE rings", show_nfqueue, "nlmmap-demo-nfq"),
          "nfqueue packets read from the RX ring in id order, batch verdicts from the TX ring")
    tap_path.write_text(tap_document(points))
    return 0


if __name__ == "__main__":
    sys.exit(main())
