"""The guest runs the kernel that was just built, with the config we asked for."""

from __future__ import annotations

import os
from pathlib import Path

from nlmmap.guestinfo import expected, running_build_id, running_config


def test_release_is_the_build() -> None:
    assert os.uname().release == expected("NLMMAP_EXPECT_RELEASE")


def test_build_id_is_the_build() -> None:
    assert running_build_id() == expected("NLMMAP_EXPECT_BUILD_ID")


def test_running_config_has_netlink_mmap() -> None:
    config = running_config()
    assert config.get("CONFIG_NETLINK_MMAP") == "y"


def test_running_config_holds_the_fragments() -> None:
    """Every option the kernel's config fragments ask for (the test kernel's
    debug options are what makes a splat visible at all), as the host's
    build checked them in .config: the guest runs that config."""
    config = running_config()
    fragment = Path(expected("NLMMAP_FRAGMENT"))
    # the fragments one after another, as merge_config.sh reads them: a later
    # line wins (the perf fragment turns the test fragment's KASAN off)
    wanted = dict(line.strip().partition("=")[::2] for line in fragment.read_text().splitlines()
                  if line.strip().startswith("CONFIG_"))
    assert wanted, f"{fragment} asks for nothing"
    for name, value in wanted.items():
        got = config.get(name, "n")
        assert got == value, f"{name}={value} asked for, the running kernel has {name}={got}"
