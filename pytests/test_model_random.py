"""Random operation sequences on a real socket and on the model, in lock step.

Hypothesis picks the steps (nlmmap.lockstep: rings set up, replaced, torn
down, mapped; unicast, multicast and TX deliveries of every size; hostile
status words and nm_len; recvmsg(), poll(), overrun settings); after each
step every observable of the kernel must equal the model's (nlmmap.model).

`make check` runs a fixed sequence (derandomized) of at least MIN_STEPS
steps.  `make fuzz` sets NLMMAP_FUZZ_SECONDS: random sequences until the
time is up, and a failing sequence, shrunk, is written to
NLMMAP_REPLAY_DIR.  test_stored_replay runs every replay in pytests/replays/.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, rule, run_state_machine_as_test

from nlmmap.abi import NL_MMAP_STATUS_VALID
from nlmmap.lockstep import RX_REQS, TX_REQ, TX_ROOM, Lockstep, replay
from nlmmap.model import USER_STATUSES, geometry_error

MIN_STEPS = 2000
REPLAYS = sorted((Path(__file__).parent / "replays").glob("*.json"))
FUZZ_SECONDS = float(os.environ.get("NLMMAP_FUZZ_SECONDS", "0"))
REPLAY_DIR = os.environ.get("NLMMAP_REPLAY_DIR")
REPLAY_FILE = Path(REPLAY_DIR or ".") / f"fuzz-{int(time.time())}-{os.getpid()}.json"

steps_run = 0

# Message sizes: mostly within a frame, some beyond any frame or the 4 KiB copy unit.
sizes = st.lists(st.one_of(st.integers(16, 300), st.integers(16, 20000)), min_size=1, max_size=4)
valid_rings = [n for n, req in enumerate(RX_REQS) if req.block_nr and not geometry_error(req)]
# TX frames: every frame twice over; messages up to a little more than a
# frame holds (cut to it: a malformed frame); nm_len 0, below and at a
# header, one and two bytes beyond the frame, far beyond it.
tx_frames = st.integers(0, 2 * TX_REQ.frame_nr - 1)
tx_sizes = st.lists(st.integers(16, TX_ROOM + 112), min_size=1, max_size=3)
tx_lengths = st.one_of(st.none(), st.sampled_from([0, 15, 16, TX_ROOM + 1, TX_ROOM + 2, 1 << 31]))


class RingMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.lock = Lockstep()

    def step(self, name: str, **args: object) -> None:
        global steps_run
        steps_run += 1
        try:
            self.lock.do(name, **args)
        except Exception:
            if REPLAY_DIR:
                self.lock.save(REPLAY_FILE)
            raise

    @initialize(which=st.sampled_from(valid_rings), mapped=st.booleans())
    def start(self, which: int, mapped: bool) -> None:
        self.step("set_rx", which=which)
        if mapped:
            self.step("map", wrong_size=False)

    @rule(which=st.integers(0, len(RX_REQS) - 1))
    def set_rx(self, which: int) -> None:
        self.step("set_rx", which=which)

    @rule(wrong_size=st.booleans())
    def map(self, wrong_size: bool) -> None:
        self.step("map", wrong_size=wrong_size)

    @rule()
    def unmap(self) -> None:
        self.step("unmap")

    @rule()
    def reopen(self) -> None:
        self.step("reopen")

    @rule(sizes=sizes, garbage=st.booleans())
    def unicast(self, sizes: list[int], garbage: bool) -> None:
        self.step("unicast", sizes=sizes, garbage=garbage)

    @rule(sizes=sizes)
    def multicast(self, sizes: list[int]) -> None:
        self.step("multicast", sizes=sizes)

    @rule(frame=st.integers(0, 200), status=st.sampled_from(USER_STATUSES))
    def user_status(self, frame: int, status: int) -> None:
        self.step("user_status", frame=frame, status=status)

    @rule()
    def release_all(self) -> None:
        self.step("release_all")

    @rule()
    def recv(self) -> None:
        self.step("recv")

    @rule()
    def poll(self) -> None:
        self.step("poll")

    @rule()
    def kick(self) -> None:
        self.step("kick")

    @rule()
    def poll_other(self) -> None:
        self.step("poll_other")

    @rule(on=st.booleans())
    def no_enobufs(self, on: bool) -> None:
        self.step("no_enobufs", on=on)

    @rule(size=st.sampled_from([0, 4096, 65536, 1 << 20]))
    def rcvbuf(self, size: int) -> None:
        self.step("rcvbuf", size=size)

    @rule(frame=tx_frames, sizes=tx_sizes, length=tx_lengths,
          status=st.one_of(st.just(NL_MMAP_STATUS_VALID), st.sampled_from(USER_STATUSES)))
    def tx_fill(self, frame: int, sizes: list[int], length: int | None, status: int) -> None:
        self.step("tx_fill", frame=frame, sizes=sizes, length=length, status=status)

    @rule()
    def tx_send(self) -> None:
        self.step("tx_send")

    def teardown(self) -> None:
        self.lock.close()


def _settings(derandomize: bool, examples: int) -> settings:
    return settings(max_examples=examples, stateful_step_count=50, derandomize=derandomize,
                    deadline=None, database=None, print_blob=False,
                    suppress_health_check=list(HealthCheck),
                    phases=[Phase.generate] if os.environ.get("NLMMAP_NO_SHRINK") else list(Phase))


# about 600 s under KASAN and TCG: more than the guest's per-test timeout
@pytest.mark.timeout(FUZZ_SECONDS + 1800)
def test_random_operation_sequences() -> None:
    if FUZZ_SECONDS:
        end = time.monotonic() + FUZZ_SECONDS
        # a couple of sequences per call, so that the time is kept within a minute
        while time.monotonic() < end:
            run_state_machine_as_test(RingMachine, settings=_settings(False, 2))
    else:
        run_state_machine_as_test(RingMachine, settings=_settings(True, 100))
        assert steps_run >= MIN_STEPS, f"only {steps_run} steps ran"
    print(f"{steps_run} steps, kernel == model after each")


@pytest.mark.parametrize("path", REPLAYS, ids=[p.stem for p in REPLAYS])
def test_stored_replay(path: Path) -> None:
    replay(path)
