"""FCI-like limit checker for the simulated robot: what Franka's controller would reject.

Each 1 ms cycle the controller holds one joint velocity command. From the command held
in this cycle and the two before it, and the joint position, :func:`check_limits` reports
every violated limit, per joint:

* ``joint_position_limit_violation``: position outside ``[pos_min, pos_max]``;
* ``joint_velocity_limit_violation``: command outside the velocity bounds at the position
  (position-dependent for the FR3, ``franka_model.velocity_bounds``);
* ``joint_acceleration_limit_violation``: ``|c0 - c1| / dt > acc_max``;
* ``joint_jerk_limit_violation``: ``|c0 - 2 c1 + c2| / dt^2 > jerk_max``.

(libfranka reports these as joint_position_limits_violation,
joint_motion_generator_velocity_limits_violation, ..._velocity_discontinuity and
..._acceleration_discontinuity.) Plain numpy.
"""
from typing import List, NamedTuple, Optional, Sequence

import numpy as np

from reach_rl_core.franka_model import JointLimits, velocity_bounds
from reach_rl_core.filter_limits import DEFAULT_CONTROL_RATE

CONTROL_DT = 1.0 / DEFAULT_CONTROL_RATE  # s, Franka's controller period

POSITION = "joint_position_limit_violation"
VELOCITY = "joint_velocity_limit_violation"
ACCELERATION = "joint_acceleration_limit_violation"
JERK = "joint_jerk_limit_violation"


class Violation(NamedTuple):
    """One violated limit: which, on which joint (index 0..6), the value and the bound it broke."""

    limit: str  # one of POSITION, VELOCITY, ACCELERATION, JERK
    joint: int
    value: float  # rad, rad/s, rad/s^2 or rad/s^3 (signed)
    bound: float  # the bound crossed, same sign convention as value
    unit: str

    def describe(self, joint_names: Sequence[str]) -> str:
        """E.g. ``joint_velocity_limit_violation on fr3_joint4: 2.71 rad/s > 2.62``."""
        relation = ">" if self.value > self.bound else "<"
        return "%s on %s: %.4g %s %s %.4g" % (self.limit, joint_names[self.joint], self.value, self.unit,
                                             relation, self.bound)


def _outside(limit, value, lower, upper, unit) -> List[Violation]:
    """Violations where ``value`` lies outside ``[lower, upper]`` (NaN counts as outside)."""
    found = []
    for j in np.nonzero(~((value >= lower) & (value <= upper)))[0]:
        bound = upper[j] if not value[j] < lower[j] else lower[j]
        found.append(Violation(limit, int(j), float(value[j]), float(bound), unit))
    return found


def check_limits(limits: JointLimits, q, command, prev_command, prev_prev_command,
                 dt: float = CONTROL_DT) -> List[Violation]:
    """Violations in one controller cycle; empty when all limits hold.

    ``q``: joint position [rad]; ``command``, ``prev_command``, ``prev_prev_command``: the
    joint velocity commands [rad/s] held in this cycle and the two before (zeros before
    the robot moved); ``dt``: controller period [s]. All shape (7,).
    """
    q = np.asarray(q, dtype=float)
    c0, c1, c2 = (np.asarray(c, dtype=float) for c in (command, prev_command, prev_prev_command))
    acc_max = np.asarray(limits.acc_max, dtype=float)
    jerk_max = np.asarray(limits.jerk_max, dtype=float)
    vel_lower, vel_upper = velocity_bounds(limits, q)
    violations = _outside(POSITION, q, np.asarray(limits.pos_min), np.asarray(limits.pos_max), "rad")
    violations += _outside(VELOCITY, c0, vel_lower, vel_upper, "rad/s")
    violations += _outside(ACCELERATION, (c0 - c1) / dt, -acc_max, acc_max, "rad/s^2")
    violations += _outside(JERK, (c0 - 2.0 * c1 + c2) / dt ** 2, -jerk_max, jerk_max, "rad/s^3")
    return violations


def describe_violations(violations: Sequence[Violation], joint_names: Sequence[str]) -> str:
    """All ``violations`` as one line, separated by '; '."""
    return "; ".join(v.describe(joint_names) for v in violations)


class StreamMonitor:
    """A 1 kHz controller's view of a command stream: each cycle's held command is checked with
    the two commands held before it; the history advances only while no limit is violated."""

    def __init__(self, limits: JointLimits, joint_names: Sequence[str], dt: float = CONTROL_DT):
        self.limits = limits
        self.joint_names = tuple(joint_names)
        self.dt = dt
        self.reset()

    def reset(self) -> None:
        """Back to a robot at rest: the commands of the last two cycles are zero."""
        self._history = [np.zeros(len(self.joint_names)), np.zeros(len(self.joint_names))]

    def check(self, q, command) -> Optional[str]:
        """The violations of holding ``command`` [rad/s] this cycle at position ``q`` [rad], as
        one message; None (and the history advances) when every limit holds."""
        violations = check_limits(self.limits, q, command, self._history[0], self._history[1], self.dt)
        if violations:
            return describe_violations(violations, self.joint_names)
        self._history = [np.array(command, dtype=float), self._history[0]]
        return None

