"""Test-only entry point: ``deploy_node`` whose loop stalls holding the interpreter lock as
``REACH_RL_TEST_GIL_STALLS`` says (:mod:`reach_rl_deploy.testing.gil_stall`).

    python -m reach_rl_deploy.testing.stalled_deploy_node --ros-args -p policy:=...
    (installed: lib/reach_rl_deploy/deploy_node_test_stalls)

The benchmarks and the franka-sim system tests start it to show that a stalled Python side
costs motion, never a reflex. The production node has no stalls: it only offers the hook.
"""
import sys
from typing import List, Optional

from reach_rl_deploy import deploy_node
from reach_rl_deploy.testing.gil_stall import GilStalls, hold_gil, stalls_from_environment


class StallHook:
    """The loop's ``after_tick``: the stalls due at each tick, timed from the first one."""

    def __init__(self, stalls):
        self.stalls = stalls
        self.schedule = None  # type: Optional[GilStalls]

    def __call__(self, now: float) -> None:
        if self.schedule is None:
            self.schedule = GilStalls(self.stalls, now)
        length = self.schedule.due(now)
        if length:
            hold_gil(length)


def main(args: Optional[List[str]] = None) -> int:
    return deploy_node.main(args, after_tick=StallHook(stalls_from_environment()))


if __name__ == "__main__":
    sys.exit(main())
