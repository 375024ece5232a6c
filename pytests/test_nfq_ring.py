"""nfnetlink_queue over the rings: packets arrive in RX frames (COPY for the
ones larger than a frame) in packet-id order, verdicts go out through the TX
ring, batch verdicts cover only seen packets, and the counters of the queue
and of the receiver agree.  Traffic: UDP over lo in a netns, queued by an
nftables rule in the output hook, sent by several processes at once."""

from __future__ import annotations

import os
import signal
import socket
import struct
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from nlmmap.abi import NL_MMAP_HDRLEN, NL_MMAP_STATUS_COPY, NL_MMAP_STATUS_VALID, RingRequest, ring_request, ring_stats
from nlmmap.guestinfo import expected
from nlmmap.messages import NETLINK_NETFILTER
from nlmmap.netns import inside, ip, netlink_socket
from nlmmap.nfqueue import (
    NF_ACCEPT,
    NF_DROP,
    NFQA_CFG_F_FAIL_OPEN,
    SO_RCVBUFFORCE,
    Packet,
    RingQueue,
    bind_queue,
    nf_queue_to,
    open_queue,
    parse_packet,
    unbind_queue,
    verdict,
    verdict_batch,
)
from nlmmap.process import fork_child, wait_child
from nlmmap.traffic import (
    BYPASS_PORT,
    MARK_DROPPED,
    PORT,
    collect,
    datagram,
    load_rules,
    queue_counters,
    received,
    send_flows,
    udp_data,
)

RX = ring_request(2048, 512)
TX = ring_request(4096, 4)


@pytest.fixture
def nfq_netns(netns: str) -> str:
    """The netns with the queueing rules loaded."""
    load_rules(netns)
    return netns


def udp_receiver(netns: str, port: int) -> socket.socket:
    with inside(netns):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 16 << 20)
    sock.bind(("127.0.0.1", port))
    return sock


@pytest.fixture
def receiver(nfq_netns: str) -> Iterator[socket.socket]:
    """The UDP socket the packets queued to queue 0 are addressed to."""
    sock = udp_receiver(nfq_netns, PORT)
    try:
        yield sock
    finally:
        sock.close()


@pytest.fixture
def make_queue(nfq_netns: str) -> Iterator[Callable[..., RingQueue]]:
    """Factory: a socket bound to an nfqueue with RX and TX rings."""
    queues: list[RingQueue] = []

    def make(queue: int = 0, flags: int = 0, maxlen: int | None = None, rx: RingRequest = RX,
             rcvbuf: int = 8 << 20) -> RingQueue:
        ring_queue = open_queue(nfq_netns, queue, rx, TX, flags=flags, maxlen=maxlen, rcvbuf=rcvbuf)
        queues.append(ring_queue)
        return ring_queue

    yield make
    for ring_queue in queues:
        ring_queue.close()
        ring_queue.sock.close()


def test_ring_order_is_packet_id_order_and_batch_verdicts_cover_seen_packets(
        nfq_netns: str, receiver: socket.socket, make_queue: Callable[..., RingQueue]) -> None:
    """Two processes per vCPU, each pinned to its vCPU, flood one queue: ids
    rise strictly in ring order, batch verdicts for the last seen id release
    exactly the packets seen, nothing is lost or verdicted twice, counters
    agree.  (make check runs it again on a 4-vCPU guest: suite nfq_smp.)"""
    flows = 2 * len(os.sched_getaffinity(0))
    per_flow = 600 // flows
    total = flows * per_flow
    queue = make_queue(maxlen=4 * total)
    ids: list[int] = []
    pids = send_flows(nfq_netns, flows, per_flow, [64])

    def on_packet(packet: Packet) -> None:
        assert not ids or packet.id > ids[-1], f"id {packet.id} after {ids[-1]}"
        ids.append(packet.id)
        if len(ids) % 16 == 0:
            queue.send_verdicts([verdict_batch(0, packet.id, NF_ACCEPT)])

    collect(queue, total, on_packet)
    queue.send_verdicts([verdict_batch(0, ids[-1], NF_ACCEPT)])
    assert all(wait_child(pid) == 0 for pid in pids)
    assert ids == list(range(ids[0], ids[0] + total))

    got = received(receiver, total)
    per_flow_seqs: dict[int, list[int]] = {}
    for data in got:
        flow, seq = (int(x) for x in data.split(b":")[:2])
        per_flow_seqs.setdefault(flow, []).append(seq)
    assert {f: sorted(s) for f, s in per_flow_seqs.items()} == {f: list(range(per_flow)) for f in range(flows)}
    counters = queue_counters(nfq_netns, 0)
    assert (counters["total"], counters["dropped"], counters["user_dropped"]) == (0, 0, 0)
    assert counters["id_sequence"] == ids[-1]
    stats = ring_stats(queue.sock)
    assert stats.rx_frames == total and stats.rx_drops == 0


