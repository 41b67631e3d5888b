"""How fast the arm can reach a pose target: estimates of the least median time to both (1 cm
and 5 deg) on the held-out judge's targets, beside the time the policy file takes.

For each of ``reach-rl-eval``'s held-out targets (its seed, 1000 targets, 4 in a row, nominal),
at the joints where the policy file leaves the arm when the target appears, at full
acceleration and back (bang-bang), at the file's bounds (its interface's):

- ``turn, joint 7 alone``: the turn about the hand's axis that joint 7 must make
  (``pose_target.joint7_turn``: the way its range allows), at joint 7's acceleration and
  velocity bounds;
- ``turn, every joint sharing``: the same turn as a pure turn about the base's vertical axis
  (the hand's axis for targets pointing down; TCP position and tilt held), at the largest
  acceleration every joint within its bound gives (:func:`largest_acceleration`), no velocity
  bound;
- ``move``: the TCP's straight move the same way (orientation held);
- ``both``: the larger of ``move`` and ``turn, every joint sharing``, per target.

Each is timed three ways: **at the edge** (rest to rest to the tolerance's near edge: 1 cm, 5 deg
short); **to the centre** (:func:`entry_time`: rest to rest to the target, timed where the motion
crosses the near edge; the judge times the first step within both); and **moving in** (rest to
rest to the far edge, timed where the motion crosses the near one, the arm staying within).
None counts the jerk ramps, the policy step's 20 ms, or what the move and the turn take from
each other's accelerations. A policy could beat "moving in" only on targets where some other
path is faster than the straight, pure one at the start posture.

Beside them, how hard the file drives the arm: the share of its steps before it reaches a target
with some joint at ``SATURATED`` of its acceleration or velocity bound (:func:`saturated_share`).
Near 1, only a path that enters the tolerance moving, or another path, can be faster.

    source env.sh && python bench/pose_time_bound.py \\
        src/reach_rl_deploy/test/policies/fr3_libfranka_pose.onnx
"""
import argparse
from typing import Dict, List, Tuple

import numpy as np
import torch

from reach_rl_core.filter_limits import FilterLimits
from reach_rl_core.franka_model import READY_POSE
from reach_rl_core.orientation import ORIENTATION_TOLERANCE
from reach_rl_core.safety_filter import scaled_velocity_bounds
from reach_rl_train.config import RandomizationConfig, task_filter_limits
from reach_rl_train.evaluate import EVAL_DEFAULTS, TIME_KEY, HeldOutRun, config_of, onnx_actor
from reach_rl_train.held_out import NOMINAL
from reach_rl_train.ik_reference import pose_and_jacobian
from reach_rl_train.pose_target import POSE, joint7_turn
from reach_rl_deploy.policy_runtime import Policy

TURN_BINS = ((0.0, 0.3), (0.3, 1.0), (1.0, 2.0), (2.0, 3.0), (3.0, 2 * np.pi))  # rad
SATURATED = 0.9  # of a joint's acceleration or velocity bound
WAYS = ("at the edge", "to the centre", "moving in")


def bang_bang_time(distance: np.ndarray, accel, speed) -> np.ndarray:
    """Shortest rest-to-rest time [s] over ``distance`` [rad or m] at most ``accel`` [rad/s^2 or
    m/s^2] and ``speed`` [rad/s or m/s] (inf: none); arrays or numbers."""
    peak = np.sqrt(distance * accel)
    return np.where(peak <= speed, 2.0 * np.sqrt(distance / accel),
                    distance / speed + speed / accel)


def entry_time(distance: np.ndarray, tolerance: float, accel, speed,
               beyond: float = 1.0) -> np.ndarray:
    """Time [s] from rest to within ``tolerance`` of a goal ``distance`` away, of the fastest
    rest-to-rest motion to ``distance + beyond * tolerance``, timed where it crosses ``distance -
    tolerance``; ``beyond`` 1 (the far edge): the shortest time that stays within, 0: the
    fastest motion that stops on the goal. Units as :func:`bang_bang_time`'s."""
    edge = np.maximum(distance - tolerance, 0.0)
    length = distance + beyond * tolerance
    peak = np.minimum(np.sqrt(length * accel), speed)
    ramp = peak ** 2 / (2.0 * accel)  # covered while speeding up, and again while braking
    braking = bang_bang_time(length, accel, speed) - np.sqrt(2.0 * (length - edge) / accel)
    cruising = peak / accel + (edge - ramp) / peak
    return np.where(edge <= ramp, np.sqrt(2.0 * edge / accel),
                    np.where(edge <= length - ramp, cruising, braking))


