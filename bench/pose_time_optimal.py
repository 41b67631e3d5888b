"""How fast the arm could reach the held-out judge's pose targets: open-loop command sequences,
optimised per target through the judge's own command limiter and simulator, beside the policy
file's times.

For each of ``reach-rl-eval``'s held-out targets (its seed, 1000 targets, 4 in a row), from the
joints, their velocities and the command where the policy file leaves the arm when the target
appears (``pose_time_bound.target_starts``), in the nominal condition or, with ``--lag``, in the
judge's other one (the file runs with its 30 ms actuator lag, 2 steps of latency and noise; the
plans go through the same actuator lag, and being open-loop see neither latency nor noise):

1. the file's own limited commands over the first ``--horizon`` steps are the starting plan;
2. gradient descent (Adam) changes the plan to cross into the tolerance sooner: the loss is a
   soft count of the steps outside it (``softplus`` of the scaled error ``max(d / 1 cm, angle /
   5 deg)`` above ``AIM``), and near the horizon's end the error and the velocity squared. The
   plan is each step's change of command, ``A dt tanh(u)`` (the acceleration bound by
   construction); every step goes through ``safety_filter.policy_command``, as the judge's
   commands do, and the velocity and braking bounds it adds are penalised (their clamps pass
   gradients straight through);
3. each optimised plan is then played in the judge's simulator (``TorchArmSim``), then braked to
   rest by the limiter until the target's period ends. It counts only if, from the first step
   within both (1 cm and 5 deg), the arm stays within both to the period's end; so a target the
   plan cannot reach and stop on within the horizon (80 steps, 1.6 s, by default: most turns
   over 3 rad) counts as never. The file's own commands, replayed over the whole period, are
   timed by the same rule ("held"; the judge times the first step within).

So every optimised time is one the judge's simulator and limiter give, from the file's own start.
Open-loop plans know the target and the arm exactly, as a policy does in the nominal condition;
a plan beating the file shows time a policy could still win, not how to learn it. The "held" times
also show whether the file's first step within both is a hold or a pass through the tolerance.

    source env.sh && python bench/pose_time_optimal.py \\
        src/reach_rl_deploy/test/policies/fr3_libfranka_pose.onnx
"""
import math
import time
from typing import NamedTuple, Tuple

import numpy as np
import torch

from pose_time_bound import (TURN_BINS, bounds, open_pose_policy, pose_bench_parser,
                              target_starts)
from reach_rl_core.filter_limits import FilterLimits
from reach_rl_core.orientation import ORIENTATION_TOLERANCE
from reach_rl_core.safety_filter import goal_bounds, policy_command
from reach_rl_train.arm_sim import TorchArmSim
from reach_rl_train.config import task_filter_limits
from reach_rl_train.evaluate import CONDITIONS, TIME_KEY, held_times
from reach_rl_train.held_out import NOMINAL
from reach_rl_train.pose_target import POSE, orientation_error, tcp_pose, within_tolerance

AIM = 0.8  # of the tolerance: the loss counts a step as outside above this scaled error
SOFTNESS = 0.05  # of the tolerance: the width of the loss's soft step
END_STEPS = 10  # steps at the horizon's end whose error and velocity the loss also weighs
# --lag: the judge's one randomised condition (30 ms actuator lag, 2 steps latency, noise)
(LAGGED,) = (name for name, condition in CONDITIONS.items() if condition.enabled)


class Start(NamedTuple):
    """Per target (M): joints [M, 7] rad, their velocities [M, 7] rad/s, the command in force
    [M, 7] rad/s, target position [M, 3] m and rotation [M, 3, 3] (base frame), all float64;
    and the actuator lag [s] of the condition (0: nominal)."""

    joints: torch.Tensor
    velocity: torch.Tensor
    command: torch.Tensor
    target: torch.Tensor
    target_rot: torch.Tensor
    lag: float


def previous_commands(commands: np.ndarray, arms: int) -> np.ndarray:
    """The command [M, 7] rad/s in force as each target appears: the same arm's last one of the
    period before (targets in the judge's order, period by period, ``arms`` arms each; an
    episode's first target starts at rest). ``commands``: [M, S, 7], each period's steps."""
    before = np.zeros(commands.shape[:1] + commands.shape[2:])
    before[arms:] = commands[:-arms, -1]
    return before


