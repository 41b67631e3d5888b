"""A subscription its owner reads on its own thread: wait with a timeout, take, no executor.

rclpy's executors rebuild their wait set from every entity of a node on each spin; for a
topic at 1 kHz that costs about half a core in Python and, shared between threads, adds
the hand-over of the interpreter lock to every message. The deploy loop instead waits on a
wait set holding just its joint-state subscription, the way ``rclpy.wait_for_message``
does, and so runs each tick the moment a state arrives.

The subscription belongs to a node of its own (``<owner>_<suffix>``) that no executor
spins, so no executor takes its messages; the topic name is resolved by the owner node,
remappings included.
"""
from typing import Any, Optional, Tuple

import rclpy
from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy
from rclpy.node import Node


class DirectSubscription:
    """``take(timeout)``: the next message of ``topic`` and its info, or None after ``timeout`` s."""

    def __init__(self, owner: Node, suffix: str, msg_type, topic: str, qos):
        self.node = rclpy.create_node(owner.get_name() + "_" + suffix, namespace=owner.get_namespace(),
                                      context=owner.context, use_global_arguments=False,
                                      start_parameter_services=False)
        self._sub = self.node.create_subscription(msg_type, owner.resolve_topic_name(topic),
                                                  lambda *_: None, qos)
        self._wait_set = _rclpy.WaitSet(1, 0, 0, 0, 0, 0, owner.context.handle)

    def take(self, timeout: float) -> Optional[Tuple[Any, dict]]:
        """Wait up to ``timeout`` s [>= 0] for a message; ``(msg, info)`` with ``info`` holding the
        DDS ``source_timestamp`` [ns, system clock], or None if none came."""
        wait_set, sub = self._wait_set, self._sub
        with sub.handle:
            wait_set.clear_entities()
            wait_set.add_subscription(sub.handle)
            wait_set.wait(max(0, int(timeout * 1e9)))
            if sub.handle.pointer not in wait_set.get_ready_entities("subscription"):
                return None
            return sub.handle.take_message(sub.msg_type, sub.raw)

    def destroy(self) -> None:
        self.node.destroy_subscription(self._sub)
        self.node.destroy_node()
