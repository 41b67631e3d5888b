"""ROS 2 node ``sim_robot_node``: a simulated Franka arm behind a joint velocity controller.

Stands in for franka_ros2's ``joint_velocity_controller`` on a real FR3/Panda:

* subscribes ``command_topic`` (std_msgs/Float64MultiArray, 7 joint velocities [rad/s]);
  on exit it logs the commands' send period (DDS send times);
* steps :class:`reach_rl_sim.sim_robot.SimRobot` at 1 kHz on a dedicated thread paced
  by the monotonic clock (Python timers jitter), holding the latest command in every
  cycle, exactly like the real controller when a message is late;
* judges every command against the position, velocity, acceleration and jerk limits as a
  1 kHz loop reads the stream, by the commands' send times (``SentStreamMonitor``);
* publishes sensor_msgs/JointState on ``joint_states_topic`` at ``joint_state_rate``;
* on a limit violation, a wrong-length or a non-finite command: reflex. The arm stands
  still, the error is logged and published on ``~/reflex`` (std_msgs/String, latched),
  and the ``~/reset`` service (std_srvs/Trigger) clears it;
* fault injection: ``~/hold_joint_states`` (std_srvs/SetBool) true stops publishing joint
  states while the arm keeps following commands (a state stream that dies while the
  controller lives), false resumes them.

Parameters (read at start): ``robot`` (fr3|panda), ``joint_prefix`` (default
``<robot>_joint``), ``command_topic`` (``/joint_velocity_controller/commands``),
``joint_states_topic`` (``/joint_states``), ``joint_state_rate`` (Hz, default 1000: every
cycle, as franka_ros2's joint_state_broadcaster publishes; the deploy node then ticks on
each state), ``initial_positions`` (rad, default the ready pose) and ``actuator_tau``
(s, default 0.005) and ``cpu`` (run the whole node on that CPU; -1, the default: any).
"""
import gc
import signal
import sys
import threading
import time
from typing import Optional

import numpy as np
import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray, String
from std_srvs.srv import SetBool, Trigger

from reach_rl_deploy.cpu_pinning import pin_process
from reach_rl_deploy.direct_subscription import DirectSubscription
from reach_rl_core.franka_model import NUM_JOINTS, READY_POSE, joint_limits, joint_names
from reach_rl_sim.limit_monitor import CONTROL_DT, SentStreamMonitor, StreamMonitor
from reach_rl_deploy.ros_qos import reliable
from reach_rl_deploy.service_answer import answer
from reach_rl_sim.sim_robot import DEFAULT_ACTUATOR_TAU, SimRobot
from reach_rl_deploy.timing_histogram import TimingHistogram
from reach_rl_deploy.ros_params import declare_read_only

MAX_CATCH_UP_CYCLES = 100  # after a longer stall the simulated clock skips ahead
# A cycle whose newest command has not been superseded this long after it ended is judged as
# holding that command (a message sent within it may still be on its way until then).
JUDGE_GRACE = 0.05  # s

# Depth 100: every command must reach the limit monitor, also when this process's executor
# falls behind (the physics still holds only the newest one delivered).
COMMAND_QOS = reliable(100)
JOINT_STATE_QOS = reliable(10)
REFLEX_QOS = reliable(10, latched=True)


def command_error(values, names) -> str:
    """Why a received command cannot be executed, or '' if it can."""
    if len(values) != NUM_JOINTS:
        return "invalid command: %d values, expected %d (%s..%s)" % (len(values), NUM_JOINTS, names[0], names[-1])
    bad = [i for i, v in enumerate(values) if not np.isfinite(v)]
    if bad:
        return "invalid command: non-finite value %s for %s" % (values[bad[0]], names[bad[0]])
    return ""


class PositionHistory:
    """Joint positions [rad] of the last ``size`` physics cycles, by cycle time [s, system clock]."""

    def __init__(self, q0, size: int = 256):
        self._times = np.full(size, -np.inf)
        self._q = np.tile(q0, (size, 1))
        self._next = 0

    def add(self, t: float, q) -> None:
        self._times[self._next % len(self._times)] = t
        self._q[self._next % len(self._times)] = q
        self._next += 1

    def at(self, t: float):
        """Position of the newest cycle at or before ``t`` (the oldest kept, if none)."""
        before = np.nonzero(self._times <= t)[0]
        if not len(before):
            return self._q[np.argmin(self._times)]  # before anything was added: all hold q0
        return self._q[before[np.argmax(self._times[before])]]


