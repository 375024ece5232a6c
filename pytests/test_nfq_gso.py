"""GSO packets through an nfqueue on the rings.  With NFQA_CFG_F_GSO the
kernel queues TCP super-packets whole (up to 64 KiB, larger than a frame):
they arrive by COPY in their place between the frame-sized packets of the
same stream (handshake, short segments).  Traffic: one TCP stream from a
client netns over a veth pair (GSO on) into the test netns, queued in its
input hook.  Every queued payload is compared with the bytes the client sent
at that sequence number, and the server receives the stream intact."""

from __future__ import annotations

import hashlib
import random
import socket
import struct
import threading
from collections.abc import Iterator

import pytest

from nlmmap.abi import NL_MMAP_HDRLEN, ring_request, ring_stats
from nlmmap.netns import enter, inside, ip, scratch_netns
from nlmmap.nfqueue import NF_ACCEPT, NFQA_CFG_F_GSO, NFQA_SKB_GSO, Packet, RingQueue, open_queue, verdict_batch
from nlmmap.process import fork_child, wait_child

SERVER, CLIENT, TCP_PORT = "10.77.0.1", "10.77.0.2", 9997
STREAM = random.Random(7).randbytes(1 << 20)
# Frames hold a packet of up to two segments; bigger ones arrive by COPY.
RX = ring_request(4096, 256)
TX = ring_request(4096, 4)
RULES = f"""
table inet nlmmap_gso {{
    chain in {{
        type filter hook input priority 0; policy accept;
        tcp dport {TCP_PORT} queue num 0
    }}
}}
"""
TCP_SYN = 0x02


@pytest.fixture
def client_netns(netns: str) -> Iterator[str]:
    """A second netns joined to the test netns by a veth pair (GSO and TSO
    on).  TCP sizes its super-packets to about 1 ms at its pacing rate, which
    is a few segments in a slow emulated guest: ask for at least 40."""
    with scratch_netns(f"{netns}-client") as client:
        ip("netns", "exec", client, "sysctl", "-qw", "net.ipv4.tcp_min_tso_segs=40")
        ip("link", "add", "vs", "type", "veth", "peer", "name", "vc", "netns", client, netns=netns)
        for ns, link, address in ((netns, "vs", SERVER), (client, "vc", CLIENT)):
            ip("addr", "add", f"{address}/24", "dev", link, netns=ns)
            ip("link", "set", link, "up", netns=ns)
        ip("netns", "exec", netns, "nft", "-f", "-", stdin=RULES)
        yield client


@pytest.fixture
def gso_queue(netns: str) -> Iterator[RingQueue]:
    queue = open_queue(netns, 0, RX, TX, flags=NFQA_CFG_F_GSO)
    try:
        yield queue
    finally:
        queue.close()
        queue.sock.close()


def tcp_segment(packet: Packet) -> tuple[int, int, bytes]:
    """(sequence number, flags, payload) of a queued IPv4 TCP packet."""
    ihl = (packet.payload[0] & 0x0F) * 4
    total = struct.unpack_from("!H", packet.payload, 2)[0]
    seq, offset_flags = struct.unpack_from("!4xI4xH", packet.payload, ihl)
    data_offset = (offset_flags >> 12) * 4
    return seq, offset_flags & 0xFF, packet.payload[ihl + data_offset : total]


def serve_one(netns: str, received: list[bytes]) -> threading.Thread:
    """A thread accepting one connection in netns and reading it to the end."""
    with inside(netns):
        listener = socket.create_server((SERVER, TCP_PORT))

    def run() -> None:
        with listener:
            listener.settimeout(120)
            conn, _ = listener.accept()
            with conn:
                conn.settimeout(120)
                while chunk := conn.recv(1 << 16):
                    received.append(chunk)

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_gso_packets_arrive_whole_by_copy_in_order(netns: str, client_netns: str,
                                                   gso_queue: RingQueue) -> None:
    received: list[bytes] = []
    server = serve_one(netns, received)

    def client() -> None:
        enter(client_netns)
        with socket.create_connection((SERVER, TCP_PORT), timeout=120) as sock:
            sock.sendall(STREAM)

    pid = fork_child(client)
    packets: list[Packet] = []
    # The daemon: accept everything seen so far with one batch verdict per round.
    while server.is_alive():
        batch = list(gso_queue.packets())
        if batch:
            packets += batch
            gso_queue.send_verdicts([verdict_batch(0, batch[-1].id, NF_ACCEPT)])
        else:
            gso_queue.rx.wait(timeout=0.2)
    server.join()
    assert wait_child(pid) == 0
    # what was queued after the server's last read (the end of the connection)
    while gso_queue.rx.wait(timeout=1.0):
        batch = list(gso_queue.packets())
        if not batch:
            break
        packets += batch
        gso_queue.send_verdicts([verdict_batch(0, batch[-1].id, NF_ACCEPT)])
    assert hashlib.sha256(b"".join(received)).digest() == hashlib.sha256(STREAM).digest()

    ids = [p.id for p in packets]
    assert ids == list(range(ids[0], ids[0] + len(ids))), "ring order is not id order"
    first_seq, flags, _ = tcp_segment(packets[0])
    assert flags & TCP_SYN, "the stream starts with the SYN"
    spans = []
    for packet in packets:
        seq, _, data = tcp_segment(packet)
        offset = (seq - first_seq - 1) % (1 << 32)
        assert data == STREAM[offset : offset + len(data)], f"packet {packet.id}: payload differs at {offset}"
        spans.append((offset, offset + len(data)))
    covered = 0
    for start, end in sorted(spans):
        if start <= covered:
            covered = max(covered, end)
    assert covered == len(STREAM), "queued packets do not cover the stream"

    gso = [p for p in packets if p.skb_info & NFQA_SKB_GSO]
    larger = [p for p in packets if len(p.payload) > RX.frame_size - NL_MMAP_HDRLEN]
    assert gso and larger, "no GSO super-packet was queued whole"
    assert set(p.id for p in larger) <= set(p.id for p in gso)
    stats = ring_stats(gso_queue.sock)
    assert stats.rx_copies >= len(larger)
    assert stats.rx_frames >= 1 and stats.rx_frames + stats.rx_copies == len(packets)