def test_mixed_sizes_frames_and_copy_in_order(nfq_netns: str, receiver: socket.socket,
                                              make_queue: Callable[..., RingQueue]) -> None:
    """Small packets land in frames, packets larger than a frame by COPY; one
    stream, order intact, payload bytes equal end to end."""
    sizes = [64, 3000, 200, 1400, 6000, 100]
    per_flow = 3 * len(sizes)
    queue = make_queue()
    packets: list[Packet] = []
    pids = send_flows(nfq_netns, 1, per_flow, sizes)
    collect(queue, per_flow, packets.append)
    assert all(wait_child(pid) == 0 for pid in pids)
    queue.send_verdicts([verdict(0, p.id, NF_ACCEPT) for p in packets])

    expected = [datagram(0, seq, sizes[seq % len(sizes)]) for seq in range(per_flow)]
    assert [udp_data(p) for p in packets] == expected
    assert received(receiver, per_flow) == expected
    stats = ring_stats(queue.sock)
    assert stats.rx_copies == 3 * sum(1 for s in sizes if s + 200 > RX.frame_size - NL_MMAP_HDRLEN)
    assert stats.rx_frames == per_flow - stats.rx_copies


def _udp_without_checksum(packet: bytes, data: bytes) -> bytes:
    """The IPv4 packet with its UDP payload replaced (same length), UDP checksum 0."""
    ihl = (packet[0] & 0x0F) * 4
    udp = bytearray(packet[ihl : ihl + 8])
    struct.pack_into("!H", udp, 6, 0)
    return packet[:ihl] + bytes(udp) + data


def test_verdicts_through_the_tx_ring(nfq_netns: str, receiver: socket.socket,
                                      make_queue: Callable[..., RingQueue]) -> None:
    """Accept, drop, a mark a later rule drops on, a requeue to another
    queue (accepted there), and a mangled payload, all in one TX send."""
    queue = make_queue(0)
    other = make_queue(1)
    packets: list[Packet] = []
    pids = send_flows(nfq_netns, 1, 5, [64])
    collect(queue, 5, packets.append)
    assert all(wait_child(pid) == 0 for pid in pids)
    accept, drop, mark, requeue, mangle = packets
    mangled = b"mangled!" + udp_data(mangle)[8:]
    queue.send_verdicts([
        verdict(0, accept.id, NF_ACCEPT),
        verdict(0, drop.id, NF_DROP),
        verdict(0, mark.id, NF_ACCEPT, mark=MARK_DROPPED),
        verdict(0, requeue.id, nf_queue_to(1)),
        verdict(0, mangle.id, NF_ACCEPT, payload=_udp_without_checksum(mangle.payload, mangled)),
    ])
    requeued: list[Packet] = []
    collect(other, 1, requeued.append)
    assert udp_data(requeued[0]) == udp_data(requeue)
    other.send_verdicts([verdict(1, requeued[0].id, NF_ACCEPT)])

    got = received(receiver, 3)
    assert sorted(got) == sorted([udp_data(accept), udp_data(requeue), mangled])
    receiver.settimeout(1)
    with pytest.raises(socket.timeout):
        receiver.recv(1 << 16)
    counter = ip("netns", "exec", nfq_netns, "nft", "list", "chain", "inet", "nlmmap", "after_queue")
    assert "packets 1 " in counter, counter


