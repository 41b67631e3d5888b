"""deploy_node's libfranka interface against franka-sim, the independent FCI emulator.

Real processes only: franka-sim (MuJoCo FR3, motion limits and communication constraints
enforced, judging every command), the deploy node (the policy in Python at 50 Hz, Franka's
1 kHz loop in franky's C++ thread), and this test as a ROS node reading ``/joint_states`` and
``/diagnostics``. Stalls of the node's Python side are injected on purpose (holding the GIL:
``REACH_RL_TEST_GIL_STALLS``; ``SIGSTOP``; ``SIGKILL``); nothing here asserts a rate or a
period, only what the robot did.
The judge of limits is franka-sim: a test passes only if it logged no violation. The policy
is the session's ``reach-rl-train --interface libfranka`` file
(policy_fixtures.libfranka_policy).

franka-sim owns TCP 1337 (libfranka's fixed port): the module starts one server, its tests
run one after another, and the server is stopped at the end whatever happened.
"""
import contextlib
import os
import re
import signal
import time

import numpy as np
import pytest
from franka_sim_harness import LOOP_CPU, franka_sim_fixture
from pose_targets import POSES, down_quaternion, pose_message
from ros_harness import NodeProcess, TestNode, ros_context_fixture, test_node_name

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus  # noqa: E402
from geometry_msgs.msg import PointStamped  # noqa: E402
from sensor_msgs.msg import JointState  # noqa: E402
from std_srvs.srv import SetBool, Trigger  # noqa: E402

from reach_rl_core.franka_model import READY_POSE, tcp_position  # noqa: E402
from reach_rl_core.orientation import ORIENTATION_TOLERANCE  # noqa: E402
from reach_rl_deploy.target_runner import orientation_error, tcp_error  # noqa: E402

pytestmark = pytest.mark.ros

TARGETS = [(0.42, 0.18, 0.38), (0.52, -0.15, 0.30), (0.36, 0.02, 0.50)]  # m, not training's seeds
FRANKA_SIM_START = (0.0, 0.0, 0.0, -1.57, 0.0, 1.57, 0.785)  # rad, its own start pose

ros_context = pytest.fixture(scope="module")(ros_context_fixture)


@pytest.fixture(scope="module")
def franka_sim():
    yield from franka_sim_fixture("franky")


class Operator(TestNode):
    """Records joint states and the deploy node's diagnostics; sends targets."""

    def __init__(self, context, name):
        super().__init__(context, name)
        self.states, self.diagnostics = [], []
        self.record(JointState, "/joint_states", 100, self.states)
        self.record(DiagnosticArray, "/diagnostics", 10, self.diagnostics, stamp=False)
        self.publishers = {}  # message type -> publisher on /reach_target (one type a node)

    def publish_target(self, msg):
        kind = type(msg)
        if kind not in self.publishers:
            self.publishers[kind] = self.node.create_publisher(kind, "/reach_target", 10)
        self.publishers[kind].publish(msg)

    def send_target(self, xyz):
        msg = PointStamped()
        msg.header.frame_id = "fr3_link0"
        msg.point.x, msg.point.y, msg.point.z = (float(v) for v in xyz)
        self.publish_target(msg)

    def hold_pose(self, position, quaternion, seconds):
        """Publish the pose for ``seconds``; returns the TCP's position error [m] and
        orientation error [rad] at the end."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.publish_target(pose_message(position, quaternion))
            time.sleep(0.05)
        return tcp_error(self.q(), position), orientation_error(self.q(), quaternion)

    def q(self):
        with self.lock:
            return np.array(self.states[-1][1].position) if self.states else None

    def error(self, target) -> float:
        return float(np.linalg.norm(tcp_position(self.q()) - np.asarray(target)))

    def deploy_status(self):
        """The deploy node's last (level, message), or None."""
        with self.lock:
            for msg in reversed(self.diagnostics):
                for status in msg.status:
                    if status.name == "reach_rl_deploy":
                        return status.level, status.message
        return None

    def hold(self, target, seconds):
        """Publish ``target`` for ``seconds``; returns the TCP error [m] at the end."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.send_target(target)
            time.sleep(0.05)
        return self.error(target)


@pytest.fixture
def operator(ros_context, request):
    op = Operator(ros_context, test_node_name(request))
    yield op
    op.close()


def deploy(policy, stalls="", **params):
    """The deploy node on franka-sim; ``stalls``: REACH_RL_TEST_GIL_STALLS for the node's
    test-only entry point with stalls (reach_rl_deploy.testing.stalled_deploy_node)."""
    values = dict(policy=policy, interface="libfranka", robot_ip="127.0.0.1", autostart=True,
                  cpu=LOOP_CPU)
    values.update(params)
    if not stalls:
        return NodeProcess("reach_rl_deploy.deploy_node", list(values.items()))
    return NodeProcess("reach_rl_deploy.testing.stalled_deploy_node", list(values.items()),
                       env={"REACH_RL_TEST_GIL_STALLS": stalls})


def wait_homed(operator, timeout=20.0):
    """Until the arm is where the policy takes over: at the ready pose after homing, or already
    within the training's start spread (0.2 rad) of it, where the node does not home."""
    operator.wait_for(lambda: operator.q() is not None, timeout, "joint states")
    if np.max(np.abs(operator.q() - np.array(READY_POSE))) < 0.2:
        return
    operator.wait_for(lambda: np.max(np.abs(operator.q() - np.array(READY_POSE))) < 0.02,
                      timeout, "the arm at the ready pose")


