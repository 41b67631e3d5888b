"""The deploy node's ``ros2_control`` interface: one trajectory per policy step for franka_ros2's
joint_trajectory_controller (JTC), which interpolates it at 1 kHz in C++.

Each policy tick (``policy_dt``, 50 Hz) the loop takes the newest joint state from
``joint_states_topic`` (sensor_msgs/JointState, reordered by name; read on this thread,
:mod:`reach_rl_deploy.ros_plumbing.direct_subscription`), runs
:class:`~reach_rl_deploy.deploy_controller.DeployController` (watchdog, homing, policy, the
safety filter's goal clamp: velocity bounds, braking ahead of the position limits,
self-collision) and publishes on ``trajectory_topic`` (trajectory_msgs/JointTrajectory) the
command as a trajectory (:mod:`reach_rl_core.command_trajectory`): the controller's reference
as it is until one policy period after the tick (so that JTC may take the message over that
late without a step), then reach the command within the filter's acceleration and jerk bounds,
hold it for ``command_hold`` [s] (the next policy period plus a margin), then brake to rest. The
message is stamped ``STAMP_BACKDATE`` before the system clock (the controller's clock on the
same machine) at publishing, within ``SEND_DEADLINE``, its points every ``KNOT_DT`` from time 0 with
positions [rad], velocities [rad/s] and
accelerations [rad/s^2] (JTC's quintic splines), the last one at rest.

So nothing here runs at 1 kHz, and a node that stalls or dies leaves the arm braking to rest
on the last trajectory it sent. The braking curves of the filter allow for the hold
(``FilterLimits.hold_time``). The node's threads run under SCHED_FIFO ``rt_priority`` where
permitted (below the controller manager's 50): a busy machine then cannot deschedule the node
between a message's stamp and its publishing.
"""
import time
from typing import List, Optional

import numpy as np
from builtin_interfaces.msg import Duration
from sensor_msgs.msg import JointState
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from reach_rl_core.command_trajectory import TrajectoryStream
from reach_rl_core.trajectory_spline import Trajectory
from reach_rl_deploy.deploy_controller import JointSample, reorder_joint_state
from reach_rl_deploy.deploy_parameters import DeployParameters
from reach_rl_deploy.interfaces import LoopContext, controller_switch
from reach_rl_deploy.ros_plumbing.direct_subscription import DirectSubscription
from reach_rl_deploy.ros_plumbing.qos import reliable, wait_acknowledged
from reach_rl_deploy.ros_plumbing.realtime import realtime_process_where_permitted
from reach_rl_deploy.ros_plumbing.timing_histogram import TimingHistogram

SENSOR_QOS = reliable(1)  # only the newest joint state matters at a tick
TRAJECTORY_QOS = reliable(1)  # JTC keeps only the newest message too
KNOT_DT = 0.01  # s between trajectory points
# s a message is stamped before its tick: JTC then takes it over after its stamp (inside its
# first segments) even where its clock runs behind this node's by up to this much, instead of
# splining from its stored state, one period early, to a point still ahead (a jerk).
STAMP_BACKDATE = 2 * KNOT_DT
# s a message may be published after its stamp plus STAMP_BACKDATE, else it is planned again
# from a new stamp: one published later (this process descheduled or stalled between reading
# the clock and publishing) could take over after its margin, where it already differs from the
# reference it replaces (a step). The margin leaves the rest for transport and JTC's update.
SEND_DEADLINE = 0.010
SEND_ATTEMPTS = 3  # plans a tick; all late: nothing sent this tick (the last trajectory runs on)
STOP_TIMEOUT_S = 3.0  # longest wait for the reference to come to rest on shutdown


def trajectory_message(trajectory: Trajectory, joint_names: List[str],
                       stamp: float) -> JointTrajectory:
    """``trajectory`` as a JointTrajectory stamped ``stamp`` [s, system clock]."""
    msg = JointTrajectory(joint_names=list(joint_names))
    stamp_ns = int(round(stamp * 1e9))
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp_ns, 1000000000)
    for i, t in enumerate(trajectory.times):
        nanoseconds = int(round(float(t) * 1e9))
        msg.points.append(JointTrajectoryPoint(
            positions=trajectory.positions[i].tolist(),
            velocities=trajectory.velocities[i].tolist(),
            accelerations=trajectory.accelerations[i].tolist(),
            time_from_start=Duration(sec=nanoseconds // 1000000000,
                                     nanosec=nanoseconds % 1000000000)))
    return msg