TINY_RX = ring_request(4096, 4, per_block=1)  # four frames


@pytest.mark.parametrize("fail_open", [True, False], ids=["fail-open", "fail-closed"])
def test_full_ring_and_buffer_follow_fail_open(nfq_netns: str, receiver: socket.socket,
                                               make_queue: Callable[..., RingQueue], fail_open: bool) -> None:
    """A reader that does not keep up: 4 frames and a minimal receive buffer
    fill, then packets are accepted (fail-open) or dropped and counted as
    user drops, as on the socket path.  Nothing else is lost: what was queued
    is delivered after the verdicts."""
    sent = 60
    queue = make_queue(flags=NFQA_CFG_F_FAIL_OPEN if fail_open else 0, rx=TINY_RX, rcvbuf=0)
    assert all(wait_child(pid) == 0 for pid in send_flows(nfq_netns, 1, sent, [64]))
    counters = queue_counters(nfq_netns, 0)
    queued = counters["total"]
    assert TINY_RX.frame_nr <= queued < sent
    if fail_open:
        assert counters["user_dropped"] == 0
        assert len(received(receiver, sent - queued)) == sent - queued
    else:
        assert counters["user_dropped"] == sent - queued
    packets: list[Packet] = []
    collect(queue, queued, packets.append)
    queue.send_verdicts([verdict_batch(0, packets[-1].id, NF_ACCEPT)])
    assert len(received(receiver, queued)) == queued
    assert queue_counters(nfq_netns, 0)["total"] == 0


def test_daemon_killed_mid_stream(nfq_netns: str, receiver: socket.socket) -> None:
    """The verdict daemon dies holding frames and queued packets: those
    packets are dropped with the queue, the ones it accepted arrive, and a
    new daemon takes over the queue (KASAN and kmemleak-free teardown is
    watched by the splat scan)."""
    accepted = 10
    ready_r, ready_w = os.pipe()

    def daemon() -> None:
        os.close(ready_r)
        sock = netlink_socket(nfq_netns, NETLINK_NETFILTER)
        bind_queue(sock, 0)
        queue = RingQueue(sock, RX, TX)
        os.write(ready_w, b"x")
        packets: list[Packet] = []
        collect(queue, accepted, packets.append)
        queue.send_verdicts([verdict(0, p.id, NF_ACCEPT) for p in packets[:accepted]])
        time.sleep(3600)  # killed here, with packets in frames and in the queue

    pid = fork_child(daemon)
    os.close(ready_w)
    try:
        # A packet sent before the queue is bound is dropped (no bypass).
        assert os.read(ready_r, 1) == b"x", "the daemon died before binding the queue"
    finally:
        os.close(ready_r)
    assert all(wait_child(p) == 0 for p in send_flows(nfq_netns, 1, 30, [64]))
    assert len(received(receiver, accepted)) == accepted
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    receiver.settimeout(1)
    with pytest.raises(socket.timeout):
        receiver.recv(1 << 16)
    with pytest.raises(LookupError):
        queue_counters(nfq_netns, 0)  # the instance went with the socket

    sock = netlink_socket(nfq_netns, NETLINK_NETFILTER)
    try:
        bind_queue(sock, 0)
        queue = RingQueue(sock, RX, TX)
        pids = send_flows(nfq_netns, 1, 5, [64])
        packets: list[Packet] = []
        collect(queue, 5, packets.append)
        assert all(wait_child(p) == 0 for p in pids)
        queue.send_verdicts([verdict_batch(0, packets[-1].id, NF_ACCEPT)])
        assert len(received(receiver, 5)) == 5
        queue.close()
    finally:
        sock.close()


