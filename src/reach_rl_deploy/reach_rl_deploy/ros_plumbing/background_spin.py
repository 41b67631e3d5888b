"""A node's executor spun on a thread of its own, and stopped so that nothing is destroyed under
it.

``Executor.shutdown()`` from another thread while ``spin()`` waits destroys the executor's guard
condition under the waiting thread, which then dies with ``InvalidHandle: cannot use
Destroyable`` or ``'NoneType' object has no attribute 'trigger'`` (reach-rl-targets under load,
after its summary); destroying a node under a spinning executor aborts the process. Here the
thread spins in short rounds until told to stop, and the executor is shut down, and the node
destroyed, only once the thread has left it.
"""
import threading
from typing import Callable, Optional

from rclpy.executors import ExternalShutdownException, ShutdownException, SingleThreadedExecutor

ROUND = 0.05  # s, the longest one round waits for work: how long close() waits for the thread


class BackgroundSpin:
    """Spins ``node``'s callbacks (a SingleThreadedExecutor in the node's context) on a daemon
    thread from construction until :meth:`close` (or until the ROS context shuts down, e.g. on
    SIGINT under rclpy's own handler)."""

    def __init__(self, node):
        self.node = node
        self.executor = SingleThreadedExecutor(context=node.context)
        self.executor.add_node(node)
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._spin, daemon=True)
        self.thread.start()

    def _spin(self) -> None:
        try:
            while not self._stop.is_set():
                self.executor.spin_once(timeout_sec=ROUND)
        except (ExternalShutdownException, ShutdownException):
            pass  # the context or the executor shut down: nothing left to spin

    def close(self, destroy: Optional[Callable[[], None]] = None, timeout: float = 5.0) -> bool:
        """Stop spinning, shut the executor down, then destroy the node (``destroy``: how; default
        ``node.destroy_node``). False where the thread (a callback) has not returned within
        ``timeout`` [s]: the executor and the node are then left as they are."""
        self._stop.set()
        self.thread.join(timeout)
        if self.thread.is_alive():
            return False
        self.executor.shutdown()
        (destroy or self.node.destroy_node)()
        return True