def pose_errors(joints: torch.Tensor, start: Start):
    """The TCP's distance [M] m and orientation error [M] rad to each target at ``joints``."""
    position, rotation = tcp_pose(joints)
    return ((start.target - position).norm(dim=-1),
            orientation_error(rotation, start.target_rot))


def scaled_error(joints: torch.Tensor, start: Start, radius: float) -> torch.Tensor:
    """``max(d / radius, angle / 5 deg)`` [M] at ``joints`` [M, 7]: 1 on the tolerance's edge."""
    distance, angle = pose_errors(joints, start)
    return torch.maximum(distance / radius, angle / ORIENTATION_TOLERANCE)


def simulator(start: Start, limits: FilterLimits) -> Tuple[TorchArmSim, torch.Tensor]:
    """The judge's simulator at ``start``'s joints and velocities, and its lags [M] s."""
    count = len(start.joints)
    sim = TorchArmSim(count, limits.joint_limits, "cpu")
    sim.joint_pos, sim.joint_vel = start.joints.clone(), start.velocity.clone()
    return sim, torch.full((count,), start.lag, dtype=torch.float64)


def rollout(plan: torch.Tensor, start: Start, limits: FilterLimits, dt: float, radius: float):
    """Play ``plan`` [M, H, 7] (per step, the command's change in units of the acceleration
    bound, before tanh) through the limiter and the simulator; the scaled error per step [M, H],
    the last command [M, 7] rad/s and the squared excess over the velocity and braking bounds
    (a number)."""
    step = torch.as_tensor(np.asarray(limits.accel) * dt)
    sim, lag = simulator(start, limits)
    command, errors, excess = start.command, [], 0.0
    for k in range(plan.shape[1]):
        wanted = command + step * torch.tanh(plan[:, k])
        limited = policy_command(limits, sim.joint_pos, wanted, command, dt)
        low, high = goal_bounds(limits, sim.joint_pos)
        excess = excess + (torch.relu(wanted - high) ** 2 + torch.relu(low - wanted) ** 2).sum()
        command = wanted + (limited - wanted).detach()
        sim.step(command, lag, dt)
        errors.append(scaled_error(sim.joint_pos, start, radius))
    return torch.stack(errors, 1), command, excess


def loss_of(errors: torch.Tensor, last_command: torch.Tensor, excess) -> torch.Tensor:
    """The optimised loss (module docstring) of :func:`rollout`'s outputs."""
    outside = SOFTNESS * torch.nn.functional.softplus((errors - AIM) / SOFTNESS)
    ending = 0.2 * (errors[:, -END_STEPS:] ** 2).sum() + (last_command ** 2).sum()
    return outside.sum() + ending + 10.0 * excess


def verified_times(plan: torch.Tensor, start: Start, limits: FilterLimits, dt: float,
                   radius: float, period_steps: int) -> np.ndarray:
    """Time to both [M] s of each plan in the judge's simulator (``TorchArmSim``, through
    ``start.lag``), then braking to rest to the period's end, within both as the task judges
    it; inf where it never gets within both or leaves them again (where the judge's held time,
    ``evaluate.held_times``, is not its first step within)."""
    step = torch.as_tensor(np.asarray(limits.accel) * dt)
    sim, lag = simulator(start, limits)
    command, within = start.command, []
    with torch.no_grad():
        for k in range(period_steps):
            wanted = (command + step * torch.tanh(plan[:, k]) if k < plan.shape[1]
                      else torch.zeros_like(command))
            command = policy_command(limits, sim.joint_pos, wanted, command, dt)
            sim.step(command, lag, dt)
            within.append(within_tolerance(*pose_errors(sim.joint_pos, start), radius).double())
    success = torch.stack(within)  # [S, M]
    first = (success.argmax(0) + 1).double() * dt
    held = held_times(success, dt)
    return torch.where(held == first, first, math.inf).numpy()


def as_plan(commands: np.ndarray, before: np.ndarray, limits: FilterLimits, dt: float,
            horizon: int, margin: float = 1e-3) -> torch.Tensor:
    """The file's limited commands [M, S, 7] rad/s as a plan of ``horizon`` steps (held at the
    last one beyond the period), from the commands in force before them [M, 7]. A change at
    the bound becomes ``1 - margin`` of it: 1e-12 replays the file to within 1e-12 rad/s a
    step; the default leaves such steps a gradient to optimise."""
    steps = commands[:, :horizon]
    if horizon > steps.shape[1]:
        tail = np.repeat(steps[:, -1:], horizon - steps.shape[1], axis=1)
        steps = np.concatenate([steps, tail], 1)
    change = np.diff(np.concatenate([before[:, None], steps], 1), axis=1)
    unit = change / (np.asarray(limits.accel) * dt)
    return torch.atanh(torch.from_numpy(unit).double().clamp(margin - 1.0, 1.0 - margin))


