"""Shared pieces of the tests that run reach_rl's nodes as real processes over real DDS.

Importing this module puts the DDS settings in place (a session-random ROS_DOMAIN_ID, discovery
on localhost only) before rclpy is initialised; node processes inherit them. It skips the
importing test module, saying why, where rclpy or the message packages are missing.
"""
import os
import random
import signal
import subprocess
import sys
import threading
import time
from typing import Callable, Mapping, Optional, Sequence, Tuple

import pytest

from captured_process import CapturedProcess
from source_tree import source_env

# One random domain per test session, shared by every module that imports this, so parallel
# sessions and any robot on the default domain never hear these tests.
os.environ.setdefault("REACH_RL_TEST_DOMAIN_ID", str(random.Random().randint(1, 100)))
os.environ["ROS_DOMAIN_ID"] = os.environ["REACH_RL_TEST_DOMAIN_ID"]
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"

try:
    import rclpy

    from reach_rl_deploy.ros_plumbing.background_spin import BackgroundSpin
except Exception as exc:  # ImportError, or OSError for missing ROS shared libraries
    pytest.skip("rclpy / ROS 2 messages unavailable (%s: %s); source ROS 2 Jazzy or use the venv's "
                "ROS wheels (make setup)" % (type(exc).__name__, exc), allow_module_level=True)



def node_env() -> dict:
    """Environment for a node process: this one's, with the source tree importable first."""
    return source_env()


class NodeProcess(CapturedProcess):
    """``python -m <module> --ros-args -p name:=value ...`` as a child process, output captured."""

    def __init__(self, module: str, params: Sequence[Tuple[str, object]] = (),
                 env: Optional[Mapping[str, str]] = None):
        """``env``: variables added to the node's environment."""
        args = [sys.executable, "-m", module, "--ros-args"]
        for name, value in params:
            text = str(value).lower() if isinstance(value, bool) else str(value)
            args += ["-p", "%s:=%s" % (name, text)]
        super().__init__(args, env=dict(node_env(), **(env or {})))

    def wait_for_line(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(text in line for line in self.lines):
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.02)
        pytest.fail("no line containing %r within %g s; output:\n%s" % (text, timeout, self.output))

    def wait(self, timeout: float) -> int:
        """Exit status, once the process has ended (fails the test after ``timeout`` s)."""
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            pytest.fail("process did not exit within %g s; output:\n%s" % (timeout, self.output))
        self.join_reader()
        return code

    def interrupt(self, timeout: float = 10.0) -> int:
        """SIGINT (Ctrl-C), then the exit status."""
        self.process.send_signal(signal.SIGINT)
        return self.wait(timeout)

    def stop(self) -> None:
        """End the process whatever its state (test teardown); prints its output."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(8.0)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.join_reader()
        print(self.output)


class TestNode:
    """The test's own ROS node, spun on a background thread; callbacks record under ``lock``."""

    __test__ = False  # not a pytest test class

    def __init__(self, context, name: str):
        self.node = rclpy.create_node(name, context=context)
        self.lock = threading.RLock()  # predicates of wait_for may take it again
        self._spinner = BackgroundSpin(self.node)

    def record(self, msg_type, topic: str, qos, into: list, stamp: bool = True,
               keep: Callable = lambda msg: msg, sent: Optional[list] = None) -> None:
        """Append ``(monotonic receive time, keep(msg))`` (or just ``keep(msg)``) of ``topic``
        to ``into``, and each message's DDS send time [s, system clock] to ``sent`` if given
        (the sender's timing, whatever this process's scheduling adds on receipt)."""
        def callback(msg, info):
            with self.lock:
                into.append((time.monotonic(), keep(msg)) if stamp else keep(msg))
                if sent is not None:
                    sent.append(1e-9 * info["source_timestamp"])

        self.node.create_subscription(msg_type, topic, callback, qos)

    def wait_for(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if predicate():
                    return
            time.sleep(0.01)
        pytest.fail("timed out after %g s waiting for %s" % (timeout, what))

    def call(self, srv_type, name: str, request, timeout: float = 5.0):
        """Call service ``name`` and return its response."""
        client = self.node.create_client(srv_type, name)
        assert client.wait_for_service(timeout_sec=timeout), "service %s not available" % name
        future = client.call_async(request)
        deadline = time.monotonic() + timeout
        while not future.done() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert future.done(), "service %s did not answer" % name
        return future.result()

    def close(self) -> None:
        self._spinner.close()  # destroys the node once nothing spins it


def test_node_name(request) -> str:
    """A valid ROS node name derived from the running pytest test."""
    return "test_" + "".join(c if c.isalnum() else "_" for c in request.node.name)


test_node_name.__test__ = False  # type: ignore[attr-defined]


def ros_context_fixture():
    """Body of a module-scoped fixture: an rclpy context of the test process's own."""
    context = rclpy.Context()
    rclpy.init(context=context)
    yield context
    rclpy.try_shutdown(context=context)