@contextlib.contextmanager
def homed_node(operator, *args, **kwargs):
    """deploy(*args, **kwargs) with the arm homed (wait_homed); the node stopped after."""
    node = deploy(*args, **kwargs)
    try:
        wait_homed(operator)
        yield node
    finally:
        node.stop()


def test_reaches_targets_from_franka_sims_start_pose_and_stops_on_sigint(
        franka_sim, operator, libfranka_policy):
    node = deploy(libfranka_policy)
    try:
        node.wait_for_line("moving to the ready pose", 20.0)  # franka-sim starts at q2 = 0
        wait_homed(operator)
        errors = [operator.hold(target, 3.0) for target in TARGETS]
        assert max(errors) < 0.01, "final TCP errors %s m; node:\n%s\nfranka-sim:\n%s" % (
            np.round(errors, 4), node.output[-3000:], "\n".join(franka_sim.violations()))
        operator.send_target((0.55, 0.25, 0.45))
        time.sleep(0.3)  # mid-motion
        assert node.interrupt(15.0) == 0, node.output
    finally:
        node.stop()
    assert "robot reflex" not in node.output
    assert franka_sim.violations() == []
    assert "control_command_success_rate mean" in node.output  # the run's packet figures
    assert franka_sim.output.count("Motion finished") >= 1  # the motion ended at rest
    # The node set the robot's joint impedance (and collision thresholds) itself at connection.
    assert "Handling SetJointImpedance command" in franka_sim.output
    assert "robot configured: collision torque [20.0, 20.0, 18.0" in node.output


def test_a_pose_policy_reaches_pose_targets(franka_sim, operator, libfranka_pose_policy):
    # A pose policy (task.target=pose) behind the same filter and 1 kHz loop: each target a
    # PoseStamped, the TCP pointing down at three yaws; success as in training, within 1 cm and
    # 5 deg, with no reflex and nothing franka-sim judges a violation.
    with homed_node(operator, libfranka_pose_policy) as node:
        errors = []
        for x, y, z, yaw in POSES:
            errors.append(operator.hold_pose((x, y, z), down_quaternion(yaw), 4.0))
        assert node.interrupt(15.0) == 0, node.output
    position, angle = np.array(errors).T
    assert position.max() < 0.01 and angle.max() < ORIENTATION_TOLERANCE, (
        "final errors %s mm, %s deg; node:\n%s" % (np.round(1000 * position, 1),
                                                   np.round(np.degrees(angle), 1),
                                                   node.output[-3000:]))
    assert "robot reflex" not in node.output
    assert franka_sim.violations() == []


def test_stalls_of_the_python_side_holding_the_gil_cost_no_reflex(
        franka_sim, operator, libfranka_policy):
    # A 100 ms stall every 2 s and once 250 ms, the node's Python side frozen with the GIL held
    # (gil_stall.py), while it drives the arm to one target after another.
    with homed_node(operator, libfranka_policy, stalls="0.1/2,0.25@5.1") as node:
        errors = [operator.hold(target, 3.0) for target in TARGETS]
        assert node.interrupt(15.0) == 0, node.output
    assert max(errors) < 0.01, "final TCP errors %s m; node:\n%s\nfranka-sim:\n%s" % (
        np.round(errors, 4), node.output[-3000:], "\n".join(franka_sim.violations()))
    assert "robot reflex" not in node.output
    assert franka_sim.violations() == []
    # The stalls happened: the longest tick lasted the 250 ms stall at least.
    longest = float(re.search(r"tick period .*?max ([0-9.]+) ms", node.output).group(1))
    assert longest >= 250.0, node.output[-2000:]


