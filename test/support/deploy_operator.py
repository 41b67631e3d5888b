"""The test's side of deploy_node over real DDS (interface ros2_control), for reach_rl_deploy's
and reach_rl_sim's tests: the node as its own process, an operator node that records
trajectories, joint states, reflexes and diagnostics and sends targets, a publisher of fixed
joint states, and the recorded trajectories as sent (judged by the caller: reach_rl_deploy
samples them with reach_rl_core's splines, reach_rl_sim replays them through its
joint_trajectory_controller model)."""
import threading
import time
from typing import Callable, List, NamedTuple, Tuple

import numpy as np
from ros_harness import NodeProcess, TestNode, test_node_name

from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PointStamped
from sensor_msgs.msg import JointState
from std_msgs.msg import String
from trajectory_msgs.msg import JointTrajectory

from reach_rl_core.franka_model import joint_names, tcp_position
from reach_rl_core.trajectory_spline import Trajectory
from reach_rl_deploy.launch_plan.franka_plan import TRAJECTORY_TOPIC as CONTROLLER_TOPIC
from reach_rl_deploy.ros_plumbing.qos import reliable

NAMES = joint_names("fr3")
JOINT_STATES_TOPIC = "/joint_states"  # sim_robot_node's default
TRAJECTORY_TOPIC = "/" + CONTROLLER_TOPIC  # joint_trajectory_controller's (and sim_robot_node's)
MOVING = 0.05  # rad/s: a joint faster than this moves


class Sent(NamedTuple):
    """One trajectory message: its send time [s, system clock], header stamp [s] and points."""

    sent: float
    stamp: float
    trajectory: Trajectory


def seconds(stamp) -> float:
    """A builtin_interfaces Time or Duration in seconds."""
    return stamp.sec + 1e-9 * stamp.nanosec


def max_speed(msg: JointTrajectory) -> float:
    """The fastest joint velocity [rad/s] of any point of ``msg``."""
    return max((abs(v) for p in msg.points for v in p.velocities), default=0.0)


def as_sent(msg: JointTrajectory, sent: float) -> Sent:
    """``msg``, sent at ``sent`` [s, system clock]."""
    def rows(field):
        return np.array([getattr(p, field) for p in msg.points], dtype=float)

    times = np.array([seconds(p.time_from_start) for p in msg.points])
    return Sent(sent, seconds(msg.header.stamp),
                Trajectory(times, rows("positions"), rows("velocities"), rows("accelerations")))


