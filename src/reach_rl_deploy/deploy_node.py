"""ROS 2 node ``deploy_node``: a reach policy file driving a Franka arm's joint velocities.

Parameters: :class:`reach_rl_deploy.deploy_parameters.DeployParameters`. Two interfaces:

* ``ros2_control`` (default): commands for franka_ros2's joint velocity controller.
  ``joint_states_topic`` (sensor_msgs/JointState, reordered by name; fingers ignored) is read
  by the loop thread itself (:mod:`reach_rl_deploy.direct_subscription`), and ``command_topic``
  (std_msgs/Float64MultiArray, 7 joint velocities [rad/s]) is published at ``control_rate``:
  on each joint state while they come at that rate, else on the monotonic clock
  (:mod:`reach_rl_deploy.tick_pacer`). The controller holds a command for ever, so
  ``max_stop_time`` (default 0.2 s) caps the joint speed to stop within that time of the last
  good joint state (:func:`reach_rl_core.safety_filter.stop_time_speed_cap`).
* ``libfranka``: the node drives the arm at ``robot_ip`` through franky-control, whose C++
  thread runs Franka's 1 kHz loop without the GIL, while the policy and the filter's goal
  clamp run in Python at the policy's rate (:mod:`reach_rl_deploy.franky_loop`); it
  publishes the measured joint states on ``joint_states_topic`` at that rate, sets the
  collision thresholds and joint impedance at connection, reports reflexes and offers
  ``~/recover`` (std_srvs/Trigger, the robot's automatic error recovery).

Both: ``target_topic`` (geometry_msgs/PointStamped, metres, in ``<robot>_link0`` or with an
empty frame id, so RViz's "Publish Point" works by remapping ``/clicked_point``); a target
outside the box the policy was trained on is refused with a warning and stops the arm;
``~/enable`` (std_srvs/SetBool) starts and stops motion, always through a smooth ramp; an arm
farther from the ready pose than the training's start spread first moves there;
``/diagnostics`` once a second (loop rate, inference time, latency or cycle time and packet
figures, filter activity, watchdog state, reflex). SIGINT/SIGTERM ramp the arm to zero
velocity before the node exits 0, logging the timing figures of the whole run.
The node refuses to start, saying what to fix, on a missing or malformed policy file, a
contract other than 2, a robot / joint-name mismatch, or a policy trained for looser command
limits than the filter enforces.
"""
import dataclasses
import gc
import signal
import sys
import threading
import time
from typing import List, Optional

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import PointStamped
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray
from std_srvs.srv import SetBool, Trigger

from reach_rl_deploy import deploy_controller as dc
from reach_rl_deploy.cpu_pinning import pin_process
from reach_rl_deploy.deploy_controller import DeployController, JointSample, reorder_joint_state
from reach_rl_deploy.deploy_parameters import DeployParameters, check_deploy_robot
from reach_rl_deploy.direct_subscription import DirectSubscription
from reach_rl_core.franka_model import READY_POSE, joint_limits, joint_names
from reach_rl_deploy.franky_loop import FrankyLoop, LoopInputs, RobotSettings
from reach_rl_core.policy_file import Policy, PolicyFileError, check_command_limits
from reach_rl_core.ros_params import declare_read_only
from reach_rl_core.ros_qos import reliable, wait_acknowledged
from reach_rl_core.safety_filter import LIBFRANKA, ROS2_CONTROL, FilterLimits, filter_step
from reach_rl_deploy.tick_pacer import TickPacer
from reach_rl_deploy.loop_stats import LoopStats

SENSOR_QOS = reliable(1)
# Depth 10: a slow reader gets every command rather than a jump over the ones it missed.
COMMAND_QOS = reliable(10)
TARGET_QOS = reliable(1)
HEALTHY = (dc.OK, dc.DISABLED, dc.NO_TARGET, dc.HOMING)  # watchdog states that are not faults
PUBLISH_BLOCKED_S = 0.02  # a publish() longer than this is reported
STOP_TIMEOUT_S = 3.0  # longest ramp to zero on shutdown (from full speed at 2 rad/s^2: 1.3 s)