class TrajectoryInterface:
    """The topic path (a :class:`~reach_rl_deploy.interfaces.DeployInterface`)."""

    def __init__(self, context: LoopContext, p: DeployParameters):
        limits = context.controller.limits
        self.context = context
        self.log = context.ros.get_logger()
        self.name = p.trajectory_topic
        self.controller_name = p.activate_controller
        self.check_stamps = p.check_stamps
        self.period = limits.dt
        # The reference is repeated from the stamp to one policy period after the tick.
        self.stream = TrajectoryStream(limits.accel, limits.jerk, limits.command_hold, KNOT_DT,
                                       takeover_margin=limits.dt + STAMP_BACKDATE)
        self.tick_period = TimingHistogram()  # s between ticks
        self.send_delay = TimingHistogram()  # s from a message's stamp + STAMP_BACKDATE to publish
        self.sent = 0
        self.replanned = 0  # messages planned again from a new stamp (SEND_DEADLINE)
        self._sample = None  # type: Optional[JointSample]
        self._last_state_error = ""
        self._publisher = context.ros.create_publisher(JointTrajectory, p.trajectory_topic,
                                                       TRAJECTORY_QOS)
        self._states = DirectSubscription(context.ros, "joint_states", JointState, p.joint_states_topic,
                                          SENSOR_QOS)
        # Every thread of the node (the loop's, which publishes, the executor's, DDS's) under
        # SCHED_FIFO: an ordinary thread preempted inside a DDS write delays the message past
        # its takeover.
        realtime_process_where_permitted(
            p.rt_priority, self.log.warning, "the deploy node", "under load, trajectories may "
            "take over late; run with CAP_SYS_NICE, or rt_priority:=0 to silence this")

    def run(self) -> bool:
        """Policy ticks until the node stops and the reference is at rest; False if the loop
        failed (after sending a trajectory to rest)."""
        try:
            self._loop()
            return True
        except Exception as exc:
            self.log.fatal("control loop failed (%s: %s): sending the arm to rest"
                                         % (type(exc).__name__, exc))
            self._send_rest()
            return False

    def fault(self) -> str:
        """Why motion cannot work now ('' when it can): nobody subscribes to the trajectories."""
        if self._publisher.get_subscription_count() == 0:
            return ("no subscriber on %s: is franka_ros2's joint_trajectory_controller loaded and "
                    "active? (ros2 control list_controllers)" % self._publisher.topic_name)
        return ""

    def activate(self) -> str:
        """On ``~/enable true``: activate the controller spawned inactive ('' when done or none
        to activate, else why motion cannot be enabled)."""
        if not self.controller_name:
            return ""
        return controller_switch.activate(self.context.ros, self.controller_name)

    def diagnostic_values(self) -> list:
        return [("trajectories sent", str(self.sent))]

    def timing_lines(self) -> List[str]:
        return ["  trajectories: %d sent (%d planned again, late), policy tick period %s, "
                "publish after stamp + backdate %s" % (self.sent, self.replanned,
                                                       self.tick_period.summary(),
                                                       self.send_delay.summary())]

    def finish(self) -> None:
        """After the loop: wait until subscribers acknowledged the last trajectory."""
        wait_acknowledged((self._publisher,), 0.5)

    def destroy(self) -> None:
        self._states.destroy()

    def _take_newest_state(self) -> None:
        while True:
            received = self._states.take(0.0)
            if received is None:
                return
            msg, info = received
            try:
                position, velocity = reorder_joint_state(msg.name, msg.position, msg.velocity,
                                                         self.context.joint_names)
            except ValueError as exc:
                if str(exc) != self._last_state_error:
                    self.log.error("ignoring joint state: %s" % exc)
                    self._last_state_error = str(exc)
                continue
            stamp = msg.header.stamp.sec + 1e-9 * msg.header.stamp.nanosec
            self._sample = JointSample(position, velocity, time.monotonic(), stamp,
                                       1e-9 * info["source_timestamp"])

    def _loop(self) -> None:
        context, controller = self.context, self.context.controller
        start = last = time.monotonic()
        deadline, stop_deadline = start, None
        while True:
            now = time.monotonic()
            self.tick_period.add(now - last)
            last = now
            self._take_newest_state()
            inputs = context.inputs()
            if inputs.stopping and stop_deadline is None:
                stop_deadline = now + STOP_TIMEOUT_S
            wall = time.time()
            command = controller.tick(self._sample, inputs.target,
                                      inputs.enabled and not inputs.stopping, now,
                                      wall if self.check_stamps else None)
            self._send(command, wall)
            context.account(self._sample)
            if inputs.stopping and (self._at_rest(time.time()) or now > stop_deadline):
                return
            if context.after_tick is not None:
                context.after_tick(now)
            deadline = max(deadline + self.period, time.monotonic() - self.period)
            time.sleep(max(0.0, deadline - time.monotonic()))

    def _send(self, command: np.ndarray, wall: float) -> None:
        """Publish ``command`` [rad/s] as a trajectory stamped STAMP_BACKDATE before the system
        clock at publishing, within SEND_DEADLINE; nothing while the arm rests (at ``wall`` [s])
        and the command is zero (JTC holds the last point)."""
        if not np.any(command) and self._at_rest(wall):
            return
        if self._sample is None:
            return  # no measured position to start from: JTC holds the arm where it is
        for _ in range(SEND_ATTEMPTS):
            stamp = time.time() - STAMP_BACKDATE
            trajectory = self.stream.plan(stamp, command, self._sample.position)
            msg = trajectory_message(trajectory, self.context.joint_names, stamp)
            delay = time.time() - stamp - STAMP_BACKDATE
            if delay <= SEND_DEADLINE:
                break
            self.replanned += 1
        else:
            self.log.warning(
                "no trajectory planned within %.0f ms in %d attempts: nothing sent this tick"
                % (1e3 * SEND_DEADLINE, SEND_ATTEMPTS), throttle_duration_sec=1.0)
            return
        self._publisher.publish(msg)
        self.stream.sent(trajectory, stamp)
        self.send_delay.add(delay)
        self.sent += 1

    def _at_rest(self, wall: float) -> bool:
        """Whether the reference the sent trajectories make is at rest at ``wall`` [s]."""
        reference = self.stream.reference(wall)
        return reference is None or not (np.any(reference.velocity)
                                         or np.any(reference.acceleration))

    def _send_rest(self) -> None:
        """Fallback after a loop failure: one trajectory from the reference to rest."""
        if self._sample is not None:
            self._send(np.zeros(len(self.context.joint_names)), time.time())
