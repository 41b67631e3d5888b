"""ROS 2 node ``franka_standin_node``: exactly what franka_ros2 offers the deploy node's topic path,
on a robot reached through libfranka (franka-sim, or a real FR3), and nothing more.

The topic path is deploy_node -> ``/joint_trajectory_controller/joint_trajectory`` ->
franka_ros2 (controller_manager at 1 kHz, ``joint_trajectory_controller/JointTrajectoryController``
on the arm joints' velocity command interfaces, franka_hardware) -> libfranka -> robot.
franka_ros2 is not built here; this node stands in for that data path:

* **Joint states**: franka_ros2's ``joint_state_broadcaster`` publishes the hardware's state
  interfaces every controller cycle on ``/franka/joint_states``; here every cycle's
  ``RobotState`` gives measured ``q`` [rad], ``dq`` [rad/s] and ``tau_J`` [Nm], stamped with
  the cycle's time. The broadcaster hands them to a non-real-time thread
  (``realtime_tools::RealtimePublisher``); here the 1 kHz loop publishes them itself, and rclpy
  holds the interpreter lock through the whole DDS write: a write that blocks (Fast DDS's
  shared-memory transport, 333 ms once after a participant was killed) stops the loop.
* **Trajectories**: trajectory_msgs/JointTrajectory on ``/joint_trajectory_controller/
  joint_trajectory`` go to :class:`~reach_rl_sim.trajectory_controller.TrajectoryController`,
  a model of joint_trajectory_controller configured as ``config/fr3_joint_trajectory_
  controller.yaml`` of reach_rl_deploy configures it (command interface velocity, splines,
  ``interpolate_from_desired_state``, P gain ``p_gain``, ``ff_velocity_scale``; that module says
  which rule comes from where). Every cycle its velocity command [rad/s] is what libfranka
  sends. A message the controller refuses is logged at ERROR with the reason (throttled) and
  counted on ``/diagnostics``; the trajectory running goes on.
* **Clock**: JTC compares each message's ``header.stamp`` with the controller manager's clock,
  the system clock. Each cycle's update, and the receipt of the messages handed over after it,
  is at :class:`~reach_rl_sim.trajectory_motion.ControllerClock`'s time, which advances by
  the robot's own time between cycles and follows the system clock slowly, without this Python
  loop's scheduling jitter (as a controller manager on a real-time kernel runs).
* **Rate limiter** (``velocity_rate_limit``): franka_hardware's ``Robot::writeOnceJointVelocities``
  (``franka_hardware/src/robot.cpp``) applies ``franka::limitRate`` against the robot's
  ``dq_d``/``ddq_d`` only when ``velocity_command_rate_limit_active_`` is set; franka_ros2
  compiles it false (``robot.hpp``) and its comment says to set it on robot errors. Here it is
  on by default (:mod:`reach_rl_sim.rate_limiter` says why: lost cycles on a machine without
  a real-time kernel); ``velocity_rate_limit:=false`` is franka_ros2's default. No low-pass
  filter either way.
* **Activation and deactivation** (``~/active``, std_srvs/SetBool; the controller starts
  active): JTC on activation holds the measured position; here each motion starts so (the
  first cycle of a libfranka motion, also after ``~/recover``). On deactivation JTC writes zero
  velocity commands and drops the messages it receives; here zeros go out until the robot has
  stopped, however fast the arm was moving (that step is the robot's to judge, as it would be
  with franka_ros2), and the motion ends. SIGINT ends the motion the same way.
* **Reflexes**: libfranka's ``ControlException`` is logged and published on ``/diagnostics``;
  ``~/recover`` (std_srvs/Trigger) runs ``automatic_error_recovery`` (franka_ros2's
  ``error_recovery`` action). What franka_ros2's controller manager does with an active JTC
  across a reflex is not modelled: here the next motion starts like an activation.

Besides, for tests only: ``~/hold_joint_states`` (std_srvs/SetBool) stops publishing joint
states while the robot keeps executing, as when a broadcaster or the network stalls.
"""
import collections
import gc
import signal
import sys
import threading
import time
from typing import List, Optional

