"""Config fragment parsing and the check that every fragment line stuck."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import kconfig

FRAGMENT = Path(__file__).resolve().parents[1] / "kernel.config"


def test_fragment_parses_and_asks_for_the_feature_and_debug_options() -> None:
    wanted = kconfig.parse_fragment(FRAGMENT.read_text())
    for option in ("CONFIG_NETLINK_MMAP", "CONFIG_KASAN", "CONFIG_PROVE_LOCKING", "CONFIG_DEBUG_ATOMIC_SLEEP",
                   "CONFIG_NETFILTER_NETLINK_QUEUE", "CONFIG_NFT_QUEUE", "CONFIG_NETLINK_DIAG"):
        assert wanted[option] == "y", option


def test_fragment_rejects_junk() -> None:
    with pytest.raises(ValueError, match="line 2"):
        kconfig.parse_fragment("CONFIG_A=y\nA=y\n")


def test_unset_and_n_mean_the_same() -> None:
    wanted = kconfig.parse_fragment("# CONFIG_A is not set\nCONFIG_B=n\n")
    assert wanted == {"CONFIG_A": "n", "CONFIG_B": "n"}
    config = kconfig.parse_config("# CONFIG_A is not set\n")
    assert kconfig.mismatches(wanted, config) == []


def test_dropped_option_is_reported() -> None:
    wanted = kconfig.parse_fragment("CONFIG_NETLINK_MMAP=y\nCONFIG_HZ=250\nCONFIG_KVM=n\n")
    config = kconfig.parse_config("CONFIG_HZ=1000\nCONFIG_KVM=y\n")
    assert kconfig.mismatches(wanted, config) == [
        "CONFIG_NETLINK_MMAP: wanted y, .config has not set",
        "CONFIG_HZ: wanted 250, .config has 1000",
        "CONFIG_KVM: wanted n, .config has y",
    ]


@pytest.mark.parametrize(("config", "ignore", "status"), [
    ("CONFIG_A=y\n", [], 0),
    ("# CONFIG_A is not set\n", [], 1),
    ("CONFIG_A=y\n", ["--ignore", "CONFIG_A"], 0),
    ("", ["--ignore", "CONFIG_A"], 0),
])
def test_cli(tmp_path: Path, config: str, ignore: list[str], status: int) -> None:
    """Exit status 1 when an option did not stick; --ignore drops options the
    tree cannot have (the bare base lacks CONFIG_NETLINK_MMAP)."""
    frag = tmp_path / "frag"
    conf = tmp_path / ".config"
    frag.write_text("CONFIG_A=y\n")
    conf.write_text(config)
    assert kconfig.main([*ignore, str(frag), str(conf)]) == status