def target_refusal(frame_id: str, point: np.ndarray, base_frame: str, info) -> str:
    """Why a target [m] in frame ``frame_id`` cannot be used, or '' when it can (``info``: the
    policy's PolicyInfo, whose target box the point must lie in)."""
    frame = frame_id.lstrip("/")
    if frame not in ("", base_frame):
        return "frame %r, expected %r or empty" % (frame, base_frame)
    if not np.all(np.isfinite(point)):
        return "non-finite coordinates %s" % point
    if not info.target_in_box(point):
        return ("(%.3f, %.3f, %.3f) m is outside the workspace the policy was trained for, "
                "x %.2f..%.2f, y %.2f..%.2f, z %.2f..%.2f m"
                % (tuple(point) + sum(zip(info.target_min, info.target_max), ())))
    return ""


class DeployNode(Node):
    """Thin ROS wrapper around DeployController; the control loop runs on its own thread."""

    def __init__(self):
        super().__init__("reach_rl_deploy")
        p = self._declare_parameters()
        check_deploy_robot(p.robot)
        if p.cpu >= 0:
            pin_process(p.cpu)  # threads started later (control loop, executor) inherit it
        self.interface = p.interface
        self.command_topic = p.command_topic if p.interface == ROS2_CONTROL else "libfranka:" + p.robot_ip
        self.check_stamps = p.check_stamps
        self.base_frame = p.robot + "_link0"
        self.joint_names = joint_names(p.robot, p.joint_prefix)
        if not p.policy:
            raise PolicyFileError("parameter 'policy' is empty: pass policy:=/path/to/policy.onnx "
                                  "(written by reach-rl-train)")
        if p.interface == LIBFRANKA and not p.robot_ip:
            raise ValueError("interface libfranka needs robot_ip:=<address of the arm's control unit>"
                             " (127.0.0.1 for franka-sim)")
        policy = Policy(p.policy)
        policy.check_matches(p.robot, self.joint_names)
        # libfranka: the filter runs once per policy step, franky's Ruckig at 1 kHz after it.
        rate = p.control_rate if p.interface == ROS2_CONTROL else 1.0 / policy.info.policy_dt
        limits = FilterLimits.for_interface(  # -1: the interface's setting
            joint_limits(p.robot), p.interface, rate, p.velocity_fraction,
            p.acceleration_fraction, p.jerk_fraction, p.max_stop_time,
            detect_time=dc.detection_time(p.state_timeout, rate),
            command_hold=p.command_hold if p.interface == LIBFRANKA else 0.0)
        check_command_limits(policy.info, limits)
        start_spread = policy.info.train_config.get("task", {}).get("start_noise", 0.2)
        self.controller = DeployController(policy, limits, p.state_timeout, home=READY_POSE,
                                           home_tolerance=start_spread, home_speed=p.home_speed)
        self.period = 1.0 / rate

        self._sample = None  # type: Optional[JointSample]
        self._target = None  # type: Optional[np.ndarray]
        self._enabled = p.autostart
        self._stopping = threading.Event()
        self._finished = threading.Event()
        self.failed = False  # the control loop raised; it ramped to zero and ended
        self._pacer = TickPacer(self.period, time.monotonic())
        self._stats = LoopStats(time.monotonic())
        self._last_sent = None  # type: Optional[float]
        self._last_state_error = ""
        self._last_status = dc.NO_STATE

        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_subscription(PointStamped, p.target_topic, self._on_target, TARGET_QOS)
        self.create_service(SetBool, "~/enable", self._on_enable)
        self.create_timer(1.0, self._publish_diagnostics)
        if p.interface == ROS2_CONTROL:
            self._command_pub = self.create_publisher(Float64MultiArray, p.command_topic, COMMAND_QOS)
            # Joint states are taken by the loop thread itself, no executor.
            self._states = DirectSubscription(self, "joint_states", JointState, p.joint_states_topic,
                                              SENSOR_QOS)
            self._libfranka = None  # type: Optional[FrankyLoop]
            run = self._run
        else:
            self._states = None
            self._state_pub = self.create_publisher(JointState, p.joint_states_topic, SENSOR_QOS)
            self.create_service(Trigger, "~/recover", self._on_recover)
            settings = RobotSettings(p.collision_torque_thresholds, p.collision_force_thresholds,
                                     p.joint_impedance)
            self._libfranka = FrankyLoop(
                p.robot_ip, self.controller, self._loop_inputs, self._on_robot_state,
                self._on_reflex, self.get_logger().info, settings, p.command_hold,
                realtime=p.realtime, rt_priority=p.rt_priority)
            run = self._run_libfranka
        self._thread = threading.Thread(target=run, name="deploy_loop", daemon=True)
        self.get_logger().info(
            "policy %s (%s, %.0f Hz) -> %s at %.0f Hz; targets on %s; motion %s"
            % (p.policy, policy.info.robot, 1.0 / policy.info.policy_dt, self.command_topic,
               rate, p.target_topic,
               "enabled" if p.autostart else "disabled (call ~/enable true)"))
        self.get_logger().info(
            "%s filter: acceleration %s rad/s^2, jerk %s rad/s^3, speed cap %s rad/s"
            % (p.interface, np.round(limits.accel, 3).tolist(), np.round(limits.jerk, 1).tolist(),
               np.round(limits.speed_cap, 3).tolist()))

    def _declare_parameters(self) -> DeployParameters:
        """Every parameter, declared up front (read-only), with its description."""
        return DeployParameters(**{
            f.name: declare_read_only(self, f.name, f.default, f.metadata["doc"])
            for f in dataclasses.fields(DeployParameters)})

    # -- callbacks: short, they only hand data to the loop -----------------------------------
    def _on_joint_state(self, msg: JointState, info: dict) -> None:
        """A joint state taken by the loop thread (``info``: DDS ``source_timestamp`` [ns])."""
        try:
            position, velocity = reorder_joint_state(msg.name, msg.position, msg.velocity,
                                                     self.joint_names)
        except ValueError as exc:
            if str(exc) != self._last_state_error:
                self.get_logger().error("ignoring joint state: %s" % exc)
                self._last_state_error = str(exc)
            return
        stamp = msg.header.stamp.sec + 1e-9 * msg.header.stamp.nanosec
        now = time.monotonic()
        self._sample = JointSample(position, velocity, now, stamp, 1e-9 * info["source_timestamp"])
        self._pacer.on_state(now)

    def _on_target(self, msg: PointStamped) -> None:
        point = np.array([msg.point.x, msg.point.y, msg.point.z])
        refused = target_refusal(msg.header.frame_id, point, self.base_frame,
                                 self.controller.policy.info)
        if refused:
            self.get_logger().warning("target refused: %s; stopping the arm" % refused)
            self._target = None
            return
        if self._target is None or np.any(point != self._target):
            self.get_logger().info("target (%.3f, %.3f, %.3f) m" % tuple(point))
        self._target = point

    def _on_enable(self, request, response):
        if request.data and not self._enabled:
            self.controller.rehome()
        self._enabled = bool(request.data)
        response.success = True
        response.message = "motion enabled" if request.data else "motion disabled: ramping to zero"
        self.get_logger().info(response.message)
        return response

    # -- control loop -------------------------------------------------------------------------
    def start(self) -> None:
        # A full garbage collection walks every object the libraries loaded (milliseconds); frozen
        # now, the loop's occasional collections see only what it allocates since.
        gc.collect()
        gc.freeze()
        self._thread.start()

    def request_stop(self) -> None:
        """Ramp to zero, publish zeros, then let ``wait_stopped`` return (SIGINT, SIGTERM)."""
        if not self._stopping.is_set():
            self.get_logger().info("shutting down: ramping to zero velocity")
        self._stopping.set()

    def wait_stopped(self, timeout: float) -> bool:
        return self._finished.wait(timeout)

    def _run(self) -> None:
        try:
            self._loop()
        except Exception as exc:  # a dead loop would leave the controller holding the last command
            self.failed = True
            self.get_logger().fatal("control loop failed (%s: %s): ramping to zero velocity"
                                    % (type(exc).__name__, exc))
            self._ramp_to_zero()
        self._finished.set()

    def _run_libfranka(self) -> None:
        """The libfranka interface: policy ticks on this thread until SIGINT/SIGTERM."""
        try:
            robot = self._libfranka.connect()
            self._libfranka.run(robot)
        except Exception as exc:  # franky brings the arm to rest once commands stop
            self.failed = True
            self.get_logger().fatal("libfranka loop failed (%s: %s); the arm comes to rest "
                                    "once its last command's hold ends"
                                    % (type(exc).__name__, exc))
        self._finished.set()

    def _loop_inputs(self) -> LoopInputs:
        return LoopInputs(self._target, self._enabled, self._stopping.is_set())

    def _on_robot_state(self, state) -> None:
        """Each policy tick's franky RobotState: published on ``joint_states_topic`` (measured
        q [rad], dq [rad/s], tau_J [Nm]), and the tick's figures recorded."""
        self._account()
        msg = JointState(name=list(self.joint_names), position=list(state.q),
                         velocity=list(state.dq), effort=list(state.tau_J))
        msg.header.stamp = self.get_clock().now().to_msg()
        self._state_pub.publish(msg)

    def _on_reflex(self, text: str) -> None:
        self.get_logger().error("robot reflex: %s; the arm stays stopped until "
                                "~/recover (std_srvs/Trigger)" % text)

    def _on_recover(self, request, response):
        if not self._libfranka.reflex.text:
            response.success, response.message = True, "no reflex to recover from"
        else:
            self._libfranka.reflex.request_recover()
            self.controller.rehome()
            response.success, response.message = True, "error recovery requested"
        self.get_logger().info(response.message)
        return response

    def _ticks(self):
        """Monotonic times of the control ticks: on each new joint state while they come at
        the control rate, else on the clock (:class:`reach_rl_deploy.tick_pacer.TickPacer`).

        Between ticks this thread waits for joint states itself, so a state starts its tick
        without a hand-over between threads (the executor thread serves everything else).
        """
        pacer = self._pacer
        while True:
            now, deadline = time.monotonic(), pacer.deadline()
            while now < deadline:
                received = self._states.take(deadline - now)
                if received is not None:
                    self._on_joint_state(*received)
                now, deadline = time.monotonic(), pacer.deadline()
            locked = pacer.locked and pacer.pending_state
            if now - deadline > 0.1 * self.period and not locked:  # a clock tick, late
                self._stats.late += 1
            self._stats.locked += locked
            yield now
            sent = time.monotonic()
            if self._last_sent is not None:
                self._stats.record("publish period", sent - self._last_sent)
            self._last_sent = sent
            pacer.ticked(now, sent)

    def _loop(self) -> None:
        stop_deadline = None
        for now in self._ticks():
            stopping = self._stopping.is_set()
            if stopping and stop_deadline is None:
                stop_deadline = now + STOP_TIMEOUT_S
            command = self.controller.tick(self._sample, self._target,
                                           self._enabled and not stopping, now,
                                           time.time() if self.check_stamps else None)
            self._publish(command)
            self._account()
            if stopping and (self.controller.stopped() or now > stop_deadline):
                self._publish_zeros()
                return

    def _ramp_to_zero(self) -> None:
        """Fallback after a loop failure: the safety filter alone ramps the last command to zero."""
        limits, state = self.controller.limits, self.controller.filter
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
            self._publish(np.zeros(len(self.joint_names)))

    def _publish(self, command: np.ndarray) -> None:
        start = time.monotonic()
        self._command_pub.publish(Float64MultiArray(data=command.tolist()))
        blocked = time.monotonic() - start
        if blocked > PUBLISH_BLOCKED_S:
            # Seen with Fast DDS: a reliable subscriber that died without leaving (SIGKILL)
            # stops acknowledging, and publish() waits on it for 0.1 s up to seconds.
            self.get_logger().warning(
                "publishing a command took %.0f ms: a subscriber of %s stopped acknowledging "
                "(did its process die?)" % (1e3 * blocked, self.command_topic),
                throttle_duration_sec=1.0)

    def _account(self) -> None:
        stats = self._stats
        stats.ticks += 1
        controller = self.controller
        sample = self._sample
        if sample is not None and controller.status == dc.OK:
            # Age of the joint state at the moment the command computed from it went out, since
            # its stamp (the robot's cycle) and since it was sent (this node's share); stamps,
            # send times and time.time() share the system clock on one machine.
            now = time.time()
            if sample.stamp > 0.0:
                stats.record("joint_state->command latency", now - sample.stamp)
            if sample.sent > 0.0:
                stats.record("joint_state sent->command latency", now - sample.sent)
        if controller.last_inference_s:
            stats.record("inference", controller.last_inference_s)
            controller.last_inference_s = 0.0
        stats.count_activity(controller.last_activity.active())
        if controller.status != self._last_status:
            # rclpy refuses one call site logging at two severities: one call per severity.
            if controller.status in HEALTHY:
                self.get_logger().info("watchdog: %s" % controller.status)
            else:
                self.get_logger().error("watchdog: %s" % controller.status)
        self._last_status = controller.status

    def _publish_diagnostics(self) -> None:
        status = self.controller.status
        values = self._stats.window_values(time.monotonic()) + [("watchdog", status)]
        if self._libfranka is not None:
            values += self._libfranka.stats.window_values()
        level = DiagnosticStatus.OK if status in HEALTHY else DiagnosticStatus.ERROR
        if status in HEALTHY and self._libfranka is not None and self._libfranka.reflex.text:
            status, level = "reflex: " + self._libfranka.reflex.text, DiagnosticStatus.ERROR
        msg = DiagnosticArray()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.status = [DiagnosticStatus(level=level, name="reach_rl_deploy", message=status,
                                       hardware_id=self.command_topic,
                                       values=[KeyValue(key=k, value=v) for k, v in values])]
        self._diag_pub.publish(msg)

    def destroy(self) -> None:
        """Destroy this node and the one that holds the joint-state subscription."""
        if self._states is not None:
            self._states.destroy()
        self.destroy_node()

    def timing_report(self) -> str:
        """Percentiles of the whole run's timing figures, one line each."""
        lines = self._stats.run_report()
        if self._libfranka is not None:
            lines.append("  libfranka: " + self._libfranka.stats.summary())
        return "\n".join(lines)


def main(args: Optional[List[str]] = None) -> int:
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    try:
        node = DeployNode()
    except (PolicyFileError, ValueError) as exc:
        sys.stderr.write("deploy_node: refusing to start: %s\n" % exc)
        rclpy.try_shutdown()
        return 2
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: node.request_stop())
    executor = SingleThreadedExecutor()  # targets, ~/enable, diagnostics; joint states: the loop
    executor.add_node(node)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    node.start()
    while not node.wait_stopped(0.1):  # short waits keep the main thread free for signals
        pass
    node.get_logger().info("stopped, zeros published" + (" after a failure" if node.failed else "")
                           + "; timing over the run:\n" + node.timing_report())
    if node.interface == ROS2_CONTROL:
        wait_acknowledged((node._command_pub,), 0.5)  # the final zeros
    executor.shutdown()
    spinner.join(timeout=2.0)  # destroying the node under a spinning executor aborts the process
    node.destroy()
    rclpy.try_shutdown()
    return 1 if node.failed else 0


if __name__ == "__main__":
    sys.exit(main())