class Operator(TestNode):
    """The test's side: records trajectories, joint states, reflexes and diagnostics; sends
    targets and (where no simulated robot runs) joint states."""

    def __init__(self, context, name):
        super().__init__(context, name)
        self.trajectories, self.states, self.reflexes, self.diagnostics = [], [], [], []
        self.trajectories_sent, self.states_sent = [], []  # DDS send times, system clock [s]
        self.record(JointTrajectory, TRAJECTORY_TOPIC, 1000, self.trajectories,
                    sent=self.trajectories_sent)
        self.record(JointState, JOINT_STATES_TOPIC, 100, self.states, sent=self.states_sent)
        self.record(String, "/sim_robot/reflex", reliable(10, latched=True), self.reflexes,
                    stamp=False, keep=lambda msg: msg.data)
        self.record(DiagnosticArray, "/diagnostics", 10, self.diagnostics, stamp=False)
        self.target_pub = self.node.create_publisher(PointStamped, "/reach_target", 10)
        self.state_pub = self.node.create_publisher(JointState, JOINT_STATES_TOPIC, 10)

    def send_target(self, xyz, frame="fr3_link0"):
        """Publish a target [m], once the deploy node subscribes (it is not latched)."""
        self.wait_for(lambda: self.target_pub.get_subscription_count() > 0, 20.0,
                      "the deploy node's target subscription")
        msg = PointStamped()
        msg.header.frame_id = frame
        msg.point.x, msg.point.y, msg.point.z = (float(v) for v in xyz)
        self.target_pub.publish(msg)

    def publish_state(self, position, names=NAMES):
        msg = JointState(name=list(names), position=[float(v) for v in position],
                         velocity=[0.0] * len(names))
        self.state_pub.publish(msg)

    def tcp(self):
        with self.lock:
            return tcp_position(np.array(self.states[-1][1].position)) if self.states else None

    def latest_state(self) -> JointState:
        with self.lock:
            return self.states[-1][1]

    def moved(self) -> bool:
        """Whether any trajectory received so far moves a joint."""
        with self.lock:
            return any(max_speed(msg) > 0.0 for _, msg in self.trajectories)

    def wait_for_motion(self, what, speed=MOVING, timeout=10.0):
        """Until the newest trajectory moves a joint faster than ``speed`` [rad/s]."""
        self.wait_for(lambda: self.trajectories and max_speed(self.trajectories[-1][1]) > speed,
                      timeout, what)

    def wait_until_quiet(self, what, quiet=0.5, timeout=10.0):
        """Until no trajectory came for ``quiet`` s and the last one is over: the deploy node
        sends none while the command is zero and the reference rests."""
        def over():
            if not self.trajectories:
                return True
            received, msg = self.trajectories[-1]
            end = seconds(msg.header.stamp) + seconds(msg.points[-1].time_from_start)
            return time.monotonic() - received > quiet and time.time() > end
        self.wait_for(over, timeout, what)

    def sent(self) -> List[Sent]:
        """Every trajectory received, in the order sent."""
        with self.lock:
            return [as_sent(msg, sent) for (_, msg), sent
                    in zip(self.trajectories, self.trajectories_sent)]


class StatePublisher:
    """Publishes a fixed joint state at ``rate`` Hz from a thread of the test (a robot stand-in
    whose state is chosen by the test)."""

    def __init__(self, operator, position, names=NAMES, rate=250.0):
        self.operator, self.position, self.names, self.period = operator, position, names, 1 / rate
        self.running = True
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while self.running:
            self.operator.publish_state(self.position, self.names)
            time.sleep(self.period)

    def stop(self):
        self.running = False
        self.thread.join(1.0)


def operator_fixture(ros_context, request):
    """Body of a function-scoped fixture: the test's :class:`Operator`, closed after."""
    node = Operator(ros_context, test_node_name(request))
    yield node
    node.close()


def deploy_node(policy: str, **params) -> NodeProcess:
    """deploy_node (interface ros2_control, the FR3, started enabled) as its own process,
    publishing on :data:`TRAJECTORY_TOPIC` and reading :data:`JOINT_STATES_TOPIC`; ``params``
    override those and add others."""
    defaults = {"policy": policy, "robot": "fr3", "autostart": True, "interface": "ros2_control",
                "trajectory_topic": TRAJECTORY_TOPIC, "joint_states_topic": JOINT_STATES_TOPIC}
    defaults.update(params)
    return NodeProcess("reach_rl_deploy.deploy_node", sorted(defaults.items()))


Judge = Callable[[List[Sent]], Tuple[np.ndarray, np.ndarray, List[str]]]


def assert_brought_to_rest(operator: Operator, since: float, judge: Judge) -> None:
    """The recorded trajectories, as ``judge`` judges them (``judge(sent)``: the 1 ms cycles'
    times [s], the velocities commanded then [rad/s] and what broke a limit), break no limit;
    the arm was moving at ``since`` [s, system clock] and rests from the end of the last
    trajectory on."""
    sent = operator.sent()
    times, velocities, problems = judge(sent)
    assert not problems, problems[:5]
    speed = np.abs(velocities[np.searchsorted(times, since)]).max()
    assert speed > MOVING, "the arm was not moving (%.3f rad/s), nothing to bring to rest" % speed
    last = sent[-1]
    end = last.stamp + last.trajectory.duration
    assert not np.any(velocities[times >= end]), "moving after the last trajectory's end"
