"""ROS 2 node ``franka_standin_node``: exactly what franka_ros2 offers the deploy node's topic path,
on a robot reached through libfranka (franka-sim, or a real FR3), and nothing more.

The topic path is deploy_node -> ``/joint_velocity_controller/commands`` -> franka_ros2
(controller_manager at 1 kHz, ``velocity_controllers/JointGroupVelocityController``,
franka_hardware) -> libfranka -> robot. franka_ros2 is not built here; this node stands in for
that data path, checked against franka_ros2's jazzy sources and ros2_controllers:

* **Joint states**: franka_ros2's ``joint_state_broadcaster`` publishes the hardware's state
  interfaces every controller cycle on ``/franka/joint_states``; here every cycle's
  ``RobotState`` gives measured ``q`` [rad], ``dq`` [rad/s] and ``tau_J`` [Nm], stamped with
  the cycle's time.
* **Commands**: ``forward_command_controller::ForwardCommandController::update``
  (ros2_controllers, ``forward_controllers_base.cpp``) writes the latest
  ``std_msgs/Float64MultiArray`` it received to the command interfaces every cycle, holds it
  while no new one arrives (no timeout: ros2_controllers issue #95), and leaves the
  interfaces unchanged when the message's size differs from the number of joints (it logs
  "command size (%zu) does not match number of interfaces (%zu)" and returns ERROR).
* **No rate limiter, no low-pass filter**: franka_hardware's ``Robot::writeOnceJointVelocities``
  (``franka_hardware/src/robot.cpp``) applies ``franka::limitRate`` only when
  ``velocity_command_rate_limit_active_`` is set, and it defaults to false
  (``franka_hardware/include/franka_hardware/robot.hpp``).
* **Activation and deactivation**: ``JointGroupVelocityController::on_deactivate`` sets every
  command interface to 0.0 ("stop all joints"), and on activation no command has been received
  yet, so the hardware starts from zero; here motion starts with zero and ends (SIGINT or
  ``~/active`` false) with zero commands, however fast the arm was moving: that step is the
  robot's to judge, as it would be with franka_ros2.
* **Reflexes**: libfranka's ``ControlException`` is logged and published on ``/diagnostics``;
  ``~/recover`` (std_srvs/Trigger) runs ``automatic_error_recovery`` (franka_ros2's
  ``error_recovery`` action).

Besides, for tests only: ``~/hold_joint_states`` (std_srvs/SetBool) stops publishing joint
states while the robot keeps executing the held command, as when a broadcaster or the network
stalls.
"""
import signal
import sys
import threading
import time
from typing import List, Optional

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray
from std_srvs.srv import SetBool, Trigger

from reach_rl_core.franka_model import NUM_JOINTS, joint_names
from reach_rl_deploy.cpu_pinning import realtime_process
from reach_rl_sim.libfranka_loop import LibfrankaLoop
from reach_rl_deploy.ros_qos import reliable
from reach_rl_deploy.service_answer import answer
from reach_rl_deploy.ros_params import declare_read_only

COMMAND_TOPIC = "/joint_velocity_controller/commands"
JOINT_STATES_TOPIC = "/franka/joint_states"


class HeldCommand:
    """forward_command_controller's command buffer: the latest message of the right size, held."""

    def __init__(self, size: int = NUM_JOINTS):
        self.size = size
        self._command = np.zeros(size)
        self._lock = threading.Lock()

    def receive(self, data) -> bool:
        """Take a message's data; False (and nothing changes) when its size is wrong."""
        if len(data) != self.size:
            return False
        with self._lock:
            self._command = np.array(data, dtype=float)
        return True

    def reset(self) -> None:
        """Zeros: the controller deactivated (or not yet commanded)."""
        with self._lock:
            self._command = np.zeros(self.size)

    def latest(self) -> np.ndarray:
        with self._lock:
            return self._command


class StandinMotion:
    """LibfrankaLoop source: while active, every cycle sends the held command; when stopping,
    zeros until the robot has stopped, then the motion ends."""

    def __init__(self, held: HeldCommand, active: threading.Event, stopping: threading.Event):
        self.held, self.active, self._stopping = held, active, stopping

    def stopping(self) -> bool:
        return self._stopping.is_set()

    def wants_motion(self, state) -> bool:
        return self.active.is_set() and not self._stopping.is_set()

    def start(self) -> None:
        self.held.reset()

    def command(self, state, now: float):
        if self._stopping.is_set() or not self.active.is_set():
            self.held.reset()
            return np.zeros(NUM_JOINTS), not np.any(np.array(state.dq_d))
        return self.held.latest(), False

    def after_write(self, state, now: float) -> None:
        pass

    def describe(self) -> str:
        return "deactivated" if not self.active.is_set() else "stopping"


