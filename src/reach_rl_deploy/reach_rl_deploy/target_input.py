"""The deploy node's target topic: the message type its policy takes, the checks, the latest
usable target.

A point policy subscribes geometry_msgs/PointStamped, a pose policy geometry_msgs/PoseStamped
(position [m] and the TCP frame's orientation, ``<robot>_hand_tcp`` in ``<robot>_link0``). One
node cannot also subscribe the other type on the same topic name: rmw_fastrtps_cpp refuses a
second type for a topic name within a process's DDS participant ("create_subscription() called
for existing topic name rt/reach_target with incompatible type"), and DDS never delivers a
publisher's messages to a subscription of another type (nor, with rmw_fastrtps_cpp 8.4, does it
raise the subscription's incompatible-type event). So the node watches the ROS graph instead:
every :data:`WATCH_PERIOD` it lists the topic's publishers, and for each new one of the other
type logs an error naming the node and the types, and stops the arm.
"""
from typing import Optional

import numpy as np
from geometry_msgs.msg import PointStamped, PoseStamped

from reach_rl_core.policy_file import POSE
from reach_rl_deploy.targets import (Endpoint, Target, pose_refusal, pose_target, target_refusal,
                                     type_mismatches)

WATCH_PERIOD = 0.25  # s between looks at the target topic's publishers (a few us each)


class TargetInput:
    """Subscribes the target topic of ``node`` with the type ``info`` (the policy's PolicyInfo)
    takes; ``latest`` is the last usable target (None: none, or the last one was refused).
    Callbacks run on the node's executor; the loop only reads ``latest``."""

    def __init__(self, node, topic: str, base_frame: str, info, qos):
        self.latest = None  # type: Optional[Target]
        self._node, self._base_frame, self._info = node, base_frame, info
        self._pose = info.target_type == POSE
        self._subscription = node.create_subscription(
            PoseStamped if self._pose else PointStamped, topic,
            self._on_pose if self._pose else self._on_point, qos)
        self._seen = set()  # publishers of the other type already reported
        node.create_timer(WATCH_PERIOD, self._watch_publishers)

    @property
    def topic(self) -> str:
        """The topic's full name, remappings applied."""
        return self._subscription.topic_name

    def _on_point(self, msg: PointStamped) -> None:
        point = np.array([msg.point.x, msg.point.y, msg.point.z])
        self._use(Target(point), target_refusal(msg.header.frame_id, point, self._base_frame,
                                                self._info))

    def _on_pose(self, msg: PoseStamped) -> None:
        p, o = msg.pose.position, msg.pose.orientation
        position, quaternion = np.array([p.x, p.y, p.z]), np.array([o.x, o.y, o.z, o.w])
        refused = pose_refusal(msg.header.frame_id, position, quaternion, self._base_frame,
                               self._info)
        self._use(None if refused else pose_target(position, quaternion), refused)

    def _use(self, target: Optional[Target], refused: str) -> None:
        if refused:
            self._refuse(refused)
            return
        if self.latest is None or not _same(target, self.latest):
            text = "target (%.3f, %.3f, %.3f) m" % tuple(target.position)
            if target.quaternion is not None:
                text += ", orientation (%.3f, %.3f, %.3f, %.3f)" % tuple(target.quaternion)
            self._node.get_logger().info(text)
        self.latest = target

    def _refuse(self, why: str) -> None:
        # rclpy refuses one call site logging at two severities: refusals warn, mismatches err.
        self._node.get_logger().warning("target refused: %s; stopping the arm" % why)
        self.latest = None

    def _watch_publishers(self) -> None:
        publishers = [Endpoint(_full_name(e.node_namespace, e.node_name), e.topic_type,
                               tuple(e.endpoint_gid))
                      for e in self._node.get_publishers_info_by_topic(self.topic)]
        for why in type_mismatches(publishers, self._info.target_type, self.topic, self._seen):
            self._node.get_logger().error("target refused: %s; stopping the arm" % why)
            self.latest = None


def _same(a: Target, b: Target) -> bool:
    """Whether two targets are equal (position and orientation)."""
    if (a.quaternion is None) != (b.quaternion is None):
        return False
    return bool(np.all(a.position == b.position)
                and (a.quaternion is None or np.all(a.quaternion == b.quaternion)))


def _full_name(namespace: str, name: str) -> str:
    return namespace.rstrip("/") + "/" + name
