"""The test's side of deploy_node over real DDS: an operator node that records commands, joint
states, reflexes and diagnostics and sends targets, and a publisher of fixed joint states."""
import threading
import time

import numpy as np
from ros_harness import TestNode

from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PointStamped
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray, String

from reach_rl_core.franka_model import FR3, READY_POSE, joint_names, tcp_position
from reach_rl_deploy.ros_qos import reliable
from reach_rl_sim.limit_monitor import StreamMonitor

COMMAND_TOPIC = "/joint_velocity_controller/commands"
NAMES = joint_names("fr3")


class Operator(TestNode):
    """The test's side: records commands, joint states, reflexes and diagnostics; sends targets
    and (where no simulated robot runs) joint states."""

    def __init__(self, context, name):
        super().__init__(context, name)
        self.commands, self.states, self.reflexes, self.diagnostics = [], [], [], []
        self.commands_sent, self.states_sent = [], []  # DDS send times, system clock [s]
        self.record(Float64MultiArray, COMMAND_TOPIC, 10000, self.commands, sent=self.commands_sent)
        self.record(JointState, "/joint_states", 100, self.states, sent=self.states_sent)
        self.record(String, "/sim_robot/reflex", reliable(10, latched=True), self.reflexes,
                    stamp=False, keep=lambda msg: msg.data)
        self.record(DiagnosticArray, "/diagnostics", 10, self.diagnostics, stamp=False)
        self.target_pub = self.node.create_publisher(PointStamped, "/reach_target", 10)
        self.state_pub = self.node.create_publisher(JointState, "/joint_states", 10)

    def send_target(self, xyz, frame="fr3_link0"):
        msg = PointStamped()
        msg.header.frame_id = frame
        msg.point.x, msg.point.y, msg.point.z = (float(v) for v in xyz)
        self.target_pub.publish(msg)

    def publish_state(self, position, names=NAMES):
        msg = JointState(name=list(names), position=[float(v) for v in position],
                         velocity=[0.0] * len(names))
        self.state_pub.publish(msg)

    def tcp(self, states=None):
        states = self.states if states is None else states
        with self.lock:
            return tcp_position(np.array(states[-1][1].position)) if states else None

    def command_array(self, since=0.0):
        with self.lock:
            return np.array([m.data for t, m in self.commands if t >= since])

    def wait_for_commands(self, count, timeout=20.0):
        self.wait_for(lambda: len(self.commands) >= count, timeout, "%d commands" % count)


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


def stream_violations(commands, q=READY_POSE):
    """Limit violations of a received command stream read one message per 1 ms cycle."""
    monitor = StreamMonitor(FR3, NAMES)
    return [error for error in (monitor.check(q, c) for c in commands) if error]
