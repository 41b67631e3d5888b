"""ROS 2 node ``deploy_node``: a reach policy file driving a Franka's joint velocity controller.

Wires topics to :class:`reach_rl_deploy.deploy_controller.DeployController`:

* ``/joint_states`` (sensor_msgs/JointState): reordered by name to the policy's joints;
  other joints (fingers) are ignored; read by the loop thread itself
  (:mod:`reach_rl_deploy.direct_subscription`), everything else by an executor thread;
* ``target_topic`` (geometry_msgs/PointStamped, metres, in ``<robot>_link0`` or with an empty
  frame id, so RViz's "Publish Point" works by remapping ``/clicked_point``); targets
  outside the box the policy was trained on are refused with a warning;
* ``command_topic`` (std_msgs/Float64MultiArray, 7 joint velocities [rad/s]) published at
  ``control_rate`` by the loop thread: on each joint state while they come at that rate (the
  least latency), else on the monotonic clock (:mod:`reach_rl_deploy.tick_pacer`);
* ``~/enable`` (std_srvs/SetBool) starts and stops motion, always through a smooth ramp;
* ``/diagnostics`` (diagnostic_msgs/DiagnosticArray) once a second: loop rate, inference
  time, joint_state -> command latency, filter activity, watchdog state.

``max_stop_time`` (default 0.2 s) caps the joint speed so that the arm is at zero within
that time of the last good joint state (:func:`reach_rl_deploy.safety_filter.stop_time_speed_cap`).
SIGINT/SIGTERM ramp the arm to zero velocity and publish zeros before the node exits, and
log the timing figures of the whole run.
The node refuses to start, saying what to fix, on a missing or malformed policy file, a
contract other than 1, or a robot / joint-name mismatch.
"""
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
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray
from std_srvs.srv import SetBool

from reach_rl_deploy import deploy_controller as dc
from reach_rl_deploy.cpu_pinning import pin_process
from reach_rl_deploy.deploy_controller import DeployController, JointSample, reorder_joint_state
from reach_rl_deploy.direct_subscription import DirectSubscription
from reach_rl_deploy.franka_model import joint_limits, joint_names
from reach_rl_deploy.policy_file import Policy, PolicyFileError
from reach_rl_deploy.qos import reliable, wait_acknowledged
from reach_rl_deploy.safety_filter import FilterLimits, filter_step
from reach_rl_deploy.tick_pacer import TickPacer
from reach_rl_deploy.timing_histogram import TimingHistogram

SENSOR_QOS = reliable(1)
# Depth 10: a slow reader gets every command rather than a jump over the ones it missed.
COMMAND_QOS = reliable(10)
TARGET_QOS = reliable(1)
HEALTHY = (dc.OK, dc.DISABLED, dc.NO_TARGET)  # watchdog states that are not faults
# Timing figures kept over the whole run (logged when the node stops).
RUN_TIMING = ("joint_state->command latency", "joint_state sent->command latency", "inference",
              "publish period")
PUBLISH_BLOCKED_S = 0.02  # a publish() longer than this is reported
STOP_TIMEOUT_S = 3.0  # longest ramp to zero on shutdown (from full speed at 2 rad/s^2: 1.3 s)


