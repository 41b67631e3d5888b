"""The topic path's trajectories judged without a controller model: the reference they make,
sampled with reach_rl_core's own splines every 1 ms, within the FR3's limits and the filter's
bounds (numpy only).

Each message takes over at the first 1 ms cycle at or after its send time plus ``DELIVERY``
(what joint_trajectory_controller does with a message it has received); from then on the
reference is the message sampled at the cycle's time from its stamp
(:func:`reach_rl_core.trajectory_spline.sample`), until the next one takes over. Before the
first takeover the arm rests at the first message's first point. A message that takes over
later than its takeover margin steps the reference, which the finite differences see.
"""
from typing import List, NamedTuple, Sequence

import numpy as np

from reach_rl_core.filter_limits import FilterLimits
from reach_rl_core.franka_model import FR3, joint_names, velocity_bounds
from reach_rl_core.trajectory_spline import sample

CYCLE = 0.001  # s, Franka's control period: the reference is sampled as the controller samples it
DELIVERY = 0.001  # s from a message's send to its takeover
TAIL = 0.5  # s sampled after the last trajectory ends
# JTC's quintic splines through the knots stay within 1.1 A and 1.5 J of the exact profile
# (reach_rl_core's test_command_trajectory): the filter's bounds, so widened, hold every 1 ms.
SPLINE_ACCEL = 1.1
SPLINE_JERK = 1.5
NAMES = joint_names("fr3")


class Reference(NamedTuple):
    """Per 1 ms cycle: its time [s], the reference's position [rad] and velocity [rad/s]."""

    times: np.ndarray
    positions: np.ndarray
    velocities: np.ndarray

    def at_rest_from(self, t: float) -> bool:
        """Whether the reference rests from time ``t`` [s] on (every velocity exactly zero)."""
        return not np.any(self.velocities[self.times >= t])


def reference(messages: Sequence, tail: float = TAIL) -> Reference:
    """The reference ``messages`` make (in the order sent; each with ``sent`` and ``stamp`` [s,
    one clock] and its ``trajectory``), every ``CYCLE`` from two cycles before the first
    takeover until ``tail`` after the last message ends."""
    takeovers = [m.sent + DELIVERY for m in messages]
    start = takeovers[0] - 2 * CYCLE
    end = max(m.stamp + m.trajectory.duration for m in messages) + tail
    times = start + CYCLE * np.arange(int(np.ceil((end - start) / CYCLE)) + 1)
    positions, velocities = [], []
    state, active = messages[0].trajectory.point(0), -1
    for now in times:
        while active + 1 < len(messages) and takeovers[active + 1] <= now:
            active += 1
        if active >= 0:
            message = messages[active]
            state = sample(message.trajectory, (0.0, message.trajectory.point(0)),
                           now - message.stamp)
        positions.append(state.position)
        velocities.append(state.velocity)
    return Reference(times, np.array(positions), np.array(velocities))


def _outside(what: str, times, values, lower, upper, unit: str) -> List[str]:
    """One line per cycle where ``values`` (cycles, 7) leave ``[lower, upper]`` (NaN does)."""
    lower, upper = np.broadcast_to(lower, values.shape), np.broadcast_to(upper, values.shape)
    beyond = np.maximum(values - upper, lower - values)
    lines = []
    for k in np.nonzero(np.any(~(beyond <= 0.0), axis=1))[0]:
        j = int(np.argmax(np.nan_to_num(beyond[k], nan=np.inf)))
        bound = upper[k, j] if not values[k, j] < lower[k, j] else lower[k, j]
        lines.append("%.3f s, %s: %s %.4g %s beyond %.4g" % (times[k], NAMES[j], what,
                                                             values[k, j], unit, bound))
    return lines


def violations(run: Reference, limits: FilterLimits) -> List[str]:
    """Where ``run`` leaves the FR3's position limits or its position-dependent velocity bounds,
    or its finite-difference acceleration and jerk exceed Franka's limits or the filter's bounds
    ``limits.accel`` and ``limits.jerk`` (widened by the splines' slack)."""
    t, q, v = run.times, run.positions, run.velocities
    accel = np.diff(v, axis=0) / CYCLE
    jerk = np.diff(v, 2, axis=0) / CYCLE ** 2
    found = _outside("position", t, q, FR3.pos_min, FR3.pos_max, "rad")
    found += _outside("velocity", t, v, *velocity_bounds(FR3, q), "rad/s")
    for what, unit, values, times, franka, bound in (
            ("acceleration", "rad/s^2", accel, t[1:], FR3.acc_max, SPLINE_ACCEL * limits.accel),
            ("jerk", "rad/s^3", jerk, t[2:], FR3.jerk_max, SPLINE_JERK * limits.jerk)):
        franka = np.asarray(franka)
        found += _outside(what + " (Franka's)", times, values, -franka, franka, unit)
        found += _outside(what + " (the filter's)", times, values, -bound, bound, unit)
    return found


def judge(messages: Sequence, limits: FilterLimits):
    """(cycle times [s], the reference's velocities [rad/s], violations) of ``messages``."""
    run = reference(messages)
    return run.times, run.velocities, violations(run, limits)
