"""A robot reflex, latched until the operator asks for recovery.

Franka stops the arm on a reflex and keeps the error until its automatic error recovery runs.
Whatever loop talks to the robot (the deploy node's franky loop, the franka_ros2 stand-in's
libfranka loop) latches the reflex here when it sees it, reports it once, and recovers only
when :meth:`ReflexLatch.request_recover` was called (the node's ``~/recover``), from the loop's
own thread.
"""
import threading
from typing import Callable


class ReflexLatch:
    """The latched reflex (``text``, '' when none) and the operator's recovery request."""

    def __init__(self, on_reflex: Callable[[str], None]):
        self.text = ""
        self._on_reflex = on_reflex
        self._recover = threading.Event()

    def latch(self, text: str) -> None:
        """A reflex: latched and reported through ``on_reflex``."""
        self.text = text
        self._on_reflex(text)

    def request_recover(self) -> None:
        """Ask the loop to run the robot's error recovery (from any thread)."""
        self._recover.set()

    def take_recover_request(self) -> bool:
        """Whether recovery was asked for since the last call (the loop's thread)."""
        if not self._recover.is_set():
            return False
        self._recover.clear()
        return True

    def cleared(self) -> None:
        """The robot recovered: nothing latched any more."""
        self.text = ""
