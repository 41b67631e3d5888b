"""How fast the hand can turn to a pose target's yaw: lower bounds on the median time to both
(1 cm and 5 deg), on the held-out judge's targets, beside the time the policy file takes.

For each of ``reach-rl-eval``'s held-out targets (its seed, 1000 targets, 4 in a row, nominal),
at the joints where the policy file leaves the arm when the target appears: the turn about the
hand's axis that joint 7 must make (``pose_target.joint7_turn``: the way its range allows) less
the 5 deg tolerance, turned rest to rest at full acceleration and back (bang-bang):

- ``joint 7 alone``: at the file's acceleration bound and velocity bound for joint 7;
- ``every joint sharing``: the largest acceleration of a pure turn about the base's vertical
  axis (TCP position and tilt held) with every joint inside its acceleration bound, no velocity
  bound (:func:`yaw_acceleration`).

Neither counts the jerk ramps, the TCP's own move to the target, the settling, or the policy
step's 20 ms, so a policy cannot beat either figure. The median of such a bound is not a hard
floor of the policy's median (another way round a few targets could take), but a goal below
it is not one a policy reaches under these limits.

    PYTHONPATH=src/reach_rl_core:src/reach_rl_train:src/reach_rl_deploy \\
        python bench/pose_time_bound.py src/reach_rl_deploy/test/policies/fr3_libfranka_pose.onnx
"""
import argparse
import math
from typing import List, Tuple

import numpy as np
import torch

from reach_rl_train.config import task_filter_limits
from reach_rl_train.evaluate import EVAL_DEFAULTS, TIME_KEY, HeldOutRun, config_of, onnx_actor
from reach_rl_train.held_out import NOMINAL
from reach_rl_train.ik_reference import pose_and_jacobian
from reach_rl_train.pose_target import POSE, joint7_turn
from reach_rl_deploy.policy_runtime import Policy

ORIENTATION_TOLERANCE = math.radians(5.0)  # rad, the judge's


def bang_bang_time(distance: np.ndarray, accel: np.ndarray, speed: np.ndarray) -> np.ndarray:
    """Shortest rest-to-rest time [s] over ``distance`` [rad] at most ``accel`` [rad/s^2] and
    ``speed`` [rad/s] (inf: none)."""
    peak = np.sqrt(distance * accel)
    return np.where(peak <= speed, 2.0 * np.sqrt(distance / accel),
                    distance / speed + speed / accel)


def yaw_acceleration(jacobian: torch.Tensor, accel: torch.Tensor) -> torch.Tensor:
    """The largest angular acceleration [rad/s^2] about the base's z axis, with the TCP's linear
    and other angular accelerations zero, that joint accelerations within ``accel`` (7) rad/s^2
    give, at geometric Jacobians ``jacobian`` (N, 6, 7) (base frame, ``pose_and_jacobian``).

    Those joint accelerations are ``w u + s n``: ``u`` gives the unit turn (least norm), ``n``
    spans the Jacobian's null space (7 joints, 6 constraints). The largest ``w`` has
    ``max_i |u_i + t n_i| / accel_i`` least over ``t = s / w``: a convex, piecewise linear
    function whose least value lies where two of its terms meet, or one is zero."""
    jacobian = jacobian.double()
    unit = torch.zeros(jacobian.shape[0], 6, dtype=torch.float64)
    unit[:, 5] = 1.0
    u = (torch.linalg.pinv(jacobian) @ unit.unsqueeze(-1)).squeeze(-1) / accel
    n = torch.linalg.svd(jacobian).Vh[:, -1, :] / accel
    du, dn = u.unsqueeze(-1) - u.unsqueeze(-2), n.unsqueeze(-1) - n.unsqueeze(-2)
    su, sn = u.unsqueeze(-1) + u.unsqueeze(-2), n.unsqueeze(-1) + n.unsqueeze(-2)
    candidates = torch.cat([-u / n, (-du / dn).flatten(1), (-su / sn).flatten(1)], -1)
    candidates = torch.nan_to_num(candidates, nan=0.0, posinf=0.0, neginf=0.0)
    worst = (u.unsqueeze(-1) + candidates.unsqueeze(-2) * n.unsqueeze(-1)).abs().amax(-2)
    return 1.0 / worst.amin(-1)


