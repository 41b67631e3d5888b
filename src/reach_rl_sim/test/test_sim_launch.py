"""franka.launch.py's simulated robots, started for real: the sim plan's topics are the
stand-in's, franka-sim outlives the launch's SIGINT, and the plan's processes move the arm, started
by reach-rl-launch (here) and by ros2 launch (where a ROS 2 install has launch_pytest)."""
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import franka_sim_harness
from captured_process import CapturedProcess
from reach_rl_deploy.launch_plan import franka_plan
from reach_rl_deploy.launch_plan.franka_plan import plan
from source_tree import REPO, source_env


def test_default_is_the_simulated_franka_with_autostart(policy_file):
    p = plan({"policy": policy_file})
    assert p.mode == "sim" and p.arm_id == "fr3"
    assert p.deploy_params["autostart"] is True
    # franka-sim + the franka_ros2 stand-in: the deploy node reads and writes what it would on
    # the robot (franka_standin_node's topics are franka_ros2's, fixed).
    from reach_rl_sim import franka_standin_node as standin

    # The node's names are relative (a namespace applies); outside one they are the stand-in's.
    assert "/" + p.deploy_params["joint_states_topic"] == standin.JOINT_STATES_TOPIC
    assert "/" + p.deploy_params["trajectory_topic"] == standin.TRAJECTORY_TOPIC
    assert "activate_controller" not in p.deploy_params  # the stand-in's controller starts active
    assert not p.deploy_params["target_topic"].startswith("/")
    assert p.sim_params == {"arm_id": "fr3", "robot_ip": "127.0.0.1"} and p.franka_args == {}


def test_launched_franka_sim_outlives_sigint_then_stops_cleanly():
    """With OUTLIVE_SIGINT (as franka.launch.py starts it) the franka_sim launcher keeps the robot
    up for a while after the SIGINT that stops the nodes, so they end their motions against a live
    robot, then stops it and exits 0 within launch's 5 s before SIGTERM; SIGTERM stops it at once."""
    reason = franka_sim_harness.missing()
    if reason:
        pytest.skip(reason)
    env = {franka_plan.OUTLIVE_SIGINT: "1", "REACH_RL_FRANKA_SIM_STOP_DELAY": "1.5"}
    for stop_signal, alive_for in ((signal.SIGINT, 1.0), (signal.SIGTERM, 0.0)):
        # Started as launch starts it, with SIGINT not ignored (a shell cannot trap a signal
        # ignored when it started, and a test run from a background job inherits that).
        previous = signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            sim = franka_sim_harness.FrankaSim(env=env)
        finally:
            signal.signal(signal.SIGINT, previous)
        try:
            os.killpg(sim.process.pid, stop_signal)  # as Ctrl-C reaches the whole group
            time.sleep(alive_for)
            if alive_for:
                assert sim.process.poll() is None and franka_sim_harness.port_open(), sim.output
            assert sim.process.wait(4.0) == 0, sim.output[-2000:]
            assert not franka_sim_harness.port_open()
        finally:
            if sim.process.poll() is None:
                os.killpg(sim.process.pid, signal.SIGKILL)
            sim.stop()


# -- the plan's processes, started for real ---------------------------------------------------

from ros_harness import TestNode, ros_context_fixture, test_node_name  # noqa: E402

from geometry_msgs.msg import PointStamped  # noqa: E402
from sensor_msgs.msg import JointState  # noqa: E402

from reach_rl_core.franka_model import tcp_position  # noqa: E402

ros_context = pytest.fixture(scope="module")(ros_context_fixture)
TARGET = (0.45, -0.15, 0.40)  # m, fr3_link0


def _share():
    from ament_index_python.packages import PackageNotFoundError, get_package_share_directory

    try:
        return get_package_share_directory("reach_rl_deploy")
    except PackageNotFoundError:
        pytest.skip("reach_rl_deploy is not installed: run under colcon test (make test)")


FRANKA_SIM_VENV = os.environ.get("REACH_RL_FRANKA_SIM_VENV", str(REPO / ".venv-sim"))
needs_franka_sim = pytest.mark.skipif(
    not os.path.isfile(os.path.join(FRANKA_SIM_VENV, "bin", "run-franka-sim-server")),
    reason="franka-sim is not installed (make setup installs it)")


def reach(operator: TestNode, target, timeout: float = 25.0) -> float:
    """Publish ``target`` on /reach_target until the TCP is within 1 cm (the nodes may still be
    starting, the arm homing) or ``timeout`` s passed; the last TCP error [m]."""
    states = []
    operator.record(JointState, "/joint_states", 10, states)
    target_pub = operator.node.create_publisher(PointStamped, "/reach_target", 10)
    operator.wait_for(lambda: states, 30.0, "joint states from the simulated Franka")
    error, deadline = np.inf, time.monotonic() + timeout
    while error >= 0.01 and time.monotonic() < deadline:
        msg = PointStamped()
        msg.point.x, msg.point.y, msg.point.z = (float(v) for v in target)
        target_pub.publish(msg)
        time.sleep(0.05)
        with operator.lock:
            error = float(np.linalg.norm(tcp_position(np.array(states[-1][1].position))
                                         - np.asarray(target)))
    return error