def test_arm_comes_to_rest_when_commands_stop_and_moves_on_when_they_resume(
        franka_sim, operator, libfranka_policy):
    # A 1 s stall every 4 s: longer than command_hold (0.1 s) and the stop that follows it, so
    # at each stall the arm comes to rest (franka-sim: "Motion finished", which it accepts
    # only at zero velocity), and after it a new motion goes on to the target.
    finished_before = franka_sim.output.count("Motion finished")
    with homed_node(operator, libfranka_policy, stalls="1.0/4") as node:
        errors = [operator.hold(target, 5.0) for target in (TARGETS[1], TARGETS[2], TARGETS[0])]
        assert node.interrupt(15.0) == 0, node.output
    assert max(errors) < 0.01, "final TCP errors %s m; node:\n%s" % (np.round(errors, 4),
                                                                     node.output[-3000:])
    finished = franka_sim.output.count("Motion finished") - finished_before
    assert finished >= 4, "%d motions finished over 3 stalls or more and the stop" % finished
    assert "robot reflex" not in node.output
    assert franka_sim.violations() == []


def test_refuses_a_policy_trained_for_looser_limits(libfranka_policy):
    # This policy's commands change at 3 rad/s^2 (make demo's training); a node told to hold the
    # arm to 0.1 of Franka's acceleration limits (1 rad/s^2) must not run it.
    node = deploy(libfranka_policy, accel_fraction=0.1)
    try:
        assert node.wait(30.0) == 2
    finally:
        node.stop()
    assert "refusing to start" in node.output and "reach-rl-train" in node.output, node.output


def test_frozen_node_gets_franka_reflex_and_moves_again_only_after_recover(
        franka_sim, operator, libfranka_policy):
    with homed_node(operator, libfranka_policy) as node:
        # At the target, motion running: commands about zero, so the only thing the freeze can
        # break is the command stream itself (a freeze while accelerating may first be judged an
        # acceleration discontinuity when the stream resumes).
        operator.hold(TARGETS[0], 3.0)
        os.kill(node.process.pid, signal.SIGSTOP)  # 20 lost commands in a row: Franka's reflex
        time.sleep(0.2)
        os.kill(node.process.pid, signal.SIGCONT)
        node.wait_for_line("robot reflex", 10.0)
        assert "communication_constraints_violation" in node.output
        operator.wait_for(lambda: (operator.deploy_status() or (0, ""))[1].startswith("reflex"),
                          5.0, "the reflex on /diagnostics")
        assert operator.deploy_status()[0] == DiagnosticStatus.ERROR
        time.sleep(1.0)  # the arm stopped by the reflex settles
        q_before = operator.q()
        operator.hold(TARGETS[1], 1.5)
        assert np.max(np.abs(operator.q() - q_before)) < 1e-3, "moved before ~/recover"
        assert operator.call(Trigger, "/reach_rl_deploy/recover", Trigger.Request()).success
        error = operator.hold(TARGETS[1], 4.0)
        assert error < 0.01, "after ~/recover the arm reached %.1f mm from the target" % (1e3 * error)
        assert node.interrupt(15.0) == 0, node.output


def test_killed_node_leaves_the_arm_stopped_and_a_new_node_takes_over(
        franka_sim, operator, libfranka_policy):
    with homed_node(operator, libfranka_policy) as node:
        operator.hold(TARGETS[2], 0.4)
        node.process.kill()  # SIGKILL mid-motion: no ramp, no motion_finished
        node.wait(5.0)
    # franka-sim ends the session and holds the arm where it is, as the FCI stops on a lost
    # connection (franka-sim 1.1.7 then starts every new connection without a latched error).
    deadline = time.monotonic() + 5.0
    while "idle hold engaged" not in franka_sim.output and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "idle hold engaged" in franka_sim.output
    restarted = deploy(libfranka_policy)
    try:
        restarted.wait_for_line("libfranka filter", 20.0)
        time.sleep(1.0)
        error = operator.hold(TARGETS[0], 4.0)
        assert error < 0.01, "the restarted node reached %.1f mm from the target" % (1e3 * error)
        assert operator.call(SetBool, "/reach_rl_deploy/enable", SetBool.Request(data=False)).success
        assert restarted.interrupt(15.0) == 0, restarted.output
    finally:
        restarted.stop()
