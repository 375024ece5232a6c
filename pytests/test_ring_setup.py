"""NETLINK_RX_RING and NETLINK_TX_RING setup: the same geometry validation,
EBUSY while mapped, teardown, repeated setup, read-back, sock_diag, and who
may create a ring."""

from __future__ import annotations

import errno
import mmap
import os
import resource
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import astuple
from pathlib import Path

import pytest

from nlmmap.abi import NETLINK_RX_RING, NETLINK_TX_RING, PAGE_SIZE, RingRequest, get_ring, ring_request, set_ring
from nlmmap.diag import diag_ring
from nlmmap.netns import netlink_socket
from nlmmap.process import become_nobody, in_child

TEARDOWN = RingRequest(0, 0, 0, 0)
GOOD = ring_request(2048, 8)

# Both rings follow the same rules.
each_ring = pytest.mark.parametrize("option", [NETLINK_RX_RING, NETLINK_TX_RING], ids=["rx", "tx"])

P = PAGE_SIZE
# blocks of 32-byte frames whose frame count, 32 bits wide, wraps to one block's
WRAPPING_BLOCKS = 2**32 // (P // 32) + 1
GEOMETRIES = [
    # block_size, block_nr, frame_size, frame_nr, errno (0: accepted), why
    (P, 4, P // 2, 8, 0, "two frames per block"),
    (P, 1, P, 1, 0, "one frame fills the block"),
    (*astuple(ring_request(3000, 4, per_block=2)), 0, "each block ends in a gap"),
    (P, 3, 24, 3 * (P // 24), 0, "frames of a bare header"),
    (0, 1, 2048, 2, errno.EINVAL, "block size 0"),
    (6000, 1, 2048, 2, errno.EINVAL, "block size not a page multiple"),  # of any page size
    (P, 2, 16, 2 * (P // 16), errno.EINVAL, "frame smaller than the frame header"),
    (P, 2, P // 2 - 2, 4, errno.EINVAL, "frame size not 4-byte aligned"),
    (P, 2, 2 * P, 2, errno.EINVAL, "frame larger than a block"),
    (P, 4, P // 2, 7, errno.EINVAL, "frame count is not blocks times frames per block"),
    (P, 0, P // 2, 2, errno.EINVAL, "frames without blocks"),
    (P, WRAPPING_BLOCKS, 32, P // 32, errno.EINVAL, "frames per block times blocks wraps 32 bits"),
    (P, (1 << 30) // P + 1, P, (1 << 30) // P + 1, errno.EINVAL, "more than 1 GiB"),
]


@each_ring
@pytest.mark.parametrize("geometry", GEOMETRIES, ids=[g[-1] for g in GEOMETRIES])
def test_geometry_is_validated(rtnl_socket: socket.socket, option: int, geometry: tuple[int, ...]) -> None:
    *fields, expected, _ = geometry
    req = RingRequest(*fields)
    if expected:
        with pytest.raises(OSError) as err:
            set_ring(rtnl_socket, option, req)
        assert err.value.errno == expected
        assert get_ring(rtnl_socket, option) == TEARDOWN
    else:
        set_ring(rtnl_socket, option, req)
        assert get_ring(rtnl_socket, option) == req
        mmap.mmap(rtnl_socket.fileno(), req.size).close()
    # the socket stays usable either way, and the other ring is untouched
    set_ring(rtnl_socket, option, GOOD)
    assert get_ring(rtnl_socket, option) == GOOD
    other = NETLINK_TX_RING if option == NETLINK_RX_RING else NETLINK_RX_RING
    assert get_ring(rtnl_socket, other) == TEARDOWN


OTHER = ring_request(4096, 2)


@each_ring
def test_ring_cannot_change_while_mapped(rtnl_socket: socket.socket, option: int) -> None:
    set_ring(rtnl_socket, option, GOOD)
    mapping = mmap.mmap(rtnl_socket.fileno(), GOOD.size)
    # neither ring may change while any part of the mapping exists
    for changed in (NETLINK_RX_RING, NETLINK_TX_RING):
        for req in (OTHER, TEARDOWN):
            with pytest.raises(OSError) as err:
                set_ring(rtnl_socket, changed, req)
            assert err.value.errno == errno.EBUSY
    assert get_ring(rtnl_socket, option) == GOOD
    mapping.close()
    set_ring(rtnl_socket, option, OTHER)
    assert get_ring(rtnl_socket, option) == OTHER


@each_ring
def test_zero_request_tears_the_ring_down(rtnl_socket: socket.socket, option: int) -> None:
    set_ring(rtnl_socket, option, GOOD)
    set_ring(rtnl_socket, option, TEARDOWN)
    assert get_ring(rtnl_socket, option) == TEARDOWN
    with pytest.raises(OSError) as err:
        mmap.mmap(rtnl_socket.fileno(), GOOD.size)
    assert err.value.errno == errno.EINVAL
    # tearing down nothing is fine too
    set_ring(rtnl_socket, option, TEARDOWN)


# rings of 1, 2, 8 and again 2 pages
REPLACED = [RingRequest(P, blocks, 1024, blocks * (P // 1024)) for blocks in (1, 2, 8, 2)]


def test_repeated_setup_replaces_the_ring(rtnl_socket: socket.socket) -> None:
    for req in REPLACED:
        set_ring(rtnl_socket, NETLINK_RX_RING, req)
        assert get_ring(rtnl_socket) == req
        mapping = mmap.mmap(rtnl_socket.fileno(), req.size)
        assert mapping[:] == bytes(req.size)
        mapping.close()


DIAG_TX = RingRequest(2 * P, 1, 1024, 2 * P // 1024)


def test_sock_diag_reports_the_rings(rtnl_socket: socket.socket) -> None:
    rtnl_socket.bind((0, 0))
    portid = rtnl_socket.getsockname()[0]
    assert diag_ring(socket.NETLINK_ROUTE, portid) is None
    assert diag_ring(socket.NETLINK_ROUTE, portid, tx=True) is None
    set_ring(rtnl_socket, NETLINK_RX_RING, GOOD)
    set_ring(rtnl_socket, NETLINK_TX_RING, DIAG_TX)
    assert diag_ring(socket.NETLINK_ROUTE, portid) == GOOD
    assert diag_ring(socket.NETLINK_ROUTE, portid, tx=True) == DIAG_TX


def test_unprivileged_user_may_create_a_ring() -> None:
    """Rule: whoever owns the socket may set up a ring (no CAP_NET_ADMIN);
    the memory is charged to its memory cgroup instead."""

    def body() -> None:
        become_nobody()
        sock = netlink_socket(None, socket.NETLINK_ROUTE)
        set_ring(sock, NETLINK_RX_RING, GOOD)
        mapping = mmap.mmap(sock.fileno(), GOOD.size)
        assert mapping[:] == bytes(GOOD.size)

    assert in_child(body) == 0


# RLIMIT_MEMLOCK of the tests below (in bytes; the kernel counts pages), and
# rings of as many pages, one more, and one
MEMLOCK_PAGES = 64
MEMLOCK = MEMLOCK_PAGES * P


def _pages(pages: int) -> RingRequest:
    """A ring of that many pages (two frames each)."""
    return ring_request(P // 2, 2 * pages)


WITHIN = _pages(MEMLOCK_PAGES)
BEYOND = _pages(MEMLOCK_PAGES + 1)
ONE_PAGE = _pages(1)


def _refused(sock: socket.socket, option: int, req: RingRequest) -> int:
    """The errno of a setup that must fail (0 if it succeeded)."""
    try:
        set_ring(sock, option, req)
    except OSError as err:
        return err.errno or -1
    return 0


def test_ring_pages_count_against_rlimit_memlock() -> None:
    """Rule: ring pages stay pinned, so they count against RLIMIT_MEMLOCK
    through the user's locked_vm (as AF_XDP and io_uring); beyond it the
    setup fails with ENOBUFS.  The rings of every socket of the user add
    up, and the charge goes back at teardown and at close(), not only
    when the socket is freed after an RCU grace period (the second review:
    a ring right after close() failed with ENOBUFS)."""

    def body() -> None:
        resource.setrlimit(resource.RLIMIT_MEMLOCK, (MEMLOCK, MEMLOCK))
        become_nobody()
        first = netlink_socket(None, socket.NETLINK_ROUTE)
        second = netlink_socket(None, socket.NETLINK_ROUTE)
        assert _refused(first, NETLINK_RX_RING, BEYOND) == errno.ENOBUFS
        assert get_ring(first) == TEARDOWN
        set_ring(first, NETLINK_RX_RING, WITHIN)
        assert _refused(second, NETLINK_TX_RING, ONE_PAGE) == errno.ENOBUFS, "the limit is per user"
        set_ring(first, NETLINK_RX_RING, TEARDOWN)
        set_ring(second, NETLINK_TX_RING, WITHIN)
        assert _refused(first, NETLINK_RX_RING, ONE_PAGE) == errno.ENOBUFS
        second.close()
        # back at close(), at once: a ring right after it gets the room
        assert _refused(first, NETLINK_RX_RING, WITHIN) == 0, "the closed socket kept its charge"
        assert get_ring(first) == WITHIN
        set_ring(first, NETLINK_RX_RING, TEARDOWN)
        for attempt in range(20):
            again = netlink_socket(None, socket.NETLINK_ROUTE)
            assert _refused(again, NETLINK_RX_RING, WITHIN) == 0, f"attempt {attempt}: ENOBUFS after close()"
            again.close()

    assert in_child(body) == 0


def test_cap_ipc_lock_is_exempt_from_rlimit_memlock() -> None:
    """Rule: CAP_IPC_LOCK exempts from the RLIMIT_MEMLOCK charge."""

    def body() -> None:
        resource.setrlimit(resource.RLIMIT_MEMLOCK, (MEMLOCK, MEMLOCK))
        sock = netlink_socket(None, socket.NETLINK_ROUTE)
        set_ring(sock, NETLINK_RX_RING, BEYOND)
        set_ring(sock, NETLINK_TX_RING, BEYOND)
        assert get_ring(sock, NETLINK_TX_RING) == BEYOND

    assert in_child(body) == 0


@pytest.fixture
def cgroup2() -> Iterator[Path]:
    """The cgroup v2 root with the memory controller, mounted for the test if need be."""
    mounted = Path("/sys/fs/cgroup")
    if (mounted / "cgroup.controllers").exists():
        yield mounted
        return
    with tempfile.TemporaryDirectory() as where:
        subprocess.run(["mount", "-t", "cgroup2", "none", where], check=True)
        try:
            yield Path(where)
        finally:
            subprocess.run(["umount", where], check=True)


CHARGED = RingRequest(1 << 20, 16, 1 << 12, 16 * 256)  # 16 MiB


def test_ring_memory_is_charged_to_the_memory_cgroup(cgroup2: Path) -> None:
    """Rule: ring memory is charged (__GFP_ACCOUNT) to the memory cgroup of
    the task that sets the ring up."""
    if "memory" not in (cgroup2 / "cgroup.controllers").read_text().split():
        pytest.skip("kernel without the memory controller (CONFIG_MEMCG)")
    (cgroup2 / "cgroup.subtree_control").write_text("+memory")
    group = cgroup2 / f"nlmmap-{os.getpid()}"
    group.mkdir()
    size = CHARGED.size

    def body() -> None:
        (group / "cgroup.procs").write_text(str(os.getpid()))
        sock = netlink_socket(None, socket.NETLINK_ROUTE)
        before = int((group / "memory.current").read_text())
        set_ring(sock, NETLINK_RX_RING, CHARGED)
        after = int((group / "memory.current").read_text())
        assert after - before >= size, (before, after)
        set_ring(sock, NETLINK_RX_RING, TEARDOWN)
        assert int((group / "memory.current").read_text()) - before < size, "ring memory not uncharged"

    try:
        assert in_child(body) == 0
    finally:
        group.rmdir()