def largest_acceleration(jacobian: torch.Tensor, direction: torch.Tensor,
                         accel: torch.Tensor) -> torch.Tensor:
    """The largest ``w`` [m/s^2 or rad/s^2] for which joint accelerations within ``accel`` (7)
    rad/s^2 give the TCP the acceleration ``w * direction`` (N, 6: linear, angular, base frame)
    and nothing else, at geometric Jacobians ``jacobian`` (N, 6, 7) (``pose_and_jacobian``).

    Those joint accelerations are ``w u + s n``: ``u`` gives ``direction`` (least norm), ``n``
    spans the Jacobian's null space (7 joints, 6 constraints). The largest ``w`` has
    ``max_i |u_i + t n_i| / accel_i`` least over ``t = s / w``: a convex, piecewise linear
    function whose least value lies where two of its terms meet, or one is zero."""
    jacobian = jacobian.double()
    u = (torch.linalg.pinv(jacobian) @ direction.double().unsqueeze(-1)).squeeze(-1) / accel
    n = torch.linalg.svd(jacobian).Vh[:, -1, :] / accel
    du, dn = u.unsqueeze(-1) - u.unsqueeze(-2), n.unsqueeze(-1) - n.unsqueeze(-2)
    su, sn = u.unsqueeze(-1) + u.unsqueeze(-2), n.unsqueeze(-1) + n.unsqueeze(-2)
    candidates = torch.cat([-u / n, (-du / dn).flatten(1), (-su / sn).flatten(1)], -1)
    candidates = torch.nan_to_num(candidates, nan=0.0, posinf=0.0, neginf=0.0)
    worst = (u.unsqueeze(-1) + candidates.unsqueeze(-2) * n.unsqueeze(-1)).abs().amax(-2)
    return 1.0 / worst.amin(-1)


def saturated_share(commands: np.ndarray, joints: np.ndarray, taken: np.ndarray,
                    limits: FilterLimits, dt: float) -> np.ndarray:
    """Per target [M], the share of the steps before it was reached (all, if never) in which
    some joint's limited command [M, S, 7] rad/s was at ``SATURATED`` of the velocity bound at
    that step's joints [M, S, 7] rad, or changed by that share of the acceleration bound from
    the step before (a period's first step: its change from the period before is not counted).
    ``taken``: time to both [M] s (inf: never); ``dt``: the policy step, s."""
    lower, upper = scaled_velocity_bounds(limits, joints)
    at_speed = (commands >= SATURATED * upper) | (commands <= SATURATED * lower)
    change = np.abs(np.diff(commands, axis=1, prepend=commands[:, :1])) / dt
    at_accel = change >= SATURATED * np.asarray(limits.accel)
    hard = (at_speed | at_accel).any(-1)
    steps = np.minimum(np.round(taken / dt), commands.shape[1])
    before = np.arange(commands.shape[1]) < steps[:, None]
    return (hard & before).sum(-1) / np.maximum(before.sum(-1), 1)


def target_starts(policy: Policy, num_targets: int, in_a_row: int,
                  condition: RandomizationConfig = NOMINAL
                  ) -> Tuple[dict, Dict[str, np.ndarray], dict, tuple]:
    """As each held-out target appears, with the policy file in the loop under ``condition``
    (one of ``evaluate.CONDITIONS``): the joints [M, 7] rad and their velocities ``joint_vel``
    [M, 7] rad/s, target positions [M, 3] m and rotations [M, 3, 3] (base frame); the file's run
    per target: ``"taken"``, its time to both [M] s (inf: never), and at each step of the
    target's period ``"commands"``, the limited command [M, S, 7] rad/s, and ``"joints"`` [M, S,
    7] rad; the judge's figures of that run; the range [rad] the task keeps joint 7's turn in."""
    cfg = config_of(policy)
    run = HeldOutRun(cfg, condition, num_targets, EVAL_DEFAULTS.eval_seed, in_a_row=in_a_row)
    task, act = run.task, onnx_actor(policy)
    starts = {"target": [], "target_rot": [],
              "joint_vel": []}  # type: Dict[str, List[torch.Tensor]]
    steps = {"commands": [], "joints": []}  # type: Dict[str, List[torch.Tensor]]

    def recording(obs: torch.Tensor) -> torch.Tensor:
        if len(steps["joints"]) % task.steps_per_target == 0:  # a period's first step
            for key, x in zip(starts, (task.target, task.target_rot, task.backend.joint_vel)):
                starts[key].append(x.clone().double())
        steps["joints"].append(task.backend.joint_pos.clone())
        command = act(obs)
        steps["commands"].append(task.limit_command(command))
        return command

    figures = run(recording)
    # target k of arm a is period k's row a; the judge keeps the first num_targets of that order
    taken = run.ended["time_to_reach"]
    per_target = {key: torch.stack(x).unflatten(0, (-1, task.steps_per_target)).transpose(1, 2)
                  .flatten(0, 1)[:num_targets].numpy() for key, x in steps.items()}
    per_target["taken"] = np.where(np.isnan(taken), np.inf, taken)
    at_start = {key: torch.cat(x)[:num_targets] for key, x in starts.items()}
    at_start["joints"] = torch.from_numpy(per_target["joints"][:, 0]).double()
    return at_start, per_target, figures, task.joint7_range