import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions
from sensor_msgs.msg import JointState
from std_srvs.srv import SetBool, Trigger
from trajectory_msgs.msg import JointTrajectory

from reach_rl_core.franka_model import joint_limits, joint_names
from reach_rl_deploy.ros_plumbing.realtime import realtime_process_where_permitted
from reach_rl_sim import ROBOT_RT_PRIORITY
from reach_rl_deploy.ros_plumbing.direct_subscription import DirectSubscription
from reach_rl_deploy.ros_plumbing.timing_histogram import TimingHistogram
from reach_rl_deploy.launch_plan.franka_plan import TRAJECTORY_GAINS
from reach_rl_sim.pylibfranka_loop import PylibfrankaLoop
from reach_rl_sim.rate_limiter import RateLimiter
from reach_rl_sim.trajectory_topic import TRAJECTORY_TOPIC, seconds
from reach_rl_sim.trajectory_controller import (DROPPED_INACTIVE, Takeover,
                                                TrajectoryController)
from reach_rl_sim.trajectory_motion import TrajectoryMotion
from reach_rl_deploy.ros_plumbing.qos import reliable
from reach_rl_deploy.ros_plumbing.service_answer import answer
from reach_rl_deploy.ros_plumbing.parameters import declare_read_only
from reach_rl_core.filter_limits import DEFAULT_CONTROL_RATE

JOINT_STATES_TOPIC = "/franka/joint_states"
# rad/s: a takeover that changes the commanded velocity by more is logged (a step of 5 mrad/s in
# one 1 ms cycle is a jerk of 5000 rad/s^3, the FR3's limit).
TAKEOVER_STEP_WARN = 1e-3
CALLBACK_EVERY = 10  # loop cycles between runs of the node's callbacks (1 ms each in a motion)
CONTROLLER_PERIOD = 1.0 / DEFAULT_CONTROL_RATE  # s, the controller manager's update period (Franka's 1 kHz)
# s from the robot connection to the first motion (the controller's first update): franka_ros2's
# spawner activates a controller only once the controller manager and the hardware are up, seconds
# after the connection. Meanwhile states are read and published at IDLE_PERIOD, and this
# process, franka-sim and DDS discovery get past their start-up work before a 1 ms deadline counts.
STARTUP_SETTLE = 1.0


