"""mmap() of a ring socket: exact length at offset 0, shared only, the frame
layout with its per-block gap, zeroed pages, and fork/munmap/close in any
order."""

from __future__ import annotations

import errno
import mmap
import os
import socket
from collections.abc import Callable

import pytest

from nlmmap.abi import (
    NETLINK_RX_RING,
    NL_MMAP_HDRLEN,
    NL_MMAP_STATUS_VALID,
    PAGE_SIZE,
    RingRequest,
    ring_request,
    set_ring,
)
from nlmmap.frames import STATUS
from nlmmap.messages import message_seq, send_user, user_message
from nlmmap.process import fork_child, in_child, wait_child
from nlmmap.ring import RxRing

# four blocks of two frames: a page shorter or longer is still a mapping
GOOD = ring_request(2048, 8, per_block=2)
# three blocks of two frames, each block ending in a gap
GAPPED = ring_request(3000, 6, per_block=2)


def _mmap_errno(sock: socket.socket, length: int, **kwargs: int) -> int:
    try:
        mmap.mmap(sock.fileno(), length, **kwargs).close()
    except OSError as err:
        return err.errno or 0
    return 0


@pytest.mark.parametrize(
    "length, kwargs",
    [
        (GOOD.size - PAGE_SIZE, {}),
        (GOOD.size + PAGE_SIZE, {}),
        (GOOD.size - PAGE_SIZE, {"offset": PAGE_SIZE}),
        (GOOD.size, {"offset": PAGE_SIZE}),
        (GOOD.size, {"flags": mmap.MAP_PRIVATE}),
    ],
    ids=["short", "long", "offset", "offset-full-length", "private"],
)
def test_bad_mapping_is_refused(rtnl_socket: socket.socket, length: int, kwargs: dict[str, int]) -> None:
    set_ring(rtnl_socket, NETLINK_RX_RING, GOOD)
    assert _mmap_errno(rtnl_socket, length, **kwargs) == errno.EINVAL
    assert _mmap_errno(rtnl_socket, GOOD.size) == 0  # still usable


def test_no_ring_no_mapping(rtnl_socket: socket.socket) -> None:
    assert _mmap_errno(rtnl_socket, PAGE_SIZE) == errno.EINVAL


ZEROED = RingRequest(1 << 16, 8, 4096, 128)  # 512 KiB


def test_fresh_ring_is_zeroed(rtnl_socket: socket.socket) -> None:
    req = ZEROED
    set_ring(rtnl_socket, NETLINK_RX_RING, req)
    mapping = mmap.mmap(rtnl_socket.fileno(), req.size)
    assert mapping[:] == bytes(req.size)
    mapping.close()


def test_frames_follow_the_block_layout_with_gaps(
    usersock_pair: tuple[socket.socket, socket.socket], make_rx_ring: Callable[..., RxRing]
) -> None:
    receiver, sender = usersock_pair
    req = GAPPED
    ring = make_rx_ring(receiver, req)
    per_block = req.block_size // req.frame_size
    assert per_block * req.frame_size < req.block_size, "the blocks have no gap"
    for seq in range(req.frame_nr):
        send_user(sender, receiver, user_message(100, seq))
    for index in range(req.frame_nr):
        block, slot = divmod(index, per_block)
        offset = block * req.block_size + slot * req.frame_size
        frame = ring.frame(index)
        assert frame.offset == offset
        assert frame.status == NL_MMAP_STATUS_VALID
        assert message_seq(ring.payload(frame)) == index
        gap = ring.map[block * req.block_size + per_block * req.frame_size : (block + 1) * req.block_size]
        assert gap == bytes(len(gap)), f"gap of block {block} written"


ORDERS = [
    ("munmap", "close"),
    ("close", "munmap"),
]


@pytest.mark.parametrize("order", ORDERS, ids=["-".join(o) for o in ORDERS])
@pytest.mark.parametrize("child_first", [True, False], ids=["child-exits-first", "parent-first"])
def test_fork_munmap_close_in_any_order(usersock_pair: tuple[socket.socket, socket.socket],
                                        order: tuple[str, str], child_first: bool) -> None:
    """A forked child shares the mapping; the ring stays mapped (EBUSY) until the
    last mapping goes, and frames stay readable after the socket is closed."""
    receiver, sender = usersock_pair
    set_ring(receiver, NETLINK_RX_RING, GOOD)
    mapping = mmap.mmap(receiver.fileno(), GOOD.size)
    send_user(sender, receiver, user_message(64, 7))
    go_r, go_w = os.pipe()

    def child() -> None:
        receiver.close()  # only the mapping keeps the socket alive here
        sender.close()
        os.close(go_w)
        if not child_first:
            os.read(go_r, 1)  # parent has closed and unmapped its side
        assert STATUS.unpack_from(mapping)[0] == NL_MMAP_STATUS_VALID
        mapping[NL_MMAP_HDRLEN + 16] = 0xAA  # write through the child's mapping
        mapping.close()

    pid = fork_child(child)
    os.close(go_r)
    if child_first:
        assert wait_child(pid) == 0
    else:
        # the child's mapping keeps the ring busy
        with pytest.raises(OSError) as err:
            set_ring(receiver, NETLINK_RX_RING, RingRequest(0, 0, 0, 0))
        assert err.value.errno == errno.EBUSY
    for step in order:
        if step == "munmap":
            mapping.close()
        else:
            receiver.close()
    if not child_first:
        os.write(go_w, b"x")
        assert wait_child(pid) == 0
    os.close(go_w)


def test_child_mapping_outlives_closed_socket(usersock_pair: tuple[socket.socket, socket.socket]) -> None:
    receiver, sender = usersock_pair
    set_ring(receiver, NETLINK_RX_RING, GOOD)
    send_user(sender, receiver, user_message(64, 9))
    mapping = mmap.mmap(receiver.fileno(), GOOD.size)
    receiver.close()

    def child() -> None:
        assert STATUS.unpack_from(mapping)[0] == NL_MMAP_STATUS_VALID
        assert message_seq(bytes(mapping[NL_MMAP_HDRLEN : NL_MMAP_HDRLEN + 16])) == 9

    assert in_child(child) == 0
    mapping.close()