def bounds(starts: Dict[str, torch.Tensor], limits: FilterLimits, joint7_range: Tuple[float, float],
           success_radius: float) -> Tuple[np.ndarray, Dict[str, Dict[str, np.ndarray]]]:
    """Joint 7's turn [rad] per target, and per target [s], from ``target_starts``' ``starts``,
    at ``limits``' acceleration bounds and joint 7's velocity bound away from its limits: for
    each of ``WAYS`` (module docstring), ``turn_joint7``, ``turn_shared``, ``move``
    (``success_radius`` m) and ``both``."""
    q = starts["joints"]
    accel = torch.as_tensor(np.asarray(limits.accel, dtype=float))
    speed7 = float(scaled_velocity_bounds(limits, np.array(READY_POSE))[1][6])
    position, rotation, jacobian = pose_and_jacobian(q)
    _, turn = joint7_turn(rotation, starts["target_rot"], q[:, 6], *joint7_range)
    yaw = torch.zeros(len(q), 6, dtype=torch.float64)
    yaw[:, 5] = 1.0
    away = starts["target"] - position
    straight = torch.cat([away / away.norm(dim=-1, keepdim=True).clamp(min=1e-9),
                          torch.zeros_like(away)], -1)
    turn, distance = turn.abs().numpy(), away.norm(dim=-1).numpy()
    shared_accel = largest_acceleration(jacobian, yaw, accel).numpy()
    move_accel = largest_acceleration(jacobian, straight, accel).numpy()

    def at_the_edge(length, tolerance, a, speed):
        return bang_bang_time(np.maximum(length - tolerance, 0.0), a, speed)

    def to_the_centre(length, tolerance, a, speed):
        return entry_time(length, tolerance, a, speed, beyond=0.0)

    times = {}
    for way, time in zip(WAYS, (at_the_edge, to_the_centre, entry_time)):
        t = {"turn_joint7": time(turn, ORIENTATION_TOLERANCE, float(accel[6]), speed7),
             "turn_shared": time(turn, ORIENTATION_TOLERANCE, shared_accel, np.inf),
             "move": time(distance, success_radius, move_accel, np.inf)}
        t["both"] = np.maximum(t["move"], t["turn_shared"])
        times[way] = t
    return turn, times


def pose_bench_parser(doc: str) -> argparse.ArgumentParser:
    """The arguments of a bench over a pose file's held-out run: the file, the judge's target
    count and targets in a row; ``doc``: the bench's module docstring."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("policy", help="a pose policy file (.onnx)")
    parser.add_argument("--targets", type=int, default=EVAL_DEFAULTS.eval_targets)
    parser.add_argument("--in-a-row", type=int, default=EVAL_DEFAULTS.eval_in_a_row)
    return parser


def open_pose_policy(parser: argparse.ArgumentParser, path: str):
    """The pose policy file at ``path`` and its training config; a usage error for another."""
    policy = Policy(path)
    if policy.info.target_type != POSE:
        parser.error("%s is a %s policy: this bench is for pose targets"
                     % (path, policy.info.target_type))
    return policy, config_of(policy)


def main(argv=None) -> int:
    parser = pose_bench_parser(__doc__)
    args = parser.parse_args(argv)
    policy, cfg = open_pose_policy(parser, args.policy)
    starts, steps, figures, joint7_range = target_starts(policy, args.targets, args.in_a_row)
    limits = task_filter_limits(cfg.task)
    turn, times = bounds(starts, limits, joint7_range, cfg.task.success_radius)
    taken = steps["taken"]
    hard = saturated_share(steps["commands"], steps["joints"], taken, limits,
                           cfg.task.policy_dt)
    print("%s: %s interface (%.1f rad/s^2 on joint 7), %d held-out targets, %d in a row"
          % (args.policy, cfg.task.interface, limits.accel[6], len(turn), args.in_a_row))
    print("  joint 7's turn: median %.2f rad, p90 %.2f rad"
          % tuple(np.percentile(turn, [50, 90])))
    print("  least times, median [s]: turn, joint 7 alone | turn, every joint sharing | move "
          "| both")
    for way in WAYS:
        print("    %-13s %.2f | %.2f | %.2f | %.2f" % ((way,) + tuple(
            np.median(times[way][k]) for k in ("turn_joint7", "turn_shared", "move", "both"))))
    print("  by joint 7's turn, medians [s]: the file | both: %s; the file's mean share of steps"
          " at %.0f %% of a bound" % (" | ".join(WAYS), 100 * SATURATED))
    for low, high in TURN_BINS:
        chosen = (turn >= low) & (turn < high)
        if chosen.any():
            print("    %.1f-%.1f rad, %4d targets: %.2f | %s; %.2f" % (
                low, high, chosen.sum(), np.median(taken[chosen]), " | ".join(
                    "%.2f" % np.median(times[way]["both"][chosen]) for way in WAYS),
                hard[chosen].mean()))
    print("  the policy file (judge, nominal): %.1f %%, median time to both %.2f s"
          % (100 * figures["success_rate"], figures[TIME_KEY[POSE]]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
