"""The main job's show, run inside the guest: what the series does right now.

Prints the kernel release, the feature's config state and what the kernel
answers to NETLINK_RX_RING, and writes each as a TAP point so that `make`
fails loudly when the shown kernel is not the one just built.
"""

from __future__ import annotations

import errno
import os
import socket
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "pytests"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from guestinfo import expected, running_build_id, running_config  # noqa: E402
from harness.results import tap_document  # noqa: E402
from nlmmap.abi import NETLINK_RX_RING, RingRequest, set_ring  # noqa: E402


def main() -> int:
    tap_path = Path(sys.argv[1])
    points: list[str] = []

    def check(ok: bool, what: str) -> None:
        points.append(f"{'ok' if ok else 'not ok'} {len(points) + 1} {what}")

    release = os.uname().release
    build_id = running_build_id()
    print(f"kernel release   {release}")
    print(f"build id         {build_id}")
    check(release == expected("NLMMAP_EXPECT_RELEASE") and build_id == expected("NLMMAP_EXPECT_BUILD_ID"),
          "guest runs the kernel just built")
    config = running_config()
    for option in ("CONFIG_NETLINK_MMAP", "CONFIG_NETLINK_DIAG", "CONFIG_KASAN", "CONFIG_PROVE_LOCKING"):
        print(f"{option:<24} {config.get(option, 'not set')}")
    check(config.get("CONFIG_NETLINK_MMAP") == "y", "CONFIG_NETLINK_MMAP=y")

    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
    request = RingRequest(block_size=4096, block_nr=4, frame_size=2048, frame_nr=8)
    try:
        set_ring(sock, NETLINK_RX_RING, request)
        answer = "accepted: the RX ring is supported"
    except OSError as err:
        answer = f"refused with {errno.errorcode.get(err.errno or 0, err.errno)} ({os.strerror(err.errno or 0)})"
    finally:
        sock.close()
    print(f"NETLINK_RX_RING  {answer}")

    tap_path.write_text(tap_document(points))
    return 0


if __name__ == "__main__":
    sys.exit(main())