def test_socket_closed_with_frames_in_flight(nfq_netns: str, receiver: socket.socket) -> None:
    """The daemon closes its socket with packets in RX frames and in the
    receive queue (COPY) and a verdict written into a TX frame but not sent.
    The mapping holds the socket open, as for any mapped file: the queue
    and its frames stay until munmap.  Then the packets go with the queue,
    the unsent verdict is never applied, and the next daemon starts clean."""
    queue = open_queue(nfq_netns, 0, RX, TX)
    sizes = [64, 64, 64, 6000]
    assert all(wait_child(p) == 0 for p in send_flows(nfq_netns, 1, 2 * len(sizes), sizes))
    assert queue_counters(nfq_netns, 0)["total"] == 2 * len(sizes)
    frame = queue.rx.next_frame()
    assert frame is not None and frame.status == NL_MMAP_STATUS_VALID
    first = parse_packet(queue.rx.payload(frame))
    queue.tx.put(verdict(0, first.id, NF_ACCEPT))  # written, never sent
    queue.sock.close()
    try:
        assert queue_counters(nfq_netns, 0)["total"] == 2 * len(sizes)
        assert parse_packet(queue.rx.payload(frame)) == first
        statuses = queue.rx.statuses()
        assert statuses.count(NL_MMAP_STATUS_VALID) == 6 and statuses.count(NL_MMAP_STATUS_COPY) == 2
    finally:
        queue.close()
    with pytest.raises(LookupError):
        queue_counters(nfq_netns, 0)
    receiver.settimeout(1)
    with pytest.raises(socket.timeout):
        receiver.recv(1 << 16)

    again = open_queue(nfq_netns, 0, RX, TX)
    try:
        pids = send_flows(nfq_netns, 1, 3, [64])
        packets: list[Packet] = []
        collect(again, 3, packets.append)
        assert all(wait_child(p) == 0 for p in pids)
        assert [p.id for p in packets] == [1, 2, 3]
        again.send_verdicts([verdict_batch(0, 3, NF_ACCEPT)])
        assert received(receiver, 3) == [udp_data(p) for p in packets]
    finally:
        again.close()
        again.sock.close()


def test_unbind_and_rebind(nfq_netns: str, receiver: socket.socket,
                           make_queue: Callable[..., RingQueue]) -> None:
    """Unbinding drops the packets still queued (their frames stay readable
    but their verdicts find nothing); after rebinding, packets flow again
    with fresh ids."""
    queue = make_queue()
    assert all(wait_child(p) == 0 for p in send_flows(nfq_netns, 1, 5, [64]))
    first: list[Packet] = []
    collect(queue, 5, first.append)
    unbind_queue(queue.sock, 0)
    with pytest.raises(LookupError):
        queue_counters(nfq_netns, 0)
    bind_queue(queue.sock, 0, ack=False)
    pids = send_flows(nfq_netns, 1, 5, [64])
    second: list[Packet] = []
    collect(queue, 5, second.append)
    assert all(wait_child(p) == 0 for p in pids)
    assert [p.id for p in second] == [1, 2, 3, 4, 5]
    queue.send_verdicts([verdict_batch(0, 5, NF_ACCEPT)])
    got = received(receiver, 5)
    assert got == [udp_data(p) for p in second]
    receiver.settimeout(1)
    with pytest.raises(socket.timeout):
        receiver.recv(1 << 16)


def test_queue_full_drops_are_counted(nfq_netns: str, receiver: socket.socket,
                                      make_queue: Callable[..., RingQueue]) -> None:
    """maxlen 8: the overflow is dropped and counted by the queue as on the
    socket path; the eight queued ones are delivered after the verdict."""
    queue = make_queue(maxlen=8)
    assert all(wait_child(pid) == 0 for pid in send_flows(nfq_netns, 1, 30, [64]))
    counters = queue_counters(nfq_netns, 0)
    assert (counters["total"], counters["dropped"], counters["user_dropped"]) == (8, 22, 0)
    packets: list[Packet] = []
    collect(queue, 8, packets.append)
    queue.send_verdicts([verdict_batch(0, packets[-1].id, NF_ACCEPT)])
    assert [udp_data(p) for p in packets] == received(receiver, 8)


