"""Network namespaces for tests: create, fill, and open sockets inside."""

from __future__ import annotations

import ctypes
import json
import os
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def ip(*args: str, netns: str | None = None, stdin: str | None = None) -> str:
    """Run iproute2 and return its output; raises with its stderr on failure."""
    cmd = ["ip"] + (["-n", netns] if netns else []) + list(args)
    result = subprocess.run(cmd, input=stdin, capture_output=True, text=True)
    if result.returncode:
        raise RuntimeError(f"{' '.join(cmd)}: {result.stderr.strip()}")
    return result.stdout


def ipv4_addresses(netns: str, link: str) -> list[str]:
    """The IPv4 addresses of a link, as "address/prefixlen", sorted."""
    links = json.loads(ip("-j", "-4", "addr", "show", "dev", link, netns=netns))
    return sorted(f"{a['local']}/{a['prefixlen']}" for entry in links for a in entry["addr_info"])


def ifindex(netns: str, link: str) -> int:
    return int(json.loads(ip("-j", "link", "show", "dev", link, netns=netns))[0]["ifindex"])


def ip_batch(netns: str, commands: list[str]) -> None:
    """Many iproute2 commands in one process (ip -batch)."""
    ip("-batch", "-", netns=netns, stdin="\n".join(commands) + "\n")


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET):
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


@contextmanager
def scratch_netns(name: str) -> Iterator[str]:
    """A fresh network namespace (lo up), deleted afterwards."""
    ip("netns", "add", name)
    try:
        ip("link", "set", "lo", "up", netns=name)
        yield name
    finally:
        ip("netns", "del", name)


def enter(netns: str) -> None:
    """Move this thread into the named netns for good (a child that drops
    its privileges cannot come back)."""
    with open(f"/run/netns/{netns}") as target:
        _setns(target.fileno())


@contextmanager
def inside(netns: str) -> Iterator[None]:
    """Run the block in the named netns (this thread), then come back."""
    with open("/proc/self/ns/net") as home, open(f"/run/netns/{netns}") as target:
        _setns(target.fileno())
        try:
            yield
        finally:
            _setns(home.fileno())


def netlink_socket(netns: str | None, protocol: int = socket.NETLINK_ROUTE, groups: int = 0) -> socket.socket:
    """A netlink socket of the named netns (the current one for None), bound
    (to the multicast groups in the bitmask groups)."""
    if netns is None:
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, protocol)
    else:
        with inside(netns):
            sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, protocol)
    sock.bind((0, groups))
    return sock


def add_dummies(netns: str, count: int, routes_per_link: int = 0) -> None:
    """count dummy links, each up with one IPv4 address and some routes."""
    commands = []
    for n in range(count):
        link = f"d{n}"
        commands += [f"link add {link} type dummy", f"link set {link} up",
                     f"addr add 10.{n // 250}.{n % 250}.1/24 dev {link}"]
        commands += [f"route add 172.{16 + n // 250}.{n % 250}.{r}/32 dev {link}"
                     for r in range(routes_per_link)]
    ip_batch(netns, commands)
