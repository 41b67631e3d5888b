"""BackgroundSpin: a node's executor spun on its own thread, closed without destroying anything
under it (real rclpy, messages over DDS within the process)."""
import threading
import time

import ros_harness  # noqa: F401  (DDS settings first; skips without rclpy)
import rclpy
from std_msgs.msg import String

from reach_rl_deploy.ros_plumbing.background_spin import BackgroundSpin


def wait(predicate, timeout=10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not predicate():
        time.sleep(0.01)
    return predicate()


def test_spins_callbacks_and_closes_before_the_node_is_destroyed():
    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        node = rclpy.create_node("background_spin_test", context=context)
        got = []
        node.create_subscription(String, "background_spin_test", lambda m: got.append(m.data), 10)
        publisher = node.create_publisher(String, "background_spin_test", 10)
        spinner = BackgroundSpin(node)
        assert wait(lambda: publisher.get_subscription_count() > 0)
        publisher.publish(String(data="hello"))
        assert wait(lambda: got == ["hello"])
        destroyed = []
        assert spinner.close(lambda: destroyed.append(spinner.thread.is_alive()))
        assert destroyed == [False]  # destroyed once nothing spins it: no InvalidHandle, no abort
        node.destroy_node()
    finally:
        rclpy.try_shutdown(context=context)


def test_close_leaves_the_executor_to_a_callback_that_does_not_return():
    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        node = rclpy.create_node("background_spin_blocked", context=context)
        entered, release = threading.Event(), threading.Event()

        def blocking():
            entered.set()
            release.wait(10.0)

        timer = node.create_timer(0.01, blocking)
        spinner = BackgroundSpin(node)
        assert entered.wait(10.0)
        destroyed = []
        assert not spinner.close(lambda: destroyed.append(True), timeout=0.1)
        assert destroyed == []  # the callback still runs: nothing shut down or destroyed
        timer.cancel()
        release.set()
        spinner.thread.join(5.0)
        assert not spinner.thread.is_alive()  # stopped after that callback
        spinner.executor.shutdown()
        node.destroy_node()
    finally:
        rclpy.try_shutdown(context=context)
