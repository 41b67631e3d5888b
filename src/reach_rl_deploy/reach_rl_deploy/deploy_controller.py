"""The deploy loop without ROS: joint state + target -> one joint velocity command per tick.

``DeployController.tick`` is called once per policy step (both interfaces; ``limits.dt`` is
the policy's ``policy_dt``): it runs the policy and passes its output through the safety
filter. Anything doubtful -- no or stale joint state, NaN/inf in it, a non-finite policy
output, motion disabled, no target (or one of the kind the policy does not take: a pose
policy's target has an orientation, a point policy's none) -- makes the goal zero, and the
robot side (the trajectory, or franky's Ruckig) ramps the arm smoothly to a stop.

The policy only ever sees states like those it was trained on: when motion is enabled with
the arm farther than ``home_tolerance`` from the home (ready) pose, the controller first
drives it there (:func:`homing_goal`, through the same filter), then hands over.

Units: rad, rad/s, s, metres in the arm's base frame; orientations as unit quaternions (x, y, z,
w) of the TCP frame in the base frame (:class:`reach_rl_deploy.targets.Target`).
"""
import time
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import numpy as np

from reach_rl_core.franka_model import NUM_JOINTS
from reach_rl_deploy.policy_runtime import Policy
from reach_rl_deploy.targets import Target
from reach_rl_core.filter_limits import FilterLimits
from reach_rl_core.safety_filter import FilterActivity, FilterState, filter_step


# Watchdog states, in the order a status report lists them.
OK = "ok"
DISABLED = "disabled"
NO_TARGET = "no target"
NO_STATE = "no joint state"
STALE_STATE = "stale joint state"
NONFINITE_STATE = "non-finite joint state"
NONFINITE_POLICY = "non-finite policy output"
HOMING = "moving to the ready pose"
HOME_REACHED = 0.01  # rad: homing ends when every joint is this close to home ...
HOME_SETTLED = 0.02  # rad/s: ... and every command this slow


def homing_goal(q, home, limits: FilterLimits, speed: float):
    """Joint velocity goal [rad/s] that brings ``q`` [rad] to ``home`` [rad] on straight lines in
    joint space, all joints arriving together at a peak speed of ``speed`` [rad/s].

    Each joint slows along the filter's braking curve, ``sqrt(2 * brake_accel * distance)``, so
    the robot side's jerk-limited motion following the goal lands on ``home`` without
    overshoot; the last millimetres close in proportion to the distance, a quarter of it per
    command (``limits.dt``), so a goal held for a whole policy step (20 ms) never overshoots
    either.
    """
    error = np.asarray(home, dtype=float) - np.asarray(q, dtype=float)
    largest = float(np.max(np.abs(error)))
    if largest == 0.0:
        return np.zeros_like(error)
    cruise = speed * np.abs(error) / largest
    brake = np.sqrt(2.0 * limits.brake_accel * np.abs(error))
    settle = np.abs(error) / (4.0 * limits.dt)
    return np.sign(error) * np.minimum(np.minimum(cruise, brake), settle)


@dataclass
class JointSample:
    """Joint positions [rad] and velocities [rad/s] in the policy's joint order, when they were
    received (monotonic s), the message's stamp and its DDS send time (system clock s, 0 when
    unknown)."""

    position: np.ndarray
    velocity: np.ndarray
    received: float
    stamp: float = 0.0
    sent: float = 0.0


def reorder_joint_state(names: Sequence[str], position: Sequence[float], velocity: Sequence[float],
                        wanted: Sequence[str]) -> Tuple[np.ndarray, np.ndarray]:
    """Pick ``wanted`` joints out of a JointState's parallel arrays (other joints, such as
    fingers, are ignored). ValueError naming the missing joints if any is absent, or if the
    arrays are shorter than the names."""
    index = {name: i for i, name in enumerate(names)}
    missing = [n for n in wanted if n not in index]
    if missing:
        raise ValueError("joint_states lacks %s (has %s)" % (", ".join(missing), ", ".join(names)))
    order = [index[n] for n in wanted]
    if len(position) < len(names) or len(velocity) < len(names):
        raise ValueError("joint_states has %d names but %d positions and %d velocities"
                         % (len(names), len(position), len(velocity)))
    return (np.array([position[i] for i in order], dtype=float),
            np.array([velocity[i] for i in order], dtype=float))