class FrankaStandinNode(Node):
    """Thin ROS wrapper: the libfranka loop on a thread of its own, which also runs the services
    and timers between its cycles (:meth:`spin_callbacks`)."""

    def __init__(self):
        super().__init__("franka_standin")
        robot_ip = self._param("robot_ip", "127.0.0.1", "the arm's control unit (franka-sim: 127.0.0.1)")
        arm_id = self._param("arm_id", "fr3", "fr3 or panda: joint names <arm_id>_joint1..7")
        self.rt_priority = self._param("rt_priority", ROBOT_RT_PRIORITY, "SCHED_FIFO priority of every thread, "
                                       "as franka_ros2's controller manager runs (0: ordinary)")
        p_gain = self._param("p_gain", TRAJECTORY_GAINS["p"], "joint_trajectory_controller's gains.<joint>.p of "
                             "every arm joint [1/s]: velocity command per rad of position error")
        ff_velocity_scale = self._param("ff_velocity_scale", TRAJECTORY_GAINS["ff_velocity_scale"], "joint_trajectory_controller's "
                                        "gains.<joint>.ff_velocity_scale of every arm joint: the "
                                        "share of the trajectory's velocity commanded")
        rate_limit = self._param("velocity_rate_limit", True, "franka_hardware's joint velocity "
                                 "rate limiter (franka::limitRate against the robot's dq_d, "
                                 "ddq_d); franka_ros2 compiles it off")
        self.names = list(joint_names(arm_id))
        limits = joint_limits(arm_id)
        self.rate_limiter = RateLimiter(limits.acc_max, limits.jerk_max)
        self.controller = TrajectoryController(self.names, p_gain, ff_velocity_scale,
                                               CONTROLLER_PERIOD)
        self.controller_lock = threading.Lock()
        self.active = threading.Event()
        self.active.set()  # the controller is spawned active
        self.stopping = threading.Event()
        self.hold_states = False
        self.dropped = 0  # trajectories received while the controller was inactive
        self._state_pub = self.create_publisher(JointState, JOINT_STATES_TOPIC, reliable(1))
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        # Taken by the 1 kHz loop itself at each update, as JTC takes the newest message from
        # its realtime buffer: no executor thread in between, whose share of this Python
        # process's interpreter lock would delay trajectories by tens of milliseconds.
        self._trajectories = DirectSubscription(self, "trajectories", JointTrajectory,
                                                TRAJECTORY_TOPIC, reliable(10))
        self.create_service(SetBool, "~/active", self._on_active)
        self.create_service(Trigger, "~/recover", self._on_recover)
        self.create_service(SetBool, "~/hold_joint_states", self._on_hold)
        self.create_timer(1.0, self._publish_diagnostics)
        self.create_timer(0.1, self._drop_while_inactive)
        # The services and timers run on the 1 kHz loop's own thread, between its cycles: an
        # executor thread beside it would take the interpreter lock for milliseconds at a time
        # (lost cycles). spin_callbacks() is the loop's on_cycle.
        self._callbacks = SingleThreadedExecutor(context=self.context)
        self._callbacks.add_node(self)
        self._cycles = 0
        # (stamp, DDS source timestamp, receipt) [s, system clock] of the last messages received
        self._receipts = collections.deque(maxlen=4)
        motion = TrajectoryMotion(self.controller, self.controller_lock, self.active,
                                  self.stopping, inbox=self._received_trajectories,
                                  on_received=self._on_received, on_takeover=self._on_takeover,
                                  rate_limiter=self.rate_limiter if rate_limit else None)
        self.takeover_age = TimingHistogram()  # s from a message's stamp to its takeover
        self.loop = PylibfrankaLoop(robot_ip, motion, self._publish_state, self.spin_callbacks,
                                    self._on_reflex, self.get_logger().info, state_every=1,
                                    settle=STARTUP_SETTLE)
        self.finished = threading.Event()
        self.failed = False
        self._thread = threading.Thread(target=self._run, name="franka_loop", daemon=True)
        self.get_logger().info("stand-in for franka_ros2's joint_trajectory_controller path "
                               "(p %g, ff_velocity_scale %g): robot %s, %s -> robot, robot -> %s"
                               % (p_gain, ff_velocity_scale, robot_ip, TRAJECTORY_TOPIC,
                                  JOINT_STATES_TOPIC))

    def spin_callbacks(self) -> None:
        """Every CALLBACK_EVERY calls (loop cycles): one ready callback of the node (a service
        request, a timer), if any."""
        self._cycles += 1
        if self._cycles % CALLBACK_EVERY == 0:
            self._callbacks.spin_once(timeout_sec=0.0)

    def _param(self, name, default, description):
        return declare_read_only(self, name, default, description)

    def start(self) -> None:
        sys.setswitchinterval(2e-4)  # the loop must answer within Franka's 1 ms cycle
        self._callbacks.spin_once(timeout_sec=0.0)  # the first takes milliseconds: not in a motion
        # A full collection walks every object the libraries loaded (milliseconds, lost cycles):
        # frozen now, the loop's collections see only what it allocates.
        gc.collect()
        gc.freeze()
        self._thread.start()
        realtime_process_where_permitted(self.rt_priority, self.get_logger().warning,
                                         "the stand-in", "cycles may be lost")

    def _run(self) -> None:
        try:
            self.loop.run(self.loop.connect())
        except Exception as exc:
            self.failed = True
            self.get_logger().fatal("libfranka loop failed (%s: %s)" % (type(exc).__name__, exc))
        self.finished.set()

    def _received_trajectories(self) -> List[JointTrajectory]:
        """The trajectories received since the last call, oldest first (for the motion, or while
        none runs for the timer, which drops them as an inactive controller does; both on the
        loop's thread)."""
        messages = []
        while True:
            received = self._trajectories.take(0.0)
            if received is None:
                return messages
            msg, info = received
            self._receipts.append((seconds(msg.header.stamp), 1e-9 * info["source_timestamp"],
                                   time.time()))
            messages.append(msg)

    def _drop_while_inactive(self) -> None:
        if not self.active.is_set():
            for _ in self._received_trajectories():
                self._on_received(DROPPED_INACTIVE)

    def _on_received(self, reason: str) -> None:
        if reason == DROPPED_INACTIVE:
            self.dropped += 1
        elif reason:
            self.get_logger().error("trajectory rejected: %s" % reason, throttle_duration_sec=1.0)

    def _on_takeover(self, takeover: Takeover) -> None:
        self.takeover_age.add(takeover.age)
        if takeover.step > TAKEOVER_STEP_WARN:
            self.get_logger().warning(
                "a trajectory took over %.1f ms after its stamp and stepped the velocity command "
                "by %.4f rad/s; the last messages were published and received [ms after their "
                "stamps]: %s" % (1e3 * takeover.age, takeover.step, ", ".join(
                    "%.1f and %.1f" % (1e3 * (sent - stamp), 1e3 * (received - stamp))
                    for stamp, sent, received in list(self._receipts))))

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
            self.active.clear()  # JTC's on_deactivate: zero velocity commands
        return answer(response, "active" if request.data else "deactivated", self.get_logger())

    def _on_recover(self, request, response):
        self.loop.reflex.request_recover()
        return answer(response, "error recovery requested", self.get_logger())

    def _on_hold(self, request, response):
        self.hold_states = bool(request.data)
        return answer(response, "joint states held" if request.data else "joint states flowing",
                      self.get_logger())

    def _publish_diagnostics(self) -> None:
        with self.controller_lock:
            counts = [("trajectories accepted", str(self.controller.accepted)),
                      ("trajectories rejected", str(self.controller.rejected)),
                      ("trajectories replaced before taking over",
                       str(self.controller.superseded)),
                      ("trajectories dropped while inactive", str(self.dropped))]
        values = self.loop.stats.window_values() + counts
        reflex = self.loop.reflex.text
        msg = DiagnosticArray()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.status = [DiagnosticStatus(
            level=DiagnosticStatus.ERROR if reflex else DiagnosticStatus.OK, name="franka_standin",
            message="reflex: " + reflex if reflex else "ok", hardware_id=self.loop.robot_ip,
            values=[KeyValue(key=k, value=v) for k, v in values])]
        self._diag_pub.publish(msg)


def main(args: Optional[List[str]] = None) -> int:
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    node = FrankaStandinNode()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: node.stopping.set())
    node.start()
    while not node.finished.wait(0.1):
        pass
    controller = node.controller
    node.get_logger().info(
        "stopped; libfranka loop over the run: %s; trajectories: %d accepted, %d rejected, %d "
        "replaced before taking over; takeover after the stamp %s; commands changed by the rate "
        "limiter: %d" % (node.loop.stats.summary(), controller.accepted, controller.rejected,
                         controller.superseded, node.takeover_age.summary(),
                         node.rate_limiter.limited))
    node._callbacks.shutdown()
    node._trajectories.destroy()
    node.destroy_node()
    rclpy.try_shutdown()
    return 1 if node.failed else 0


if __name__ == "__main__":
    sys.exit(main())
