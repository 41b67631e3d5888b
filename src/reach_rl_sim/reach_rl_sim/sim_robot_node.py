"""ROS 2 node ``sim_robot_node``: a kinematic simulated Franka behind franka_ros2's
joint_trajectory_controller, for trying the topic path without franka-sim.

* subscribes trajectory_msgs/JointTrajectory on ``trajectory_topic`` for
  :class:`~reach_rl_sim.trajectory_controller.TrajectoryController`, the model of
  joint_trajectory_controller the franka_ros2 stand-in runs, with the gains franka.launch.py
  configures (``franka_plan.TRAJECTORY_GAINS``). A message the controller refuses is logged
  with the reason and counted (the count is printed on exit), and the trajectory running goes
  on. The controller is active from the start, holding the initial position;
* steps :class:`reach_rl_sim.sim_robot.SimRobot` at 1 kHz on a thread of its own, paced by the
  monotonic clock: each cycle the controller's update, at the cycle's time on the system clock
  (the clock of the messages' stamps), gives the joint velocity command the arm follows
  through the actuator lag. Cycles this process was too late for are caught up on, and each
  message reaches the controller at the first cycle at or after its receipt (never before its
  stamp, as on a real-time controller), so the command stream is the one a real-time
  controller makes;
* judges that 1 kHz command stream against Franka's position, velocity, acceleration and jerk
  limits (:mod:`reach_rl_sim.limit_monitor`). A violation is a reflex: the arm stands still,
  the controller is deactivated (trajectories are dropped), the error is logged and published
  on ``~/reflex`` (std_msgs/String, latched); the ``~/reset`` service (std_srvs/Trigger)
  clears it and activates the controller again, holding the arm where it stands;
* publishes sensor_msgs/JointState on ``joint_states_topic`` at ``joint_state_rate``, stamped
  with the cycle's time;
* fault injection: ``~/hold_joint_states`` (std_srvs/SetBool) true stops publishing joint
  states while the arm keeps moving (a state stream that dies while the controller lives),
  false resumes them.

Parameters (read at start): ``robot`` (fr3|panda), ``joint_prefix`` (default
``<robot>_joint``), ``trajectory_topic`` (``/joint_trajectory_controller/joint_trajectory``),
``joint_states_topic`` (``/joint_states``), ``joint_state_rate`` (Hz, default 1000: every
cycle, as franka_ros2's joint_state_broadcaster publishes), ``initial_positions`` (rad,
default the ready pose), ``actuator_tau`` (s, default 0.005), ``cpu`` (run the whole node
on that CPU; -1, the default: any) and ``rt_priority`` (SCHED_FIFO of every thread where
permitted, as franka_ros2's controller manager runs; 0: ordinary): a deploy node at its own
real-time priority would otherwise delay the trajectories' receipt into late takeovers.
"""
import collections
import gc
import signal
import sys
import threading
import time

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_msgs.msg import String
from std_srvs.srv import SetBool, Trigger
from trajectory_msgs.msg import JointTrajectory

from reach_rl_core.franka_model import READY_POSE, joint_limits, joint_names
from reach_rl_deploy.ros_plumbing.realtime import (pin_process,
                                                   realtime_process_where_permitted)
from reach_rl_deploy.launch_plan.franka_plan import TRAJECTORY_GAINS
from reach_rl_deploy.ros_plumbing.parameters import declare_read_only
from reach_rl_deploy.ros_plumbing.qos import reliable
from reach_rl_deploy.ros_plumbing.service_answer import answer
from reach_rl_sim import ROBOT_RT_PRIORITY
from reach_rl_sim.limit_monitor import CONTROL_DT
from reach_rl_sim.sim_robot import DEFAULT_ACTUATOR_TAU, SimRobot
from reach_rl_sim.trajectory_controller import DROPPED_INACTIVE, TrajectoryController
from reach_rl_sim.trajectory_topic import TRAJECTORY_TOPIC, receive

LATE_WARNING = 0.1  # s behind its schedule before the physics loop says so
TRAJECTORY_QOS = reliable(10)
JOINT_STATE_QOS = reliable(10)
REFLEX_QOS = reliable(10, latched=True)