def target_starts(policy: Policy, num_targets: int, in_a_row: int
                  ) -> Tuple[torch.Tensor, torch.Tensor, dict, Tuple[float, float]]:
    """The joints [M, 7] rad and target rotations [M, 3, 3] (base frame) as each held-out
    target appears, with the policy file in the loop; the judge's figures of that run; the
    range [rad] the task keeps joint 7's turn in."""
    cfg = config_of(policy)
    run = HeldOutRun(cfg, NOMINAL, num_targets, EVAL_DEFAULTS.eval_seed, in_a_row=in_a_row)
    task, act = run.task, onnx_actor(policy)
    joints, rotations = [], []  # type: List[torch.Tensor], List[torch.Tensor]
    calls = [0]

    def recording(obs: torch.Tensor) -> torch.Tensor:
        if calls[0] % task.steps_per_target == 0:  # a period's first step: new targets
            joints.append(task.backend.joint_pos.clone())
            rotations.append(task.target_rot.clone())
        calls[0] += 1
        return act(obs)

    figures = run(recording)
    # target k of arm a is period k's row a; the judge keeps the first num_targets of that order
    return (torch.cat(joints)[:num_targets], torch.cat(rotations)[:num_targets], figures,
            task.joint7_range)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("policy", help="a pose policy file (.onnx)")
    parser.add_argument("--targets", type=int, default=EVAL_DEFAULTS.eval_targets)
    parser.add_argument("--in-a-row", type=int, default=EVAL_DEFAULTS.eval_in_a_row)
    args = parser.parse_args(argv)
    policy = Policy(args.policy)
    if policy.info.target_type != POSE:
        parser.error("%s is a %s policy: this bound is for pose targets"
                     % (args.policy, policy.info.target_type))
    cfg = config_of(policy)
    limits = task_filter_limits(cfg.task)
    accel = np.asarray(limits.accel, dtype=float)
    speed7 = float(limits.velocity_fraction * limits.joint_limits.vel_max[6])
    if limits.velocity_cap is not None:
        speed7 = min(speed7, float(limits.velocity_cap[6]))

    q, target_rot, figures, joint7_range = target_starts(policy, args.targets, args.in_a_row)
    _, rotation, jacobian = pose_and_jacobian(q.double())
    _, turn = joint7_turn(rotation, target_rot.double(), q[:, 6].double(), *joint7_range)
    distance = (turn.abs() - ORIENTATION_TOLERANCE).clamp(min=0.0).numpy()
    alone = bang_bang_time(distance, accel[6], speed7)
    shared_accel = yaw_acceleration(jacobian, torch.as_tensor(accel)).numpy()
    shared = bang_bang_time(distance, shared_accel, np.inf)

    print("%s: %s interface, %d held-out targets, %d in a row"
          % (args.policy, cfg.task.interface, len(distance), args.in_a_row))
    print("  joint 7's bounds: %.2f rad/s^2, %.2f rad/s; turn to make: median %.2f rad "
          "(p90 %.2f)" % (accel[6], speed7, np.median(turn.abs().numpy()),
                          np.percentile(turn.abs().numpy(), 90)))
    print("  pure-yaw acceleration with every joint sharing: median %.2f rad/s^2 (p10 %.2f, "
          "p90 %.2f)" % tuple(np.percentile(shared_accel, [50, 10, 90])))
    print("  bound on the median time to both: joint 7 alone %.2f s; every joint sharing %.2f s"
          % (np.median(alone), np.median(shared)))
    print("  the policy file (judge, nominal): %.1f %%, median time to both %.2f s"
          % (100 * figures["success_rate"], figures[TIME_KEY[POSE]]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