class FrankaStandinNode(Node):
    """Thin ROS wrapper: the libfranka loop on its own thread, topics and services here."""

    def __init__(self):
        super().__init__("franka_standin")
        robot_ip = self._param("robot_ip", "127.0.0.1", "the arm's control unit (franka-sim: 127.0.0.1)")
        arm_id = self._param("arm_id", "fr3", "fr3 or panda: joint names <arm_id>_joint1..7")
        self.rt_priority = self._param("rt_priority", 85, "SCHED_FIFO priority of every thread, "
                                       "as franka_ros2's controller manager runs (0: ordinary)")
        self.names = list(joint_names(arm_id))
        self.held = HeldCommand()
        self.active = threading.Event()
        self.active.set()  # the controller is spawned active
        self.stopping = threading.Event()
        self.hold_states = False
        self.ignored = 0  # messages of the wrong size
        self._state_pub = self.create_publisher(JointState, JOINT_STATES_TOPIC, reliable(1))
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._commands = self.create_subscription(Float64MultiArray, COMMAND_TOPIC,
                                                  self._on_command, reliable(10))
        self.create_service(SetBool, "~/active", self._on_active)
        self.create_service(Trigger, "~/recover", self._on_recover)
        self.create_service(SetBool, "~/hold_joint_states", self._on_hold)
        self.create_timer(1.0, self._publish_diagnostics)
        self.loop = LibfrankaLoop(robot_ip, StandinMotion(self.held, self.active, self.stopping),
                                  self._publish_state, lambda: None, self._on_reflex,
                                  self.get_logger().info, state_every=1)
        self.finished = threading.Event()
        self.failed = False
        self._thread = threading.Thread(target=self._run, name="franka_loop", daemon=True)
        self.get_logger().info("stand-in for franka_ros2's joint velocity path: robot %s, %s -> "
                               "robot, robot -> %s" % (robot_ip, COMMAND_TOPIC, JOINT_STATES_TOPIC))

    def _param(self, name, default, description):
        return declare_read_only(self, name, default, description)

    def start(self) -> None:
        sys.setswitchinterval(2e-4)  # the loop must answer within Franka's 1 ms cycle
        self._thread.start()
        if self.rt_priority > 0:
            try:
                realtime_process(self.rt_priority)
            except PermissionError as exc:
                self.get_logger().warning("no SCHED_FIFO (%s): cycles may be lost" % exc)

    def _run(self) -> None:
        try:
            self.loop.run(self.loop.connect())
        except Exception as exc:
            self.failed = True
            self.get_logger().fatal("libfranka loop failed (%s: %s)" % (type(exc).__name__, exc))
        self.finished.set()

    def _on_command(self, msg: Float64MultiArray) -> None:
        if not self.held.receive(msg.data):
            self.ignored += 1
            self.get_logger().error("command size (%d) does not match number of interfaces (%d)"
                                    % (len(msg.data), NUM_JOINTS), throttle_duration_sec=1.0)

    def _publish_state(self, state) -> None:
        if self.hold_states:
            return
        msg = JointState(name=self.names, position=list(state.q), velocity=list(state.dq),
                         effort=list(state.tau_J))
        msg.header.stamp = self.get_clock().now().to_msg()
        self._state_pub.publish(msg)

    def _on_reflex(self, text: str) -> None:
        self.get_logger().error("robot reflex: %s" % text)

    def _on_active(self, request, response):
        if request.data:
            self.active.set()
        else:
            self.active.clear()  # JointGroupVelocityController::on_deactivate: zeros
        return answer(response, "active" if request.data else "deactivated", self.get_logger())

    def _on_recover(self, request, response):
        self.loop.reflex.request_recover()
        return answer(response, "error recovery requested", self.get_logger())

    def _on_hold(self, request, response):
        self.hold_states = bool(request.data)
        return answer(response, "joint states held" if request.data else "joint states flowing",
                      self.get_logger())

    def _publish_diagnostics(self) -> None:
        values = self.loop.stats.window_values() + [("ignored commands", str(self.ignored))]
        reflex = self.loop.reflex.text
        msg = DiagnosticArray()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.status = [DiagnosticStatus(
            level=DiagnosticStatus.ERROR if reflex else DiagnosticStatus.OK, name="franka_standin",
            message="reflex: " + reflex if reflex else "ok", hardware_id=COMMAND_TOPIC,
            values=[KeyValue(key=k, value=v) for k, v in values])]
        self._diag_pub.publish(msg)


def main(args: Optional[List[str]] = None) -> int:
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    node = FrankaStandinNode()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: node.stopping.set())
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    node.start()
    while not node.finished.wait(0.1):
        pass
    node.get_logger().info("stopped; libfranka loop over the run: " + node.loop.stats.summary())
    executor.shutdown()
    spinner.join(timeout=2.0)
    node.destroy_node()
    rclpy.try_shutdown()
    return 1 if node.failed else 0


if __name__ == "__main__":
    sys.exit(main())
