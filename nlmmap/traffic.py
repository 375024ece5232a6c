"""Queued traffic for the nfqueue suites and the demo: UDP over lo in a
netns, queued by nftables in the output hook, sent by child processes."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from pathlib import Path

from nlmmap.netns import enter, ip
from nlmmap.nfqueue import Packet, RingQueue
from nlmmap.process import fork_child

PORT = 9999
BYPASS_PORT = 9998
MARK_DROPPED = 0x42

# the rules that queue them, shared with the benchmark; the numbers above
# are the ones it names
RULES = Path(__file__).with_name("queue.nft")


def load_rules(netns: str) -> None:
    ip("netns", "exec", netns, "nft", "-f", str(RULES))


def send_flows(netns: str, flows: int, per_flow: int, sizes: list[int], port: int = PORT) -> list[int]:
    """Child processes, one per flow, each sending per_flow UDP datagrams
    ("flow:seq" padded to the sizes in turn) to port; their pids.  Flow n
    runs on CPU n modulo the CPU count, so that several flows enqueue on
    different CPUs at once."""
    cpus = sorted(os.sched_getaffinity(0))

    def flow(number: int) -> Callable[[], None]:
        def body() -> None:
            os.sched_setaffinity(0, {cpus[number % len(cpus)]})
            enter(netns)
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                for seq in range(per_flow):
                    size = sizes[seq % len(sizes)]
                    sock.sendto(datagram(number, seq, size), ("127.0.0.1", port))
        return body

    return [fork_child(flow(n)) for n in range(flows)]


def datagram(flow: int, seq: int, size: int) -> bytes:
    head = f"{flow}:{seq}:".encode()
    return head + bytes((flow * 31 + seq + i) & 0xFF for i in range(size - len(head)))


def udp_data(packet: Packet) -> bytes:
    """The UDP payload of a queued IPv4 packet."""
    ihl = (packet.payload[0] & 0x0F) * 4
    return packet.payload[ihl + 8 :]


def queue_counters(netns: str, queue: int) -> dict[str, int]:
    """/proc/net/netfilter/nfnetlink_queue of the netns, for one queue."""
    names = ["queue", "portid", "total", "copy_mode", "copy_range", "dropped", "user_dropped", "id_sequence"]
    for line in ip("netns", "exec", netns, "cat", "/proc/net/netfilter/nfnetlink_queue").splitlines():
        values = [int(v) for v in line.split()[: len(names)]]
        if values[0] == queue:
            return dict(zip(names, values, strict=False))
    raise LookupError(f"queue {queue} not bound")


def collect(queue: RingQueue, count: int, on_packet: Callable[[Packet], None], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    seen = 0
    while seen < count:
        for packet in queue.packets():
            on_packet(packet)
            seen += 1
        if seen < count and not queue.rx.wait(timeout=max(0.1, deadline - time.monotonic())):
            raise TimeoutError(f"{seen} of {count} packets arrived")


def received(receiver: socket.socket, count: int, timeout: float = 30) -> list[bytes]:
    receiver.settimeout(timeout)
    return [receiver.recv(1 << 16) for _ in range(count)]