class DeployNode(Node):
    """Thin ROS wrapper around DeployController; the control loop runs on its own thread."""

    def __init__(self):
        super().__init__("reach_rl_deploy")
        policy_path = self._param("policy", "", "contract-v1 ONNX policy file")
        robot = self._param("robot", "fr3", "robot model: fr3 or panda")
        prefix = self._param("joint_prefix", "", "joint name prefix, default <robot>_joint")
        rate = self._param("control_rate", 1000.0, "command publish rate [Hz]")
        self.command_topic = self._param("command_topic", "/joint_velocity_controller/commands",
                                         "Float64MultiArray joint velocity commands [rad/s]")
        target_topic = self._param("target_topic", "/reach_target",
                                   "PointStamped TCP target [m] in the base frame")
        states_topic = self._param("joint_states_topic", "/joint_states", "JointState input")
        autostart = self._param("autostart", False, "enable motion at start (false on a real robot)")
        timeout = self._param("state_timeout", dc.DEFAULT_STATE_TIMEOUT,
                              "joint states older than this stop the arm [s]")
        self.check_stamps = self._param(
            "check_stamps", True, "also judge a joint state's age by its header stamp against this "
            "machine's clock (run on the controller's machine, or with synchronised clocks)")
        fractions = [self._param(name + "_fraction", default, "fraction of the %s limit" % name)
                     for name, default in (("velocity", 0.9), ("acceleration", 0.2), ("jerk", 0.1))]
        cpu = self._param("cpu", -1, "CPU to run the whole node on, e.g. an isolated core; -1: any")
        if cpu >= 0:
            pin_process(cpu)  # threads started later (control loop, executor) inherit it
        max_stop_time = self._param(
            "max_stop_time", 0.2, "joints move no faster than lets them stop within this many "
            "seconds after the last good joint state [s]; 0: no such cap")
        self.base_frame = robot + "_link0"
        self.joint_names = joint_names(robot, prefix)
        if not policy_path:
            raise PolicyFileError("parameter 'policy' is empty: pass policy:=/path/to/policy.onnx "
                                  "(written by reach-rl-train)")
        policy = Policy(policy_path)
        policy.check_matches(robot, self.joint_names)
        limits = FilterLimits.from_joint_limits(
            joint_limits(robot), rate, *fractions, max_stop_time=max_stop_time,
            detect_time=dc.detection_time(timeout, rate))
        self.controller = DeployController(policy, limits, timeout)
        self.period = 1.0 / rate

        self._sample = None  # type: Optional[JointSample]
        self._target = None  # type: Optional[np.ndarray]
        self._enabled = autostart
        self._stopping = threading.Event()
        self._finished = threading.Event()
        self.failed = False  # the control loop raised; it ramped to zero and ended
        self._pacer = TickPacer(self.period, time.monotonic())
        self._stats = self._fresh_stats(time.monotonic())
        self._run_timing = {name: TimingHistogram() for name in RUN_TIMING}  # whole run
        self._last_sent = None  # type: Optional[float]
        self._last_state_error = ""
        self._last_status = dc.NO_STATE

        self._command_pub = self.create_publisher(Float64MultiArray, self.command_topic, COMMAND_QOS)
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        # Joint states are taken by the loop thread itself, no executor.
        self._states = DirectSubscription(self, "joint_states", JointState, states_topic, SENSOR_QOS)
        self.create_subscription(PointStamped, target_topic, self._on_target, TARGET_QOS)
        self.create_service(SetBool, "~/enable", self._on_enable)
        self.create_timer(1.0, self._publish_diagnostics)
        self._thread = threading.Thread(target=self._run, name="deploy_loop", daemon=True)
        self.get_logger().info(
            "policy %s (%s, %.0f Hz) -> %s at %.0f Hz; targets on %s; motion %s"
            % (policy_path, policy.info.robot, 1.0 / policy.info.policy_dt, self.command_topic, rate,
               target_topic, "enabled" if autostart else "disabled (call ~/enable true)"))
        if max_stop_time:
            self.get_logger().info(
                "joint speed capped at %s rad/s: a stop ends within %.3f s of the last joint state "
                "(max_stop_time; 0 lifts the cap)" % (np.round(limits.speed_cap, 3).tolist(), max_stop_time))

    def _param(self, name, default, description):
        return self.declare_parameter(name, default, ParameterDescriptor(
            description=description, read_only=True)).value

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
        frame = msg.header.frame_id.lstrip("/")
        point = np.array([msg.point.x, msg.point.y, msg.point.z])
        if frame not in ("", self.base_frame):
            self.get_logger().warning("target refused: frame %r, expected %r or empty"
                                      % (frame, self.base_frame))
        elif not np.all(np.isfinite(point)):
            self.get_logger().warning("target refused: non-finite coordinates %s" % point)
        elif not self.controller.policy.info.target_in_box(point):
            info = self.controller.policy.info
            self.get_logger().warning(
                "target refused: (%.3f, %.3f, %.3f) m is outside the workspace the policy was "
                "trained for, x %.2f..%.2f, y %.2f..%.2f, z %.2f..%.2f m" % (
                    tuple(point) + sum(zip(info.target_min, info.target_max), ())))
        else:
            if self._target is None or np.any(point != self._target):
                self.get_logger().info("target (%.3f, %.3f, %.3f) m" % tuple(point))
            self._target = point

    def _on_enable(self, request, response):
        self._enabled = bool(request.data)
        response.success = True
        response.message = "motion enabled" if request.data else "motion disabled: ramping to zero"
        self.get_logger().info(response.message)
        return response

    # -- control loop -------------------------------------------------------------------------
    def start(self) -> None:
        # A full garbage collection walks every object the libraries loaded (~5 ms here); frozen
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
                self._stats["late"] += 1
            self._stats["locked"] += locked
            yield now
            sent = time.monotonic()
            if self._last_sent is not None:
                self._record("publish period", sent - self._last_sent)
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
        self._stats["ticks"] += 1
        controller = self.controller
        sample = self._sample
        if sample is not None and controller.status == dc.OK:
            # Age of the joint state at the moment the command computed from it went out, since
            # its stamp (the robot's cycle) and since it was sent (this node's share); stamps,
            # send times and time.time() share the system clock on one machine.
            now = time.time()
            if sample.stamp > 0.0:
                self._record("joint_state->command latency", now - sample.stamp)
            if sample.sent > 0.0:
                self._record("joint_state sent->command latency", now - sample.sent)
        if controller.last_inference_s:
            self._record("inference", controller.last_inference_s)
            controller.last_inference_s = 0.0
        activity = self._stats["activity"]
        for name in controller.last_activity.active():
            activity[name] = activity.get(name, 0) + 1
        if controller.status != self._last_status:
            # rclpy refuses one call site logging at two severities: one call per severity.
            if controller.status in HEALTHY:
                self.get_logger().info("watchdog: %s" % controller.status)
            else:
                self.get_logger().error("watchdog: %s" % controller.status)
        self._last_status = controller.status

    def _record(self, name: str, seconds: float) -> None:
        """One sample of timing figure ``name`` (of RUN_TIMING), for this second and the whole run."""
        self._stats[name].append(seconds)
        self._run_timing[name].add(seconds)

    def _publish_diagnostics(self) -> None:
        stats, now = self._stats, time.monotonic()
        elapsed = max(now - stats["since"], 1e-9)
        status = self.controller.status
        values = [("loop rate [Hz]", "%.1f" % (stats["ticks"] / elapsed)),
                  ("ticks on joint states [%]",
                   "%.0f" % (100.0 * stats["locked"] / max(stats["ticks"], 1))),
                  ("late clock ticks", str(stats["late"]))]
        for name in RUN_TIMING:
            us = 1e6 * np.asarray(stats[name])
            for q in (50, 99):
                values.append(("%s p%d [us]" % (name, q),
                               "%.0f" % np.percentile(us, q) if len(us) else "-"))
        values.append(("watchdog", status))
        values += [("filter %s [ticks]" % k, str(v)) for k, v in sorted(stats["activity"].items())]
        level = DiagnosticStatus.OK if status in HEALTHY else DiagnosticStatus.ERROR
        msg = DiagnosticArray()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.status = [DiagnosticStatus(level=level, name="reach_rl_deploy", message=status,
                                       hardware_id=self.command_topic,
                                       values=[KeyValue(key=k, value=v) for k, v in values])]
        self._diag_pub.publish(msg)
        self._stats = self._fresh_stats(now)

    def destroy(self) -> None:
        """Destroy this node and the one that holds the joint-state subscription."""
        self._states.destroy()
        self.destroy_node()

    def timing_report(self) -> str:
        """Percentiles of the whole run's timing figures, one line each."""
        return "\n".join("  %s: %s" % (name, self._run_timing[name].summary())
                         for name in RUN_TIMING)

    @staticmethod
    def _fresh_stats(now: float) -> dict:
        """Counters of one diagnostics window starting at monotonic ``now`` [s]."""
        stats = {"ticks": 0, "late": 0, "locked": 0, "activity": {}, "since": now}  # type: dict
        stats.update((name, []) for name in RUN_TIMING)
        return stats


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
    wait_acknowledged((node._command_pub,), 0.5)  # the final zeros
    executor.shutdown()
    spinner.join(timeout=2.0)  # destroying the node under a spinning executor aborts the process
    node.destroy()
    rclpy.try_shutdown()
    return 1 if node.failed else 0


if __name__ == "__main__":
    sys.exit(main())
