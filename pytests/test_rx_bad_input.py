"""Bad input gets its errno and leaves the socket usable: short option
buffers, unknown status values written by user space, rings on the wrong
socket, and the message is never lost."""

from __future__ import annotations

import errno
import socket
from collections.abc import Callable

import pytest

from nlmmap.abi import (
    NETLINK_RX_RING,
    NL_MMAP_STATUS_RESERVED,
    NL_MMAP_STATUS_UNUSED,
    NL_MMAP_STATUS_VALID,
    SOL_NETLINK,
    RingRequest,
    get_ring,
    ring_request,
    ring_stats,
    set_ring,
)
from nlmmap.messages import message_seq, send_user, user_message
from nlmmap.ring import RxRing

GOOD = ring_request(1024, 4)


def _still_usable(sock: socket.socket) -> None:
    set_ring(sock, NETLINK_RX_RING, GOOD)
    assert get_ring(sock) == GOOD


def test_short_setsockopt_is_einval(rtnl_socket: socket.socket) -> None:
    with pytest.raises(OSError) as err:
        rtnl_socket.setsockopt(SOL_NETLINK, NETLINK_RX_RING, GOOD.pack()[:12])
    assert err.value.errno == errno.EINVAL
    assert get_ring(rtnl_socket) == RingRequest(0, 0, 0, 0)
    _still_usable(rtnl_socket)


def test_short_getsockopt_is_einval(rtnl_socket: socket.socket) -> None:
    set_ring(rtnl_socket, NETLINK_RX_RING, GOOD)
    with pytest.raises(OSError) as err:
        rtnl_socket.getsockopt(SOL_NETLINK, NETLINK_RX_RING, 8)
    assert err.value.errno == errno.EINVAL
    _still_usable(rtnl_socket)


@pytest.mark.parametrize("status", [NL_MMAP_STATUS_RESERVED, NL_MMAP_STATUS_VALID, 0xDEADBEEF],
                         ids=["reserved", "valid", "undefined"])
def test_frames_with_other_status_are_not_written(usersock_pair: tuple[socket.socket, socket.socket],
                                                  make_rx_ring: Callable[..., RxRing], status: int) -> None:
    """Any status but UNUSED (and SKIP, stepped over) means user space owns the
    frame: the message waits in the queue instead and is not lost."""
    receiver, sender = usersock_pair
    ring = make_rx_ring(receiver, GOOD)
    for index in range(GOOD.frame_nr):
        ring.set_status(index, status)
    send_user(sender, receiver, user_message(64, 11))
    assert [ring.frame(i).status for i in range(GOOD.frame_nr)] == [status] * GOOD.frame_nr
    assert ring_stats(receiver).rx_frames == 0
    for index in range(GOOD.frame_nr):
        ring.set_status(index, NL_MMAP_STATUS_UNUSED)
    assert [message_seq(m) for m in ring.drain()] == [11]
    send_user(sender, receiver, user_message(64, 12))
    assert [message_seq(m) for m in ring.drain()] == [12]
