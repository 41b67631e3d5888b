"""The ROS side of ``reach-rl-targets`` (:mod:`reach_rl_deploy.target_runner`): joint states,
the deploy node's status, reflexes, and the targets it publishes."""
from typing import List, Optional, Set

import numpy as np

from reach_rl_core.franka_model import joint_limits, joint_names, limit_distance
from reach_rl_deploy.deploy_controller import reorder_joint_state
from reach_rl_deploy.targets import Target

# /diagnostics statuses that report the robot's reflexes: the deploy node's (libfranka) and the
# franka_ros2 stand-in's (the topic path on franka-sim).
REFLEX_REPORTERS = ("reach_rl_deploy", "franka_standin")


class Observer:
    """A run's ROS side: the arm's joint positions [rad] on ``joint_states`` (None: not read),
    each joint's smallest distance to its limits so far [rad], the deploy node's status,
    reflexes (the simulated Franka's and the deploy node's), and targets published in
    ``<robot>_link0`` on ``target_topic``: geometry_msgs/PoseStamped when ``pose``, else
    PointStamped (one process publishes one message type on a topic). Its node spins on a
    thread of its own."""

    def __init__(self, name: str, robot: str = "fr3", joint_states: Optional[str] = "/joint_states",
                 target_topic: str = "/reach_target", pose: bool = False):
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
        from geometry_msgs.msg import PointStamped, PoseStamped
        from sensor_msgs.msg import JointState
        from std_msgs.msg import String

        from reach_rl_deploy.ros_plumbing.background_spin import BackgroundSpin
        from reach_rl_deploy.ros_plumbing.qos import reliable

        rclpy.init()
        self.node = rclpy.create_node(name)
        self.names, self.limits = joint_names(robot), joint_limits(robot)
        self.q = None  # type: Optional[np.ndarray]
        self.limit = np.full(7, np.inf)
        self.deploy_status = ""
        self.reflexes = []  # type: List[str]
        if joint_states:
            self.node.create_subscription(JointState, joint_states, self._on_state, 10)
        self.node.create_subscription(String, "/sim_robot/reflex",
                                      lambda m: self.reflexes.append(m.data),
                                      reliable(10, latched=True))
        self._error = DiagnosticStatus.ERROR
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 10)
        self._target = PoseStamped() if pose else PointStamped()
        self._target.header.frame_id = robot + "_link0"
        self._publisher = self.node.create_publisher(type(self._target), target_topic, 10)
        self.spinner = BackgroundSpin(self.node)

    def _on_state(self, msg) -> None:
        try:
            q = reorder_joint_state(msg.name, msg.position, msg.velocity or [0.0] * len(msg.name),
                                    self.names)[0]
        except ValueError:
            return
        self.q = np.asarray(q, float)
        self.limit = np.minimum(self.limit, limit_distance(self.q, self.limits.pos_min,
                                                           self.limits.pos_max))

    def _on_diagnostics(self, msg) -> None:
        for status in msg.status:
            if status.name not in REFLEX_REPORTERS:
                continue
            if status.name == "reach_rl_deploy":
                self.deploy_status = status.message
            reflex = status.level == self._error and status.message.startswith("reflex")
            if reflex and status.message not in self.reflexes:
                self.reflexes.append(status.message)

    def subscriber_types(self) -> Set[str]:
        """The message types the target topic's subscribers take (the deploy node's)."""
        topic = self._publisher.topic_name
        return {e.topic_type for e in self.node.get_subscriptions_info_by_topic(topic)}

    def publish(self, target: Target) -> None:
        """Publish ``target`` (position [m], and orientation when this observer sends poses,
        base frame)."""
        if target.quaternion is None:
            point = self._target.point
        else:
            point, orientation = self._target.pose.position, self._target.pose.orientation
            orientation.x, orientation.y, orientation.z, orientation.w = (
                float(v) for v in target.quaternion)
        point.x, point.y, point.z = (float(v) for v in target.position)
        self._publisher.publish(self._target)

    def close(self) -> None:
        import rclpy

        self.spinner.close()
        rclpy.try_shutdown()
