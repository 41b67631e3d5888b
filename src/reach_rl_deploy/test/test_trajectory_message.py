"""The topic path's message: a command trajectory as trajectory_msgs/JointTrajectory (stamp,
times, the last point at rest), and ~/enable's controller activation refusing clearly where no
controller manager can be reached."""
import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy (ROS 2 wheels) is not installed: make setup")

from reach_rl_core.command_trajectory import TrajectoryStream  # noqa: E402
from reach_rl_deploy.interfaces import controller_switch  # noqa: E402
from reach_rl_deploy.interfaces.ros2_control import KNOT_DT, trajectory_message  # noqa: E402

NAMES = ["fr3_joint%d" % i for i in range(1, 8)]


def test_message_carries_the_stamp_times_and_every_point():
    stream = TrajectoryStream(np.full(7, 4.0), np.full(7, 500.0), 0.04, KNOT_DT, 0.02)
    trajectory = stream.next(1765000000.0, np.full(7, 0.6), np.linspace(-1, 1, 7))
    msg = trajectory_message(trajectory, NAMES, 1765000000.123456789)
    assert msg.joint_names == NAMES
    assert msg.header.stamp.sec == 1765000000
    assert abs(msg.header.stamp.nanosec - 123456789) < 1000  # a float of 1.7e9 s: 0.2 us steps
    carry = trajectory_message(trajectory, NAMES, 1765000000.9999999999)  # rounds up a second
    assert (carry.header.stamp.sec, carry.header.stamp.nanosec) == (1765000001, 0)
    assert len(msg.points) == len(trajectory.times)
    times = [p.time_from_start.sec + 1e-9 * p.time_from_start.nanosec for p in msg.points]
    np.testing.assert_allclose(times, trajectory.times, atol=1e-9)
    assert times[0] == 0.0 and np.all(np.diff(times) > 0.0)  # JTC: strictly increasing
    for point, i in ((msg.points[0], 0), (msg.points[-1], -1)):
        np.testing.assert_allclose(point.positions, trajectory.positions[i])
        np.testing.assert_allclose(point.velocities, trajectory.velocities[i])
        np.testing.assert_allclose(point.accelerations, trajectory.accelerations[i])
    assert not any(msg.points[-1].velocities)  # JTC (Jazzy) rejects a last point in motion


def test_activation_without_a_controller_manager_says_why():
    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        node = rclpy.create_node("test_controller_switch", context=context)
        refusal = controller_switch.activate(node, "joint_trajectory_controller", timeout=0.5)
        node.destroy_node()
    finally:
        rclpy.try_shutdown(context=context)
    assert refusal.startswith("cannot activate joint_trajectory_controller: ")
    assert "controller_manager_msgs" in refusal or "switch_controller" in refusal