def watchdog(sample: Optional[JointSample], now: float, timeout: float,
             wall_now: Optional[float] = None) -> str:
    """OK, or why the joint state cannot be trusted at monotonic time ``now`` [s].

    Stale: received more than ``timeout`` [s] ago, or, given the system-clock time
    ``wall_now`` [s] and a stamped sample, stamped more than ``timeout`` away from it (a
    state that waited in a queue is as old as its stamp, not as its delivery).
    """
    if sample is None:
        return NO_STATE
    if now - sample.received > timeout:
        return STALE_STATE
    if wall_now is not None and sample.stamp > 0.0 and abs(wall_now - sample.stamp) > timeout:
        return STALE_STATE
    if not (np.all(np.isfinite(sample.position)) and np.all(np.isfinite(sample.velocity))):
        return NONFINITE_STATE
    return OK


class DeployController:
    """Runs ``policy`` behind the safety filter, one ``tick`` per policy step."""

    def __init__(self, policy: Policy, limits: FilterLimits, state_timeout: float,
                 home: Optional[Sequence[float]] = None, home_tolerance: float = 0.2,
                 home_speed: float = 0.5):
        """``home`` [rad] (None: no homing), ``home_tolerance`` [rad] (the training's start
        spread) and ``home_speed`` [rad/s] configure the move to the ready pose. ValueError
        when ``limits.dt`` is not the policy's period: one tick, one policy step."""
        if int(round(policy.info.policy_dt / limits.dt)) > 1:
            raise ValueError("the filter's period %g s is shorter than the policy's %g s: "
                             "DeployController ticks once per policy step"
                             % (limits.dt, policy.info.policy_dt))
        self.policy = policy
        self.limits = limits
        self.state_timeout = state_timeout
        self.home = None if home is None else np.asarray(home, dtype=float)
        self.home_tolerance = home_tolerance
        self.home_speed = home_speed
        self.homing = False  # moving to home before the policy takes over
        self.homed = False  # homing was decided since the last rehome(): the policy drives
        self.filter = FilterState.at_rest()
        self.status = NO_STATE
        self.last_inference_s = 0.0
        self.last_activity = None  # type: Optional[FilterActivity]

    def tick(self, sample: Optional[JointSample], target: Optional[Target],
             enabled: bool, now: float, wall_now: Optional[float] = None) -> np.ndarray:
        """The next command [rad/s] to publish, given the latest joint ``sample``, ``target``
        (None: none yet) and whether motion is ``enabled``,
        at monotonic time ``now`` [s] (and system-clock time ``wall_now`` [s] to check the
        sample's stamp; None: don't). A target of the other kind than the policy takes counts
        as none."""
        status = watchdog(sample, now, self.state_timeout, wall_now)
        if status == OK and not enabled:
            status = DISABLED
        if status == OK and self.needs_homing(sample.position):
            status = HOMING
        if status == OK and (target is None or (target.quaternion is not None) != self.policy.pose):
            status = NO_TARGET
        goal = np.zeros(NUM_JOINTS)
        if status == OK:
            output = self._infer(sample, target)
            if np.all(np.isfinite(output)):
                goal = output
            else:
                status = NONFINITE_POLICY
        elif status == HOMING:
            goal = homing_goal(sample.position, self.home, self.limits, self.home_speed)
        q = sample.position if sample is not None else np.full(NUM_JOINTS, np.nan)
        self.filter, self.last_activity = filter_step(self.limits, self.filter, goal, q)
        self.status = status
        return self.filter.command

    def rehome(self) -> None:
        """Check the arm's distance from home again at the next enabled tick (motion enabled
        anew, or a reflex recovered): the policy starts near the states it was trained on."""
        self.homed = False

    def needs_homing(self, q: np.ndarray) -> bool:
        """Whether the arm must move home first. Decided once after :meth:`rehome` (and at
        start): homing when farther than ``home_tolerance`` from home; it ends once the arm is
        there and nearly at rest, and the policy drives from then on, wherever it takes the arm."""
        if self.home is None or self.homed:
            return False
        distance = np.max(np.abs(q - self.home))
        if not self.homing and distance > self.home_tolerance:
            self.homing = True
        elif not self.homing or (distance < HOME_REACHED
                                 and np.max(np.abs(self.filter.command)) < HOME_SETTLED):
            self.homing, self.homed = False, True
        return self.homing

    def _infer(self, sample: JointSample, target: Target) -> np.ndarray:
        start = time.perf_counter()
        output = self.policy(sample.position, sample.velocity, target.position,
                             self.filter.command, target.quaternion)
        self.last_inference_s = time.perf_counter() - start
        return output

    def stopped(self) -> bool:
        """Whether the last command is exactly zero (the robot side then ramps to rest)."""
        return not np.any(self.filter.command)