def optimise(plan: torch.Tensor, start: Start, limits: FilterLimits, dt: float, radius: float,
             iterations: int, rate: float) -> torch.Tensor:
    """``plan`` after ``iterations`` Adam steps at learning rate ``rate`` on :func:`loss_of`."""
    plan = plan.clone().requires_grad_(True)
    optimiser = torch.optim.Adam([plan], lr=rate)
    begun = time.perf_counter()
    for iteration in range(iterations):
        loss = loss_of(*rollout(plan, start, limits, dt, radius))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        if (iteration + 1) % 50 == 0:
            print("  iteration %d: loss %.0f, %.0f s" % (iteration + 1, loss.item(),
                                                        time.perf_counter() - begun), flush=True)
    return plan.detach()


def report(taken: np.ndarray, optimised: np.ndarray, turn: np.ndarray) -> None:
    """Print the file's and the plans' times to both [s], held to the period's end (inf:
    never, or left again)."""
    best = np.minimum(taken, optimised)
    print("  median time to both, held: the file %.2f s | the optimised plans %.2f s | the "
          "faster of the two per target %.2f s"
          % (np.median(taken), np.median(optimised), np.median(best)))
    both = np.isfinite(taken) & np.isfinite(optimised)
    gain = taken[both] - optimised[both]
    if both.any():
        print("  %d targets that both reach and hold: the plan faster by %.2f / %.2f / %.2f s "
              "(quartiles); %.0f %% of them 0.04 s or more" % (
                  both.sum(), *np.percentile(gain, [25, 50, 75]), 100 * np.mean(gain >= 0.04)))
    else:
        print("  no target that both the file and a plan reach and hold")
    print("  by joint 7's turn, medians [s]: the file | the plans")
    for low, high in TURN_BINS:
        chosen = (turn >= low) & (turn < high)
        if chosen.any():
            print("    %.1f-%.1f rad, %4d targets: %.2f | %.2f" % (
                low, high, chosen.sum(), np.median(taken[chosen]), np.median(optimised[chosen])))


def main(argv=None) -> int:
    parser = pose_bench_parser(__doc__)
    parser.add_argument("--horizon", type=int, default=80, help="optimised steps per target")
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--rate", type=float, default=0.03, help="Adam's learning rate")
    parser.add_argument("--lag", action="store_true",
                        help="the judge's lag condition (%s): the file runs in it, the plans "
                        "through its actuator lag" % LAGGED)
    args = parser.parse_args(argv)
    policy, cfg = open_pose_policy(parser, args.policy)
    limits, dt, radius = task_filter_limits(cfg.task), cfg.task.policy_dt, cfg.task.success_radius
    condition = CONDITIONS[LAGGED] if args.lag else NOMINAL
    starts, steps, figures, joint7_range = target_starts(policy, args.targets, args.in_a_row,
                                                         condition)
    before = previous_commands(steps["commands"], math.ceil(args.targets / args.in_a_row))
    start = Start(starts["joints"], starts["joint_vel"], torch.from_numpy(before),
                  starts["target"], starts["target_rot"],
                  condition.actuator_tau_max if condition.enabled else 0.0)
    print("%s: %s interface, %d held-out targets, %d in a row, %s; the file: %.1f %%, %.2f s"
          % (args.policy, cfg.task.interface, args.targets, args.in_a_row,
             LAGGED if args.lag else "nominal", 100 * figures["success_rate"],
             figures[TIME_KEY[POSE]]), flush=True)
    period = steps["commands"].shape[1]
    replayed = as_plan(steps["commands"], before, limits, dt, period, margin=1e-12)
    held = verified_times(replayed, start, limits, dt, radius, period)
    print("  the file's commands replayed: %.1f %% reach and hold, median %.2f s"
          % (100 * np.mean(np.isfinite(held)), np.median(held)), flush=True)
    plan = as_plan(steps["commands"], before, limits, dt, args.horizon)
    plan = optimise(plan, start, limits, dt, radius, args.iterations, args.rate)
    optimised = verified_times(plan, start, limits, dt, radius, period)
    turn, _ = bounds(starts, limits, joint7_range, radius)
    report(held, optimised, turn)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
