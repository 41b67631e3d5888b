"""What one cycle of the libfranka loop costs in Python, without a robot.

Franka's loop must answer every 1 ms; on a 2-core machine the deploy node's loop took 53-80 % of
its core against franka-sim, and the runs that lost many commands were the costly ones (README,
"Measured"). This drives :class:`reach_rl_deploy.libfranka_loop.ControllerMotion` (the
DeployController and safety filter of the libfranka interface, as the node runs them) with the
RobotStates of an ideal arm that executes every command (``q`` integrated, ``dq_d`` the command),
through ``--targets`` held-out targets, ``--hold`` s each, and prints the time per cycle of
``command`` (state to command: what must fit in the cycle) and of ``after_write`` (the next policy
step's inference and the self-collision check, done once the command is out), then, with
``--profile``, the functions that take it.

    PYTHONPATH=src python bench/loop_cost.py runs/libfranka/policy.onnx [--profile]
"""
import argparse
import cProfile
import os
import pstats
import sys
import time
import types

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "src"))

from reach_rl_core.franka_model import READY_POSE, joint_limits, tcp_position  # noqa: E402
from reach_rl_core.policy_file import Policy  # noqa: E402
from reach_rl_core.safety_filter import LIBFRANKA, FilterLimits  # noqa: E402
from reach_rl_deploy import deploy_controller as dc  # noqa: E402
from reach_rl_deploy.libfranka_loop import ControllerMotion, LoopInputs  # noqa: E402
from reach_rl_deploy.target_runner import random_targets  # noqa: E402


class _Time:
    """libfranka's Duration, as far as the loop reads it."""

    def __init__(self, ms: int):
        self.ms = ms

    def to_sec(self) -> float:
        return self.ms / 1000.0


def robot_state(message_id: int, q, dq_d, ddq_d):
    """A RobotState of an arm that executed its command exactly (``dq`` = ``dq_d``)."""
    return types.SimpleNamespace(q=list(q), dq=list(dq_d), dq_d=list(dq_d), ddq_d=list(ddq_d),
                                 time=_Time(message_id))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("policy", help="policy file from reach-rl-train --interface libfranka")
    parser.add_argument("--targets", type=int, default=10, help="held-out targets in a row")
    parser.add_argument("--hold", type=float, default=3.0, help="seconds per target")
    parser.add_argument("--seed", type=int, default=2026, help="seed of the held-out targets")
    parser.add_argument("--profile", action="store_true", help="print the costliest functions")
    args = parser.parse_args(argv)
    policy = Policy(args.policy)
    limits = FilterLimits.for_interface(joint_limits(policy.info.robot), LIBFRANKA,
                                        detect_time=dc.detection_time(0.02, 1000.0))
    controller = dc.DeployController(policy, limits, 0.02, home=READY_POSE)
    inputs = LoopInputs(None, True, False)
    motion = ControllerMotion(controller, lambda: inputs)
    motion.start()
    q, dq_d, ddq_d = np.array(READY_POSE), np.zeros(7), np.zeros(7)
    command_s, after_s, errors, message_id = [], [], [], 0
    profiler = cProfile.Profile() if args.profile else None
    for target in random_targets(args.targets, args.seed):
        inputs = LoopInputs(np.asarray(target, dtype=float), True, False)
        for _ in range(int(round(args.hold / limits.dt))):
            message_id += 1
            state = robot_state(message_id, q, dq_d, ddq_d)
            if profiler:
                profiler.enable()
            t0 = time.perf_counter()
            command, _ = motion.command(state, time.monotonic())
            t1 = time.perf_counter()
            motion.after_write(state, time.monotonic())
            t2 = time.perf_counter()
            if profiler:
                profiler.disable()
            command_s.append(t1 - t0)
            after_s.append(t2 - t1)
            ddq_d, dq_d = (command - dq_d) / limits.dt, command
            q = q + command * limits.dt
        errors.append(float(np.linalg.norm(tcp_position(q) - target)))
    us = lambda s: "p50 %.0f | p99 %.0f | mean %.0f us" % (  # noqa: E731
        1e6 * np.percentile(s, 50), 1e6 * np.percentile(s, 99), 1e6 * np.mean(s))
    print("command: %s\nafter_write: %s" % (us(command_s), us(after_s)))
    print("%d cycles, %d targets: median final error %.1f mm (an ideal arm: a check that the "
          "loop ran the policy)" % (len(command_s), len(errors), 1e3 * np.median(errors)))
    if profiler:
        pstats.Stats(profiler).sort_stats("tottime").print_stats(15)
    return 0


if __name__ == "__main__":
    sys.exit(main())
