"""The policy file alone: its output applied as a raw 50 Hz velocity command, versus behind the
deploy filter.

An independent consumer of a contract-2 file: a plain numpy arm (joint positions integrated
from the commanded velocities, nothing else) and onnxruntime, no reach_rl code in the loop but
the file loader. Each of ``--arms`` arms gets ``--in-a-row`` held-out targets in a row from the
ready pose, ``--hold`` s each; a target counts when the TCP ends within 1 cm. The same targets
run behind the deploy side's DeployController (the safety filter, once per policy step). Prints
both success rates and median final errors (goal: within 1 point of each other).

    PYTHONPATH=src python bench/policy_file_alone.py runs/libfranka/policy.onnx
"""
import argparse
import sys

import numpy as np

from reach_rl_core.franka_model import READY_POSE, joint_limits, tcp_position  # noqa: E402
from reach_rl_deploy.policy_runtime import Policy  # noqa: E402
from reach_rl_core.filter_limits import FilterLimits  # noqa: E402
from reach_rl_deploy.deploy_controller import DeployController, JointSample  # noqa: E402
from reach_rl_deploy.target_runner import random_targets  # noqa: E402
from reach_rl_deploy.targets import Target  # noqa: E402


def raw(policy: Policy, targets, hold: float):
    """Apply the file's output as it is, once per policy step; final TCP errors [m]."""
    dt = policy.info.policy_dt
    q, dq, command = np.array(READY_POSE), np.zeros(7), np.zeros(7)
    errors = []
    for target in targets:
        for _ in range(int(round(hold / dt))):
            command = policy(q, dq, target, command)
            q, dq = q + command * dt, command
        errors.append(np.linalg.norm(tcp_position(q) - target))
    return errors


def filtered(policy: Policy, targets, hold: float):
    """The same through DeployController (the safety filter), once per policy step."""
    cmd = policy.info.command_limits
    limits = FilterLimits.for_interface(joint_limits(policy.info.robot), cmd.interface,
                                        1.0 / policy.info.policy_dt, command_hold=-1.0)
    controller = DeployController(policy, limits, state_timeout=1.0)
    q, dq = np.array(READY_POSE), np.zeros(7)
    errors, now = [], 0.0
    for target in targets:
        for _ in range(int(round(hold / limits.dt))):
            command = controller.tick(JointSample(q, dq, now), Target(np.asarray(target)), True,
                                      now)
            q, dq, now = q + command * limits.dt, command, now + limits.dt
        errors.append(np.linalg.norm(tcp_position(q) - target))
    return errors


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("policy")
    parser.add_argument("--arms", type=int, default=10)
    parser.add_argument("--in-a-row", type=int, default=50)
    parser.add_argument("--hold", type=float, default=3.0)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    policy = Policy(args.policy)
    print("command: %s" % " ".join([sys.executable] + sys.argv))
    results = {}
    for name, run in (("raw 50 Hz output, no filter", raw), ("behind the deploy filter", filtered)):
        errors = []
        for arm in range(args.arms):
            box = (policy.info.target_min, policy.info.target_max)
            targets = [np.array(t) for t in random_targets(args.in_a_row, args.seed + arm, box)]
            errors += run(policy, targets, args.hold)
        errors = np.array(errors)
        results[name] = 100.0 * np.mean(errors < 0.01)
        print("%-28s %d targets: %.1f %% within 1 cm, median final error %.1f mm"
              % (name, len(errors), results[name], 1e3 * np.median(errors)))
    gap = abs(np.subtract(*results.values()))
    print("difference: %.1f points (goal <= 1)" % gap)
    return 0 if gap <= 1.0 else 1


if __name__ == "__main__":
    sys.exit(main())