class SimRobotNode(Node):
    """Thin ROS wrapper: parameters, topics, service; the physics runs on its own thread."""

    def __init__(self):
        super().__init__("sim_robot")
        robot = self._param("robot", "fr3", "robot model: fr3 or panda")
        prefix = self._param("joint_prefix", "", "joint name prefix, default <robot>_joint")
        command_topic = self._param("command_topic", "/joint_velocity_controller/commands",
                                    "Float64MultiArray joint velocity commands [rad/s]")
        state_topic = self._param("joint_states_topic", "/joint_states", "JointState output")
        rate = self._param("joint_state_rate", 1000.0, "JointState publish rate [Hz], at most 1000")
        initial = self._param("initial_positions", list(READY_POSE), "initial joint positions [rad]")
        tau = self._param("actuator_tau", DEFAULT_ACTUATOR_TAU, "actuator time constant [s]")
        cpu = self._param("cpu", -1, "CPU to run the whole node on; -1: any")
        if cpu >= 0:
            pin_process(cpu)  # threads started later (physics, commands, executor) inherit it
        if not 0.0 < rate <= 1.0 / CONTROL_DT:
            raise ValueError("joint_state_rate must be in (0, %g] Hz, got %g" % (1.0 / CONTROL_DT, rate))
        self._names = joint_names(robot, prefix)
        self._robot = SimRobot(joint_limits(robot), initial, tau=tau, names=self._names,
                               check_commands=False)
        # The limits are judged on the stream as it was sent, by the commands' DDS send times:
        # the sender's jitter, stalls and bursts count, this Python process's own scheduling
        # delays do not (a real controller is a real-time C++ loop).
        self._monitor = SentStreamMonitor(StreamMonitor(joint_limits(robot), self._names))
        self._q_history = PositionHistory(np.array(initial, dtype=float))
        self._to_system_clock = time.time() - time.monotonic()  # send stamps are system time
        self._publish_every = max(1, int(round(1.0 / (rate * CONTROL_DT))))
        self._lock = threading.Lock()  # guards _robot, _monitor and _command
        self._command = np.zeros(NUM_JOINTS)  # newest delivered: what the physics holds
        self._stop = threading.Event()
        self._state_pub = self.create_publisher(JointState, state_topic, JOINT_STATE_QOS)
        self._reflex_pub = self.create_publisher(String, "~/reflex", REFLEX_QOS)
        # Commands are taken by a thread of their own, each as it arrives (an executor would
        # spend about half a core rebuilding its wait set at 1 kHz).
        self._commands = DirectSubscription(self, "commands", Float64MultiArray, command_topic,
                                            COMMAND_QOS)
        self._command_thread = threading.Thread(target=self._read_commands, name="sim_robot_commands",
                                                daemon=True)
        self._send_period = TimingHistogram()  # between consecutive commands' send times
        self._last_send = None  # type: Optional[float]
        self.create_service(Trigger, "~/reset", self._on_reset)
        self._states_held = False
        self.create_service(SetBool, "~/hold_joint_states", self._on_hold_joint_states)
        self._thread = threading.Thread(target=self._run, name="sim_robot_physics", daemon=True)
        self.get_logger().info("simulating %s (%s..%s) at 1 kHz, commands on %s, joint states on %s at %g Hz"
                               % (robot, self._names[0], self._names[-1], command_topic, state_topic,
                                  1.0 / (self._publish_every * CONTROL_DT)))

    def _param(self, name, default, description):
        return declare_read_only(self, name, default, description)

    def start(self):
        gc.collect()
        gc.freeze()  # collections during the run walk only new objects, not every loaded module's
        self._command_thread.start()
        self._thread.start()

    def stop(self):
        self._stop.set()
        for thread in (self._thread, self._command_thread):
            if thread.is_alive():
                thread.join(timeout=1.0)
        self._commands.destroy()

    def _read_commands(self):
        while not self._stop.is_set():
            received = self._commands.take(0.1)
            if received is not None:
                self._on_command(*received)

    def command_report(self) -> str:
        """The command stream's send period over the whole run."""
        return "command send period: %s" % self._send_period.summary()

    def _on_command(self, msg: Float64MultiArray, info: dict):
        sent = 1e-9 * info["source_timestamp"]
        if self._last_send is not None:
            self._send_period.add(sent - self._last_send)
        self._last_send = sent
        values = list(msg.data)
        error = command_error(values, self._names)
        with self._lock:
            if not error and not self._robot.in_reflex:
                self._command = np.array(values)
                error = self._monitor.feed(sent, self._command, self._q_history.at)
            started = bool(error) and self._robot.trigger_reflex(error)
        if started:
            self._report_reflex(error)

    def _on_reset(self, request, response):
        with self._lock:
            cleared = self._robot.reset()
            self._command = np.zeros(NUM_JOINTS)  # commands must be sent again, from zero
            self._monitor.reset()
        return answer(response, "reflex cleared: %s" % cleared if cleared else "no reflex active",
                      self.get_logger())

    def _on_hold_joint_states(self, request, response):
        self._states_held = bool(request.data)
        return answer(response, "joint states held" if request.data else "joint states resumed",
                      self.get_logger(), severity="warning")

    def _report_reflex(self, error: str):
        self.get_logger().error("reflex: %s" % error)
        self._reflex_pub.publish(String(data=error))

    def _run(self):
        """Physics loop: one SimRobot step per 1 ms of monotonic time."""
        next_cycle = time.monotonic()
        cycle = 0
        while not self._stop.is_set():
            now = time.monotonic()
            if now < next_cycle:
                time.sleep(next_cycle - now)
                continue
            if now - next_cycle > MAX_CATCH_UP_CYCLES * CONTROL_DT:
                self.get_logger().warning("physics stalled %.0f ms, skipping ahead" % (1e3 * (now - next_cycle)),
                                          throttle_duration_sec=1.0)
                next_cycle = now
            with self._lock:
                self._robot.step(self._command)
                q, dq = self._robot.q.copy(), self._robot.dq.copy()
                cycle_time = next_cycle + self._to_system_clock  # [s, system clock]
                self._q_history.add(cycle_time, q)
            next_cycle += CONTROL_DT
            cycle += 1
            try:
                if cycle % self._publish_every == 0 and not self._states_held:  # first, as a controller does
                    self._publish_state(q, dq, cycle_time)
                with self._lock:
                    error = None
                    if not self._robot.in_reflex:
                        error = self._monitor.flush(time.time() - JUDGE_GRACE, self._q_history.at)
                    if error:
                        self._robot.trigger_reflex(error)
                if error:
                    self._report_reflex(error)
            except Exception:  # the context shuts down under us on SIGINT/SIGTERM
                if not self.context.ok():
                    return
                raise

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
        print("sim_robot_node: %s" % node.command_report(), flush=True)
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
