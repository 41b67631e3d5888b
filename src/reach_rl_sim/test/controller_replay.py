"""Trajectories replayed offline through the joint_trajectory_controller model at 1 kHz, and the
command stream it makes judged against the FR3's limits as Franka judges it (numpy only).

The arm tracks perfectly: at each update it is where the previous update's command sample put
it (as in test_trajectory_replay.py), so the commands are the trajectories' own, plus what a
takeover changes.
"""
from typing import List, NamedTuple, Sequence

import numpy as np
from deploy_operator import NAMES, Sent

from reach_rl_core.franka_model import FR3
from reach_rl_deploy.launch_plan.franka_plan import TRAJECTORY_GAINS
from reach_rl_sim.limit_monitor import CONTROL_DT, StreamMonitor
from reach_rl_sim.trajectory_controller import TrajectoryController

DELIVERY = 0.001  # s from a message's send to its receipt by the controller


class Replay(NamedTuple):
    """Per 1 ms update: its time [s], the command [rad/s] and the arm's position [rad]."""

    times: np.ndarray
    commands: np.ndarray
    positions: np.ndarray


def replay(messages: Sequence[Sent], tail: float = 1.0) -> Replay:
    """``messages`` (in the order sent) each received ``DELIVERY`` after its send, by a
    controller activated at the first message's first point (with franka.launch.py's gains);
    updates every 1 ms until ``tail`` [s] after the last message ends."""
    controller = TrajectoryController(NAMES, TRAJECTORY_GAINS["p"],
                                      TRAJECTORY_GAINS["ff_velocity_scale"], CONTROL_DT)
    first = messages[0]
    q, dq = first.trajectory.positions[0], np.zeros(len(NAMES))
    start = min(first.sent, first.stamp)
    controller.activate(start, q)
    end = max(m.stamp + m.trajectory.duration for m in messages) + tail
    pending = list(messages)
    times, commands, positions = [], [], []
    for k in range(1, int(np.ceil((end - start) / CONTROL_DT)) + 1):
        now = start + k * CONTROL_DT
        while pending and pending[0].sent + DELIVERY <= now:
            message = pending.pop(0)
            t = message.trajectory
            reason = controller.receive(NAMES, message.stamp, t.times, t.positions, t.velocities,
                                        t.accelerations, now)
            assert reason == "", reason
        commands.append(controller.update(now, q, dq))
        times.append(now)
        positions.append(q)
        q, dq = controller.last_commanded.position, controller.last_commanded.velocity
    return Replay(np.array(times), np.array(commands), np.array(positions))


def violations(run: Replay) -> List[str]:
    """The FR3 limit violations of ``run``'s command stream, one message per update."""
    monitor = StreamMonitor(FR3, NAMES)
    return [e for e in (monitor.check(q, c) for q, c in zip(run.positions, run.commands)) if e]


def judge(messages: Sequence[Sent]):
    """(update times [s], commands [rad/s], violations) of ``messages`` replayed
    (:func:`deploy_operator.assert_brought_to_rest`'s judge)."""
    run = replay(messages)
    return run.times, run.commands, violations(run)
