"""The guest runs the kernel that was just built, with the config we asked for."""

from __future__ import annotations

import os

from nlmmap.guestinfo import expected, running_build_id, running_config


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
