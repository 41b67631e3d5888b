"""BackgroundSpin: an executor spun on its own thread, closed without destroying anything under it
(real rclpy, messages over DDS within the process)."""
import threading
import time

import ros_harness  # noqa: F401  (DDS settings first; skips without rclpy)
import rclpy
from rclpy.executors import SingleThreadedExecutor
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
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(node)
        spinner = BackgroundSpin(executor)
        assert wait(lambda: publisher.get_subscription_count() > 0)
        publisher.publish(String(data="hello"))
        assert wait(lambda: got == ["hello"])
        assert spinner.close()
        assert not spinner.thread.is_alive()
        node.destroy_node()  # nothing spins it any more: no InvalidHandle, no abort
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
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(node)
        spinner = BackgroundSpin(executor)
        assert entered.wait(10.0)
        assert not spinner.close(timeout=0.1)  # the callback still runs: nothing shut down
        timer.cancel()
        release.set()
        spinner.thread.join(5.0)
        assert not spinner.thread.is_alive()  # stopped after that callback
        executor.shutdown()
        node.destroy_node()
    finally:
        rclpy.try_shutdown(context=context)
