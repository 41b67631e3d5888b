"""ROS 2 node ``deploy_node``: a reach policy file driving a Franka arm's joint velocities.

Parameters: :class:`reach_rl_deploy.deploy_parameters.DeployParameters`. This node holds what
both interfaces share — the policy and :class:`~reach_rl_deploy.deploy_controller.DeployController`,
targets, ``~/enable``, ``/diagnostics``, the run's figures, shutdown — and one interface, which
owns its loop (on a thread of its own) and its recovery:

* ``ros2_control`` (default): one trajectory per policy step for franka_ros2's
  joint_trajectory_controller, which interpolates it at 1 kHz
  (:mod:`reach_rl_deploy.interfaces.ros2_control`; ``~/enable`` also activates
  ``activate_controller``);
* ``libfranka``: the policy at its own rate over franky-control's 1 kHz C++ loop, with
  ``~/recover`` after a reflex (:mod:`reach_rl_deploy.interfaces.libfranka`).

``target_topic`` (:mod:`reach_rl_deploy.target_input`): geometry_msgs/PointStamped for a point
policy, geometry_msgs/PoseStamped for a pose policy (``reach_rl/target_type``), metres, in
``<robot>_link0`` or with an empty frame id (RViz's "Publish Point" and "2D Goal Pose" tools
reach it by remapping: docs/deploy.md); a target outside what the policy was trained on, or
otherwise unusable (:mod:`reach_rl_deploy.targets`), and a publisher of the other message type
on the topic, are refused with the reason and stop the arm; ``~/enable`` (std_srvs/SetBool)
starts and stops motion, always through a smooth ramp; an arm farther from the ready pose than
the training's start spread first moves there; ``/diagnostics`` once a second (loop figures,
inference time, filter activity, watchdog state, reflex). SIGINT/SIGTERM ramp the arm to zero
velocity before the node exits 0, logging the figures of the whole run.
The node refuses to start, saying what to fix, on a missing or malformed policy file, a
contract other than 2 or 3, a robot / joint-name mismatch, or a policy trained for looser command
limits than the filter enforces.
"""
import gc
import signal
import sys
import threading
import time
from typing import Callable, List, Optional

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.exceptions import InvalidParameterValueException
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions
from std_srvs.srv import SetBool

from reach_rl_core.franka_model import READY_POSE, joint_limits, joint_names
from reach_rl_core.policy_file import PolicyFileError, check_command_limits
from reach_rl_core.filter_limits import (DEFAULT_BRAKE_MARGIN, LIBFRANKA, ROS2_CONTROL,
                                         FilterLimits)
from reach_rl_deploy import deploy_controller as dc
from reach_rl_deploy.deploy_controller import DeployController, JointSample
from reach_rl_deploy.deploy_parameters import DeployParameters, check_deploy_robot, declarations, described
from reach_rl_deploy.interfaces import DeployInterface, LoopContext, LoopInputs
from reach_rl_deploy.interfaces.libfranka import LibfrankaInterface
from reach_rl_deploy.interfaces.ros2_control import TrajectoryInterface
from reach_rl_deploy.policy_runtime import Policy
from reach_rl_deploy.target_input import TargetInput
from reach_rl_deploy.ros_plumbing.background_spin import BackgroundSpin
from reach_rl_deploy.ros_plumbing.parameters import declare_read_only
from reach_rl_deploy.ros_plumbing.qos import reliable
from reach_rl_deploy.ros_plumbing.realtime import pin_process
from reach_rl_deploy.ros_plumbing.service_answer import answer
from reach_rl_deploy.targets import MESSAGE_TYPES
from reach_rl_deploy.tick_stats import TickStats

TARGET_QOS = reliable(1)
HEALTHY = (dc.OK, dc.DISABLED, dc.NO_TARGET, dc.HOMING)  # watchdog states that are not faults
INTERFACE_TYPES = {ROS2_CONTROL: TrajectoryInterface, LIBFRANKA: LibfrankaInterface}