@needs_franka_sim
def test_reach_rl_launch_moves_the_arm_then_stops_everything(ros_context, request,
                                                            libfranka_policy):
    """reach-rl-launch interface:=libfranka sim:=true, as make demo runs it: franka-sim and the
    deploy node from the plan; the arm reaches a target; Ctrl-C stops both in order (exit 0),
    franka-sim judged no violation, and TCP 1337 is free again."""
    _share()
    if franka_sim_harness.port_open():
        pytest.fail("TCP 1337 is taken: another franka-sim runs on this machine; stop it first")
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # as a terminal starts it
    try:
        runner = CapturedProcess(
            [sys.executable, "-m", "reach_rl_deploy.launch_plan.plan_runner", "interface:=libfranka",
             "sim:=true", "policy:=%s" % libfranka_policy], env=source_env())
    finally:
        signal.signal(signal.SIGINT, previous)
    operator = TestNode(ros_context, test_node_name(request))
    try:
        error = reach(operator, TARGET)
        assert error < 0.01, "TCP %.1f mm from the target after 25 s:\n%s" % (
            1000 * error, runner.output[-3000:])
        runner.process.send_signal(signal.SIGINT)
        assert runner.process.wait(30.0) == 0, runner.output[-3000:]
        runner.join_reader()
        sim_lines = [line for line in runner.lines if line.startswith("[franka_sim]")]
        assert sim_lines, "no franka-sim output relayed:\n" + runner.output[-2000:]
        assert not [line for line in sim_lines if franka_sim_harness.VIOLATION.search(line)
                    and ("WARNING" in line or "ERROR" in line)], runner.output[-3000:]
        assert not franka_sim_harness.port_open()
    finally:
        operator.close()
        if runner.process.poll() is None:
            runner.process.kill()  # its processes die with it
            runner.process.wait()


try:
    import launch_pytest
except ImportError:
    launch_pytest = None

NEEDS_LAUNCH_PYTEST = ("needs launch_pytest from a ROS 2 install (not on PyPI); "
                       "test_reach_rl_launch_moves_the_arm_then_stops_everything starts the same "
                       "processes from the same plan")

if launch_pytest is not None:
    @launch_pytest.fixture
    def sim_launch(libfranka_policy):
        from launch import LaunchDescription
        from launch.actions import IncludeLaunchDescription
        from launch.launch_description_sources import PythonLaunchDescriptionSource

        path = os.path.join(_share(), "launch", "franka.launch.py")
        return LaunchDescription([
            IncludeLaunchDescription(PythonLaunchDescriptionSource(path),
                                     launch_arguments={"interface": "libfranka", "sim": "true",
                                                       "policy": libfranka_policy}.items()),
            launch_pytest.actions.ReadyToTest(),
        ])

    @needs_franka_sim
    @pytest.mark.launch(fixture=sim_launch)
    def test_ros2_launch_moves_the_arm_to_a_target(ros_context, request):
        """franka-sim and the deploy node on the libfranka interface, from one ros2 launch."""
        operator = TestNode(ros_context, test_node_name(request))
        try:
            error = reach(operator, TARGET)
            assert error < 0.01, "TCP %.1f mm from the target after 25 s" % (1000 * error)
        finally:
            operator.close()
else:
    @pytest.mark.skip(reason=NEEDS_LAUNCH_PYTEST)
    def test_ros2_launch_moves_the_arm_to_a_target():
        """Skipped where ROS 2's launch system is not installed (see the reason)."""


def _ksoftirqd_threads():
    """The pids of the kernel's ksoftirqd threads (the loopback's deferred receive work)."""
    pids = []
    for comm in Path("/proc").glob("[0-9]*/comm"):
        try:
            if comm.read_text().startswith("ksoftirqd/"):
                pids.append(int(comm.parent.name))
        except OSError:  # the process ended meanwhile
            pass
    return pids


def test_franka_sim_runs_the_robot_links_softirq_threads_real_time(tmp_path):
    """The franka_sim launcher gives the ksoftirqd threads SCHED_FIFO at
    REACH_RL_FRANKA_SIM_SOFTIRQ_RT_PRIORITY (default 1) with a real-time robot, and leaves them
    as they are at 0 (at the ordinary priority, beside busy processes, loaded runs ended in
    communication_constraints_violation). A stand-in server that exits at once (no port)."""
    pids = _ksoftirqd_threads()
    if not pids or shutil.which("chrt") is None:
        pytest.skip("no ksoftirqd threads visible in /proc, or no chrt (util-linux)")
    try:
        for pid in pids:
            os.sched_setscheduler(pid, os.SCHED_OTHER, os.sched_param(0))
    except PermissionError:
        pytest.skip("changing ksoftirqd's scheduler needs root or CAP_SYS_NICE")
    (tmp_path / "bin").mkdir()
    for name in ("run-franka-sim-server", "python"):
        (tmp_path / "bin" / name).write_text("#!/bin/sh\nexit 0\n")
        (tmp_path / "bin" / name).chmod(0o755)
    env = dict(os.environ, REACH_RL_FRANKA_SIM_VENV=str(tmp_path),
               REACH_RL_FRANKA_SIM_RT_PRIORITY="90")
    script = str(REPO / "src" / "reach_rl_sim" / "scripts" / "franka_sim")
    subprocess.run([script], env=dict(env, REACH_RL_FRANKA_SIM_SOFTIRQ_RT_PRIORITY="0"),
                   check=True, timeout=30)
    assert [os.sched_getscheduler(pid) for pid in pids] == [os.SCHED_OTHER] * len(pids)
    subprocess.run([script], env=env, check=True, timeout=30)
    assert [(os.sched_getscheduler(pid), os.sched_getparam(pid).sched_priority)
            for pid in pids] == [(os.SCHED_FIFO, 1)] * len(pids)
