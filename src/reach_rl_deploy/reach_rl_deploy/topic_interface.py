"""The deploy node's ``ros2_control`` interface: 1 kHz commands for franka_ros2's controller.

``joint_states_topic`` (sensor_msgs/JointState, reordered by name; fingers ignored) is read by
the loop thread itself (:mod:`reach_rl_deploy.direct_subscription`), and ``command_topic``
(std_msgs/Float64MultiArray, 7 joint velocities [rad/s]) is published at ``control_rate``: on
each joint state while they come at that rate, else on the monotonic clock
(:mod:`reach_rl_deploy.tick_pacer`). franka_ros2's JointGroupVelocityController holds a command
for ever, so every message passes the jerk-limited safety filter and ``max_stop_time`` caps the
joint speed to stop within that time of the last good joint state. A loop that raises ramps the
last command to zero through the filter alone before it ends.
"""
import time
from typing import List, Optional

import numpy as np
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray

from reach_rl_deploy.ros_qos import reliable, wait_acknowledged
from reach_rl_core.safety_filter import filter_step
from reach_rl_deploy.deploy_controller import JointSample, reorder_joint_state
from reach_rl_deploy.direct_subscription import DirectSubscription
from reach_rl_deploy.tick_pacer import TickPacer

SENSOR_QOS = reliable(1)
# Depth 10: a slow reader gets every command rather than a jump over the ones it missed.
COMMAND_QOS = reliable(10)
PUBLISH_BLOCKED_S = 0.02  # a publish() longer than this is reported
STOP_TIMEOUT_S = 3.0  # longest ramp to zero on shutdown (from full speed at 2 rad/s^2: 1.3 s)


class TopicInterface:
    """The topic path of ``node`` (a :class:`reach_rl_deploy.deploy_node.DeployNode`)."""

    def __init__(self, node, p):
        """``p``: the node's DeployParameters."""
        self.node = node
        self.name = p.command_topic
        self.check_stamps = p.check_stamps
        self.period = node.controller.limits.dt
        self._sample = None  # type: Optional[JointSample]
        self._pacer = TickPacer(self.period, time.monotonic())
        self._last_sent = None  # type: Optional[float]
        self._last_state_error = ""
        self._command_pub = node.create_publisher(Float64MultiArray, p.command_topic, COMMAND_QOS)
        # Joint states are taken by the loop thread itself, no executor.
        self._states = DirectSubscription(node, "joint_states", JointState, p.joint_states_topic,
                                          SENSOR_QOS)

    def run(self) -> bool:
        """The loop until the node stops; False if it failed (after ramping to zero)."""
        try:
            self._loop()
            return True
        except Exception as exc:  # a dead loop would leave the controller holding the last command
            self.node.get_logger().fatal("control loop failed (%s: %s): ramping to zero velocity"
                                         % (type(exc).__name__, exc))
            self._ramp_to_zero()
            return False

    def fault(self) -> str:
        """Why motion cannot work now ('' when it can): nobody subscribes to the commands."""
        if self._command_pub.get_subscription_count() == 0:
            return ("no subscriber on %s: is franka_ros2's velocity controller loaded and active? "
                    "(ros2 control list_controllers)" % self._command_pub.topic_name)
        return ""

    def diagnostic_values(self) -> list:
        return []

    def timing_lines(self) -> List[str]:
        return []

    def finish(self) -> None:
        """After the loop: wait until subscribers acknowledged the final zeros."""
        wait_acknowledged((self._command_pub,), 0.5)

    def destroy(self) -> None:
        self._states.destroy()

    def _on_joint_state(self, msg: JointState, info: dict) -> None:
        """A joint state taken by the loop thread (``info``: DDS ``source_timestamp`` [ns])."""
        try:
            position, velocity = reorder_joint_state(msg.name, msg.position, msg.velocity,
                                                     self.node.joint_names)
        except ValueError as exc:
            if str(exc) != self._last_state_error:
                self.node.get_logger().error("ignoring joint state: %s" % exc)
                self._last_state_error = str(exc)
            return
        stamp = msg.header.stamp.sec + 1e-9 * msg.header.stamp.nanosec
        now = time.monotonic()
        self._sample = JointSample(position, velocity, now, stamp, 1e-9 * info["source_timestamp"])
        self._pacer.on_state(now)

    def _ticks(self):
        """Monotonic times of the control ticks: on each new joint state while they come at
        the control rate, else on the clock (:class:`reach_rl_deploy.tick_pacer.TickPacer`).

        Between ticks this thread waits for joint states itself, so a state starts its tick
        without a hand-over between threads (the executor thread serves everything else).
        """
        pacer, stats = self._pacer, self.node.stats
        while True:
            now, deadline = time.monotonic(), pacer.deadline()
            while now < deadline:
                received = self._states.take(deadline - now)
                if received is not None:
                    self._on_joint_state(*received)
                now, deadline = time.monotonic(), pacer.deadline()
            locked = pacer.locked and pacer.pending_state
            if now - deadline > 0.1 * self.period and not locked:  # a clock tick, late
                stats.late += 1
            stats.locked += locked
            yield now
            sent = time.monotonic()
            if self._last_sent is not None:
                stats.record("publish period", sent - self._last_sent)
            self._last_sent = sent
            pacer.ticked(now, sent)

    def _loop(self) -> None:
        node, controller = self.node, self.node.controller
        stop_deadline = None
        for now in self._ticks():
            inputs = node.loop_inputs()
            if inputs.stopping and stop_deadline is None:
                stop_deadline = now + STOP_TIMEOUT_S
            command = controller.tick(self._sample, inputs.target,
                                      inputs.enabled and not inputs.stopping, now,
                                      time.time() if self.check_stamps else None)
            self._publish(command)
            node.account(self._sample)
            if inputs.stopping and (controller.stopped() or now > stop_deadline):
                self._publish_zeros()
                return

    def _ramp_to_zero(self) -> None:
        """Fallback after a loop failure: the safety filter alone ramps the last command to zero."""
        limits, state = self.node.controller.limits, self.node.controller.filter
        sample = self._sample
        q = sample.position if sample is not None else np.full(len(state.command), np.nan)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for now in self._ticks():
            state, _ = filter_step(limits, state, np.zeros(len(q)), q)
            self._publish(state.command)
            if not np.any(state.command) or now > deadline:
                break
        self._publish_zeros()

    def _publish_zeros(self) -> None:
        for _ in range(3):
            self._publish(np.zeros(len(self.node.joint_names)))

    def _publish(self, command: np.ndarray) -> None:
        start = time.monotonic()
        self._command_pub.publish(Float64MultiArray(data=command.tolist()))
        blocked = time.monotonic() - start
        if blocked > PUBLISH_BLOCKED_S:
            # Seen with Fast DDS: a reliable subscriber that died without leaving (SIGKILL)
            # stops acknowledging, and publish() waits on it for 0.1 s up to seconds.
            self.node.get_logger().warning(
                "publishing a command took %.0f ms: a subscriber of %s stopped acknowledging "
                "(did its process die?)" % (1e3 * blocked, self.name),
                throttle_duration_sec=1.0)