def make_controller(p: DeployParameters, joint_names_: List[str]) -> DeployController:
    """The policy file of ``p`` (resolved: no -1 left) behind the filter limits of ``p``'s
    interface; PolicyFileError or ValueError saying what to fix."""
    if not p.policy:
        raise PolicyFileError("parameter 'policy' is empty: pass policy:=/path/to/policy.onnx "
                              "(written by reach-rl-train)")
    policy = Policy(p.policy)
    policy.check_matches(p.robot, joint_names_)
    # The filter runs once per policy step; the robot side (JTC, or franky's Ruckig) meets the
    # acceleration and jerk bounds at 1 kHz after it.
    rate = 1.0 / policy.info.policy_dt
    # The filter brakes no nearer the limits than the file's own commands (pose files: 0.215
    # rad), and its curve allows for the robot side's hold: a stalled node keeps that clearance.
    margin = max(DEFAULT_BRAKE_MARGIN, policy.info.command_limits.brake_margin)
    limits = FilterLimits.for_interface(joint_limits(p.robot), p.interface, rate,
                                        p.velocity_fraction, p.accel_fraction, p.jerk_fraction,
                                        command_hold=p.command_hold, brake_margin=margin)
    check_command_limits(policy.info, limits)
    start_spread = policy.info.train_config.get("task", {}).get("start_noise", 0.2)
    return DeployController(policy, limits, p.state_timeout, home=READY_POSE,
                            home_tolerance=start_spread, home_speed=p.home_speed)


