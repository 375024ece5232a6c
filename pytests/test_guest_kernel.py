"""The guest runs the kernel that was just built, with the config we asked for."""

from __future__ import annotations

import errno
import os
import socket
from collections.abc import Callable

from guestinfo import expected, running_build_id, running_config
from nlmmap.abi import NETLINK_RX_RING, RingRequest, set_ring


def test_release_is_the_build() -> None:
    assert os.uname().release == expected("NLMMAP_EXPECT_RELEASE")


def test_build_id_is_the_build() -> None:
    assert running_build_id() == expected("NLMMAP_EXPECT_BUILD_ID")


def test_running_config_has_netlink_mmap() -> None:
    config = running_config()
    assert config.get("CONFIG_NETLINK_MMAP") == "y"
    # the CI debug options are what makes a splat visible at all
    for option in ("CONFIG_KASAN", "CONFIG_PROVE_LOCKING", "CONFIG_DEBUG_ATOMIC_SLEEP"):
        assert config.get(option) == "y", option


def test_rx_ring_support_probe(rtnl_socket: socket.socket, record_property: Callable[[str, object], None]) -> None:
    """Record whether NETLINK_RX_RING is accepted.  The series has no ring code
    yet, so a valid request is refused as an unknown option, exactly as on a
    kernel without the series."""
    request = RingRequest(block_size=4096, block_nr=4, frame_size=2048, frame_nr=8)
    try:
        set_ring(rtnl_socket, NETLINK_RX_RING, request)
        state = "supported"
    except OSError as err:
        state = errno.errorcode.get(err.errno or 0, str(err.errno))
    record_property("netlink_rx_ring", state)
    print(f"NETLINK_RX_RING setsockopt: {state}")
    assert state == "ENOPROTOOPT"
