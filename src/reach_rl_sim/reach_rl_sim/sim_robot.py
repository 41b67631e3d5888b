"""Simulated Franka arm under joint velocity control: 1 ms physics with Franka's reflexes.

Each 1 ms cycle the arm holds one joint velocity command (in ``sim_robot_node``, the joint
trajectory controller's command of that cycle). The limit monitor checks that command
against the position, velocity, acceleration and jerk limits; on the first violation the
arm goes into a reflex: it stands still (dq = 0), ignores commands and keeps the error until
:meth:`SimRobot.reset`. Otherwise the joint velocity follows the command through the
first-order lag of :mod:`reach_rl_core.actuator_lag` (time constant ``tau``) and the position
integrates it, both exactly over the cycle.

Plain numpy, no ROS: ``sim_robot_node`` wraps it.
"""
from typing import Optional, Sequence

import numpy as np

from reach_rl_core.actuator_lag import lag_step
from reach_rl_core.franka_model import NUM_JOINTS, JointLimits, joint_names
from reach_rl_sim.limit_monitor import CONTROL_DT, StreamMonitor

DEFAULT_ACTUATOR_TAU = 0.005  # s


class SimRobot:
    """Joint state (q [rad], dq [rad/s]), held command history and reflex state of one arm."""

    def __init__(self, limits: JointLimits, initial_positions: Sequence[float],
                 tau: float = DEFAULT_ACTUATOR_TAU, names: Optional[Sequence[str]] = None,
                 dt: float = CONTROL_DT):
        q = np.array(initial_positions, dtype=float)
        if q.shape != (NUM_JOINTS,) or not np.all(np.isfinite(q)):
            raise ValueError("initial_positions must be %d finite values, got %r" % (NUM_JOINTS, list(q)))
        outside = (q < np.array(limits.pos_min)) | (q > np.array(limits.pos_max))
        if outside.any():
            raise ValueError("initial_positions outside the %s position limits on joint(s) %s"
                             % (limits.robot, [i + 1 for i in np.nonzero(outside)[0]]))
        self.limits = limits
        self.names = tuple(names) if names is not None else joint_names(limits.robot)
        self.dt = dt
        self.tau = tau
        self.q = q
        self.dq = np.zeros(NUM_JOINTS)
        self.error: Optional[str] = None
        self.monitor = StreamMonitor(limits, self.names, dt)

    @property
    def in_reflex(self) -> bool:
        return self.error is not None

    def trigger_reflex(self, error: str) -> bool:
        """Enter the reflex with ``error`` (kept if already in one); True if this started a reflex."""
        if self.in_reflex:
            return False
        self.error = error
        self.dq = np.zeros(NUM_JOINTS)
        return True

    def step(self, command) -> Optional[str]:
        """One controller cycle holding joint velocity ``command`` [rad/s], shape (7,).

        Returns the error message when this cycle started a reflex, else None.
        """
        if self.in_reflex:
            return None
        command = np.asarray(command, dtype=float)
        error = self.monitor.check(self.q, command)
        if error:
            self.trigger_reflex(error)
            return self.error
        self.dq, displacement = lag_step(self.dq, command, self.tau, self.dt)
        self.q = self.q + displacement
        return None

    def reset(self) -> Optional[str]:
        """Leave the reflex and return the cleared error; None (and no change) if there was none.

        The arm stands still with the held commands back to zero, so the next command must
        start near zero. A joint past a position limit is put back on the limit (as an
        operator would guide it back).
        """
        if not self.in_reflex:
            return None
        error, self.error = self.error, None
        self.dq = np.zeros(NUM_JOINTS)
        self.q = np.clip(self.q, self.limits.pos_min, self.limits.pos_max)
        self.monitor.reset()
        return error