class DeployNode(Node):
    """Thin ROS wrapper around DeployController and one interface's loop thread."""

    def __init__(self, after_tick: Optional[Callable[[float], None]] = None):
        """``after_tick(now)``: run by the loop after every tick (test stalls; None here)."""
        super().__init__("reach_rl_deploy")
        p = self._declare_parameters()
        check_deploy_robot(p.robot)
        p = p.resolved()
        if p.cpu >= 0:
            pin_process(p.cpu)  # threads started later (control loop, executor) inherit it
        self.base_frame = p.robot + "_link0"
        self.joint_names = joint_names(p.robot, p.joint_prefix)
        self.controller = make_controller(p, self.joint_names)
        self.stats = TickStats(time.monotonic())
        self._enabled = p.autostart
        self._stopping = threading.Event()
        self._finished = threading.Event()
        self.failed = False  # the loop raised; it ramped to zero and ended
        self._last_status = dc.NO_STATE

        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.targets = TargetInput(self, p.target_topic, self.base_frame,
                                   self.controller.policy.info, TARGET_QOS)
        self.create_service(SetBool, "~/enable", self._on_enable)
        self.create_timer(1.0, self._publish_diagnostics)
        context = LoopContext(self, self.controller, self.joint_names, self.loop_inputs,
                              self.account, after_tick)
        self.interface = INTERFACE_TYPES[p.interface](context, p)  # type: DeployInterface
        if self._enabled:
            refusal = self.interface.activate()
            if refusal:
                self.get_logger().error("autostart: %s; motion stays disabled" % refusal)
                self._enabled = False
        self._thread = threading.Thread(target=self._run, name="deploy_loop", daemon=True)
        limits, info = self.controller.limits, self.controller.policy.info
        self.get_logger().info(
            "policy %s (%s, %.0f Hz) -> %s at %.0f Hz; %s targets (%s) on %s; motion %s"
            % (p.policy, info.robot, 1.0 / info.policy_dt, self.interface.name, 1.0 / limits.dt,
               info.target_type, MESSAGE_TYPES[info.target_type], self.targets.topic,
               "enabled" if p.autostart else "disabled (call ~/enable true)"))
        self.get_logger().info(
            "%s filter: acceleration %s rad/s^2, jerk %s rad/s^3"
            % (p.interface, np.round(limits.accel, 3).tolist(), np.round(limits.jerk, 1).tolist()))

    def _declare_parameters(self) -> DeployParameters:
        """Every parameter, declared up front (read-only), with its description."""
        return DeployParameters(**{
            f.name: declare_read_only(self, f.name, f.default, described(f.name),
                                      low=f.metadata["low"], high=f.metadata["high"])
            for f in declarations()})

    # -- callbacks: short, they only hand data to the loop -----------------------------------
    def _on_enable(self, request, response):
        refusal = (self.interface.fault() or self.interface.activate()) if request.data else ""
        if refusal:
            return answer(response, "refusing to enable: " + refusal, self.get_logger(),
                          success=False, severity="error")
        if request.data and not self._enabled:
            self.controller.rehome()
        self._enabled = bool(request.data)
        return answer(response, "motion enabled" if request.data
                      else "motion disabled: ramping to zero", self.get_logger())

    # -- what the interfaces' loops call ---------------------------------------------------------
    def loop_inputs(self) -> LoopInputs:
        """The target, the enable flag and whether the node is stopping, for this tick."""
        return LoopInputs(self.targets.latest, self._enabled, self._stopping.is_set())

    def account(self, sample: Optional[JointSample]) -> None:
        """One tick's figures (``sample``: the joint state the command came from, if it has an
        age to report), and the watchdog's changes in the log."""
        stats, controller = self.stats, self.controller
        stats.ticks += 1
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

    # -- life cycle ------------------------------------------------------------------------------
    def start(self) -> None:
        # A full garbage collection walks every object the libraries loaded (milliseconds); frozen
        # now, the loop's occasional collections see only what it allocates since.
        gc.collect()
        gc.freeze()
        self._thread.start()

    def request_stop(self) -> None:
        """Ramp to zero, let the loop end, then let ``wait_stopped`` return (SIGINT, SIGTERM)."""
        if not self._stopping.is_set():
            self.get_logger().info("shutting down: ramping to zero velocity")
        self._stopping.set()

    def wait_stopped(self, timeout: float) -> bool:
        return self._finished.wait(timeout)

    def _run(self) -> None:
        self.failed = not self.interface.run()
        self._finished.set()

    def _publish_diagnostics(self) -> None:
        status = self.controller.status
        values = (self.stats.window_values(time.monotonic()) + [("watchdog", status)]
                  + self.interface.diagnostic_values())
        level = DiagnosticStatus.OK if status in HEALTHY else DiagnosticStatus.ERROR
        fault = self.interface.fault()
        if status in HEALTHY and fault:
            status, level = fault, DiagnosticStatus.ERROR
        msg = DiagnosticArray()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.status = [DiagnosticStatus(level=level, name="reach_rl_deploy", message=status,
                                       hardware_id=self.interface.name,
                                       values=[KeyValue(key=k, value=v) for k, v in values])]
        self._diag_pub.publish(msg)

    def destroy(self) -> None:
        """Destroy the interface's helpers and this node."""
        self.interface.destroy()
        self.destroy_node()

    def timing_report(self) -> str:
        """Percentiles of the whole run's timing figures, one line each."""
        return "\n".join(self.stats.run_report() + self.interface.timing_lines())


def main(args: Optional[List[str]] = None,
         after_tick: Optional[Callable[[float], None]] = None) -> int:
    """Run the node until SIGINT/SIGTERM; the exit status (2: refused to start, 1: the loop
    failed). ``after_tick``: see :class:`DeployNode` (test entry points only)."""
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    try:
        node = DeployNode(after_tick)
    except (PolicyFileError, ValueError, InvalidParameterValueException) as exc:
        sys.stderr.write("deploy_node: refusing to start: %s\n" % exc)
        rclpy.try_shutdown()
        return 2
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: node.request_stop())
    spinner = BackgroundSpin(node)  # targets, ~/enable, diagnostics; joint states: the loop
    node.start()
    while not node.wait_stopped(0.1):  # short waits keep the main thread free for signals
        pass
    node.get_logger().info("stopped, zeros published" + (" after a failure" if node.failed else "")
                           + "; timing over the run:\n" + node.timing_report())
    node.interface.finish()  # e.g. the final zeros acknowledged
    spinner.close(node.destroy)
    rclpy.try_shutdown()
    return 1 if node.failed else 0


if __name__ == "__main__":
    sys.exit(main())