class SimRobotNode(Node):
    """Thin ROS wrapper: parameters, topics, services; the physics runs on its own thread."""

    def __init__(self):
        super().__init__("sim_robot")
        robot = self._param("robot", "fr3", "robot model: fr3 or panda")
        prefix = self._param("joint_prefix", "", "joint name prefix, default <robot>_joint")
        trajectory_topic = self._param("trajectory_topic", TRAJECTORY_TOPIC,
                                       "trajectory_msgs/JointTrajectory input")
        state_topic = self._param("joint_states_topic", "/joint_states", "JointState output")
        rate = self._param("joint_state_rate", 1000.0, "JointState publish rate [Hz], at most 1000")
        initial = self._param("initial_positions", list(READY_POSE), "initial joint positions [rad]")
        tau = self._param("actuator_tau", DEFAULT_ACTUATOR_TAU, "actuator time constant [s]")
        cpu = self._param("cpu", -1, "CPU to run the whole node on; -1: any")
        self._rt_priority = self._param("rt_priority", ROBOT_RT_PRIORITY,
                                        "SCHED_FIFO priority of every thread (0: ordinary)")
        if cpu >= 0:
            pin_process(cpu)  # threads started later (physics, executor) inherit it
        if not 0.0 < rate <= 1.0 / CONTROL_DT:
            raise ValueError("joint_state_rate must be in (0, %g] Hz, got %g" % (1.0 / CONTROL_DT, rate))
        self._names = joint_names(robot, prefix)
        self._robot = SimRobot(joint_limits(robot), initial, tau=tau, names=self._names)
        self._controller = TrajectoryController(self._names, TRAJECTORY_GAINS["p"],
                                                TRAJECTORY_GAINS["ff_velocity_scale"], CONTROL_DT)
        self._controller.activate(time.time(), self._robot.q)
        self._publish_every = max(1, int(round(1.0 / (rate * CONTROL_DT))))
        self._lock = threading.Lock()  # guards _robot and _controller
        self._inbox = collections.deque()  # (receipt [s, system clock], JointTrajectory)
        self._stop = threading.Event()
        self._states_held = False
        self._state_pub = self.create_publisher(JointState, state_topic, JOINT_STATE_QOS)
        self._reflex_pub = self.create_publisher(String, "~/reflex", REFLEX_QOS)
        self.create_subscription(JointTrajectory, trajectory_topic, self._on_trajectory,
                                 TRAJECTORY_QOS)
        self.create_service(Trigger, "~/reset", self._on_reset)
        self.create_service(SetBool, "~/hold_joint_states", self._on_hold_joint_states)
        self._thread = threading.Thread(target=self._run, name="sim_robot_physics", daemon=True)
        self.get_logger().info(
            "simulating %s (%s..%s) at 1 kHz behind joint_trajectory_controller (p %g): "
            "trajectories on %s, joint states on %s at %g Hz"
            % (robot, self._names[0], self._names[-1], TRAJECTORY_GAINS["p"], trajectory_topic,
               state_topic, 1.0 / (self._publish_every * CONTROL_DT)))

    def _param(self, name, default, description):
        return declare_read_only(self, name, default, description)

    def start(self):
        gc.collect()
        gc.freeze()  # collections during the run walk only new objects, not every loaded module's
        self._thread.start()
        realtime_process_where_permitted(self._rt_priority, self.get_logger().warning,
                                         "the simulated Franka", "trajectories may take over late")

    def stop(self):
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=1.0)

    def trajectory_report(self) -> str:
        """How many trajectories the controller accepted and refused over the run."""
        with self._lock:
            return "trajectories: %d accepted, %d rejected" % (self._controller.accepted,
                                                                self._controller.rejected)

    def _on_trajectory(self, msg: JointTrajectory):
        self._inbox.append((time.time(), msg))

    def _receive_until(self, cycle_time: float):
        """Hand the controller the messages received by ``cycle_time`` [s, system clock]."""
        while self._inbox and self._inbox[0][0] <= cycle_time:
            received, msg = self._inbox.popleft()
            with self._lock:
                reason = receive(self._controller, msg, received)
                rejected = self._controller.rejected
            if reason and reason != DROPPED_INACTIVE:
                self.get_logger().error("trajectory rejected (%d so far): %s" % (rejected, reason),
                                        throttle_duration_sec=1.0)

    def _on_reset(self, request, response):
        with self._lock:
            cleared = self._robot.reset()
            if cleared:
                self._controller.activate(time.time(), self._robot.q)  # holds where it stands
        return answer(response, "reflex cleared: %s" % cleared if cleared else "no reflex active",
                      self.get_logger())

    def _on_hold_joint_states(self, request, response):
        self._states_held = bool(request.data)
        return answer(response, "joint states held" if request.data else "joint states resumed",
                      self.get_logger(), severity="warning")

    def _run(self):
        """Physics loop: one controller update and SimRobot step per 1 ms of monotonic time."""
        to_system_clock = time.time() - time.monotonic()
        next_cycle = time.monotonic()
        cycle = 0
        while not self._stop.is_set():
            now = time.monotonic()
            if now < next_cycle:
                time.sleep(next_cycle - now)
                continue
            if now - next_cycle > LATE_WARNING:
                self.get_logger().warning("physics %.0f ms behind, catching up"
                                          % (1e3 * (now - next_cycle)), throttle_duration_sec=1.0)
            cycle_time = next_cycle + to_system_clock  # [s, system clock]
            self._receive_until(cycle_time)
            with self._lock:
                command = self._controller.update(cycle_time, self._robot.q, self._robot.dq)
                error = self._robot.step(command)
                if error:
                    self._controller.deactivate()
                q, dq = self._robot.q.copy(), self._robot.dq.copy()
            next_cycle += CONTROL_DT
            cycle += 1
            try:
                if error:
                    self._report_reflex(error)
                if cycle % self._publish_every == 0 and not self._states_held:
                    self._publish_state(q, dq, cycle_time)
            except Exception:  # the context shuts down under us on SIGINT/SIGTERM
                if not self.context.ok():
                    return
                raise

    def _report_reflex(self, error: str):
        self.get_logger().error("reflex: %s" % error)
        self._reflex_pub.publish(String(data=error))

    def _publish_state(self, q, dq, cycle_time: float):
        """Joint state of the cycle scheduled at ``cycle_time`` [s, system clock], stamped so:
        after a stall the states of the cycles caught up on show their age."""
        msg = JointState()
        msg.header.stamp.sec = int(cycle_time)
        msg.header.stamp.nanosec = int((cycle_time % 1.0) * 1e9)
        msg.name = list(self._names)
        msg.position = q.tolist()
        msg.velocity = dq.tolist()
        self._state_pub.publish(msg)


def main(args=None):
    rclpy.init(args=args)
    try:
        node = SimRobotNode()
    except ValueError as exc:
        sys.stderr.write("sim_robot_node: %s\n" % exc)
        rclpy.try_shutdown()
        return 2
    node.start()
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not break the cleanup
        node.stop()
        # Printed, not logged: after SIGINT the context that carries /rosout is already shut down.
        print("sim_robot_node: %s" % node.trajectory_report(), flush=True)
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