def test_bypass_once_the_daemon_is_gone(nfq_netns: str, make_queue: Callable[..., RingQueue]) -> None:
    """A `queue ... bypass` rule: while a ring daemon listens, packets go
    through it; after it closed its socket, they pass without it."""
    bypass_receiver = udp_receiver(nfq_netns, BYPASS_PORT)
    try:
        queue = make_queue(1)
        pids = send_flows(nfq_netns, 1, 5, [64], port=BYPASS_PORT)
        packets: list[Packet] = []
        collect(queue, 5, packets.append)
        assert all(wait_child(pid) == 0 for pid in pids)
        bypass_receiver.settimeout(1)
        with pytest.raises(socket.timeout):
            bypass_receiver.recv(1 << 16)  # held by the daemon
        queue.send_verdicts([verdict_batch(1, packets[-1].id, NF_ACCEPT)])
        assert len(received(bypass_receiver, 5)) == 5
        queue.close()
        queue.sock.close()
        assert all(wait_child(pid) == 0 for pid in send_flows(nfq_netns, 1, 5, [64], port=BYPASS_PORT))
        assert len(received(bypass_receiver, 5)) == 5
        with pytest.raises(LookupError):
            queue_counters(nfq_netns, 1)
    finally:
        bypass_receiver.close()


@pytest.fixture
def nf_queue_program() -> Path:
    """The netfilter selftest's nf_queue, built by vm/build-kernel.sh in the
    tree; make cross-check's from its kselftest install (NLMMAP_KSFT)."""
    installed = os.environ.get("NLMMAP_KSFT")
    program = (Path(installed) / "net/netfilter/nf_queue" if installed else
               Path(expected("NLMMAP_TREE")) / "tools/testing/selftests/net/netfilter/nf_queue")
    assert os.access(program, os.X_OK), f"{program} is not built (vm/build-kernel.sh builds it)"
    return program


def wait_for_counter(netns: str, name: str, why: str, timeout: float = 60) -> None:
    """Until queue 0's counter `name` is non-zero (a fresh queue's are 0)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if queue_counters(netns, 0)[name]:
                return
        except LookupError:
            pass  # not bound yet
        assert time.monotonic() < deadline, why
        time.sleep(0.1)


@pytest.mark.parametrize("ring", [False, True], ids=["socket", "ring"])
def test_nf_queue_program_goes_on_after_an_overrun(nfq_netns: str, receiver: socket.socket,
                                                   nf_queue_program: Path, ring: bool) -> None:
    """The selftest's nf_queue (nft_queue.sh runs it in both modes), stopped
    while 1000 packets are queued to it: its ring and receive buffer fill,
    the rest are user drops and the socket has ENOBUFS pending.  Resumed, it
    must verdict what was queued and end at its -t timeout, as in socket
    mode (a ring mode that ignores the pending error spins in poll()).  The
    packets it counts are the ones that arrive."""
    args = ["ip", "netns", "exec", nfq_netns, str(nf_queue_program), "-c", "-t", "3"] + (["-R"] if ring else [])
    daemon = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        # bound (a packet before that would be dropped), then one packet
        # through it: it is in its receive loop
        wait_for_counter(nfq_netns, "portid", "nf_queue did not bind queue 0")
        assert all(wait_child(pid) == 0 for pid in send_flows(nfq_netns, 1, 1, [64]))
        assert len(received(receiver, 1)) == 1
        os.kill(daemon.pid, signal.SIGSTOP)
        # four sockets, so that no sender blocks on its send buffer alone
        pids = send_flows(nfq_netns, 4, 250, [64])
        wait_for_counter(nfq_netns, "user_dropped", "no overrun: the listener's buffer never filled")
        os.kill(daemon.pid, signal.SIGCONT)
        assert all(wait_child(pid) == 0 for pid in pids)
        try:
            output, _ = daemon.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            pytest.fail("nf_queue did not end within 60 s of the overrun: its -t 3 timeout never fired")
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait()
    assert daemon.returncode == 0, output
    counted = int(output.split(" packets total")[0].split()[-1])
    assert 1 < counted < 1001, output
    assert len(received(receiver, counted - 1)) == counted - 1
    receiver.settimeout(1)
    with pytest.raises(socket.timeout):
        receiver.recv(1 << 16)
