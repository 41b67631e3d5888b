"""ROS 2 node ``train_node`` (node name ``reach_rl_train``): runs the PPO trainer and reports it.

The trainer is a child process, ``<python> -m reach_rl_train.cli --progress-json ...``
(see :mod:`reach_rl_train.trainer_process`), so that it can run under another interpreter,
e.g. Isaac Gym's Python 3.8 environment. The node

* logs the trainer's human output lines and relays its progress events
  (:mod:`reach_rl_train.progress_protocol`) to ROS:

  - ``~/progress`` (std_msgs/String): each event's JSON object as the trainer printed it,
    e.g. ``{"event": "iteration", "iteration": 3, "max_iterations": 400, "steps_per_s":
    5120.0, "reward": -0.05, "success": 0.12, ...}`` (``success`` 0..1; units in
    progress_protocol);
  - ``/diagnostics`` (diagnostic_msgs/DiagnosticArray, status ``reach_rl_train``): at start,
    every iteration (iteration, steps/s, mean reward, success rate [%], ...) and at the end;

* forwards Ctrl-C: the first SIGINT or SIGTERM becomes a SIGINT to the trainer, which saves a
  checkpoint and exports the policy trained so far, then stops (exit status 130). Further
  SIGINTs are ignored (a terminal and ``ros2 launch`` both send one); a further SIGTERM
  terminates the trainer at once. The trainer runs in its own session, so a terminal's
  Ctrl-C reaches it only through the node;
* on success publishes the absolute policy path on ``~/policy`` (std_msgs/String, latched:
  transient-local QoS), keeps it available for ``linger`` seconds, then exits. The node's
  exit status is the trainer's (128 + N when the trainer was killed by signal N).

Parameters (read at start): the text parameters of :mod:`reach_rl_train.train_parameters`
(empty text keeps the training config's value; ``train.launch.py`` offers the same ones) and
``linger`` (s, default 5). A missing interpreter, an unknown backend or a non-numeric count
is refused before anything starts, with exit status 2.
"""
import collections
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from typing import Any, Dict, List, Optional

import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions
from std_msgs.msg import String

from reach_rl_deploy.ros_plumbing.qos import reliable, wait_acknowledged
from reach_rl_train import progress_protocol as protocol
from reach_rl_train import trainer_process as tp
from reach_rl_train.train_parameters import TEXT_PARAMETERS
from reach_rl_deploy.ros_plumbing.parameters import declare_read_only

PROGRESS_QOS = reliable(50)
DIAGNOSTICS_QOS = reliable(10)
POLICY_QOS = reliable(1, latched=True)
RELAY_PERIOD_S = 0.05  # how often trainer output is relayed to ROS [s]
TAIL_LINES = 30  # trainer output lines repeated in the error log when it fails
EOF = None  # end of the trainer's output, in the line queue


class TrainNode(Node):
    """Thin ROS wrapper around the trainer process: parameters, topics, signal forwarding."""

    def __init__(self):
        super().__init__("reach_rl_train")
        from reach_rl_train.cli import default_config_path  # no torch: cli imports it lazily

        text = {name: str(self._param(name, "", description))
                for name, description in TEXT_PARAMETERS}
        self.linger = float(self._param("linger", 5.0, "seconds the latched policy path stays "
                                                       "available after training [s]"))
        python = tp.resolve_python(text["python"])
        self.command = tp.trainer_command(
            python, text["config"] or default_config_path() or "", text["backend"], text["device"],
            text["num_envs"], text["max_iterations"], text["output"], text["overrides"],
            text["nproc"], text["interface"], text["target"])
        self.env = tp.trainer_env(python, os.environ)
        self.exit_status = None  # type: Optional[int]
        self.policy = ""  # absolute path, once the trainer reports it
        self._process = None  # type: Optional[subprocess.Popen]
        self._lines = queue.Queue()  # type: queue.Queue
        self._tail = collections.deque(maxlen=TAIL_LINES)  # type: collections.deque
        self._signals = 0
        self._last_iteration = None  # type: Optional[Dict[str, Any]]
        self._progress_pub = self.create_publisher(String, "~/progress", PROGRESS_QOS)
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", DIAGNOSTICS_QOS)
        self._policy_pub = self.create_publisher(String, "~/policy", POLICY_QOS)
        self.create_timer(RELAY_PERIOD_S, self._relay)

    def _param(self, name, default, description):
        return declare_read_only(self, name, default, description, dynamic_typing=True)

    # -- trainer process ------------------------------------------------------------------
    def start(self) -> None:
        """Start the trainer (unless a stop was already requested) and its output reader."""
        if self._signals:
            self.exit_status = 130
            return
        self.get_logger().info("starting trainer: %s" % " ".join(self.command))
        self._process = subprocess.Popen(self.command, env=self.env, stdout=subprocess.PIPE,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         universal_newlines=True, bufsize=1, start_new_session=True)
        threading.Thread(target=self._read, args=(self._process.stdout,), name="trainer_output",
                         daemon=True).start()
        self._publish_diagnostics(DiagnosticStatus.OK, "starting trainer")

    def _read(self, stream) -> None:
        for line in stream:
            self._lines.put(line)
        self._lines.put(EOF)

    def request_stop(self, signum: int) -> None:
        """Signal handler (main thread): forward Ctrl-C to the trainer, see the module doc."""
        self._signals += 1
        process = self._process
        if process is None or process.poll() is not None:
            return
        if self._signals == 1:
            self.get_logger().info("%s: asking the trainer to save a checkpoint and the policy, "
                                   "then stop" % signal.Signals(signum).name)
            process.send_signal(signal.SIGINT)
        elif signum == signal.SIGTERM:
            self.get_logger().warning("SIGTERM again: terminating the trainer now")
            process.send_signal(signal.SIGTERM)

    @property
    def stop_requested(self) -> bool:
        return self._signals > 0

    # -- relaying -------------------------------------------------------------------------
    def _relay(self) -> None:
        while self.exit_status is None:
            try:
                line = self._lines.get_nowait()
            except queue.Empty:
                return
            if line is EOF:
                self._on_exit(self._process.wait())
            else:
                self._on_line(line)

    def _on_line(self, line: str) -> None:
        try:
            event = protocol.parse_line(line)
        except ValueError as exc:
            self.get_logger().warning(str(exc))
            return
        if event is None:
            line = line.rstrip()
            self._tail.append(line)
            self.get_logger().info(line)
            return
        self._progress_pub.publish(String(data=line.rstrip()[len(protocol.PREFIX):]))
        if event["event"] == "start":
            self.policy = event.get("policy", "")
        elif event["event"] == "iteration":
            self._last_iteration = event
            self._publish_diagnostics(DiagnosticStatus.OK, "training: iteration %s/%s"
                                      % (event.get("iteration"), event.get("max_iterations")))
        elif event["event"] == "done":
            self.policy = event.get("policy", self.policy)

    def _on_exit(self, returncode: int) -> None:
        self.exit_status = tp.exit_status(returncode)
        how = tp.describe_exit(returncode)
        if returncode == 0 and self.policy:
            self._policy_pub.publish(String(data=self.policy))
            self.get_logger().info("trainer %s: policy %s (latched on %s)"
                                   % (how, self.policy, self._policy_pub.topic_name))
            self._publish_diagnostics(DiagnosticStatus.OK, "done: %s" % self.policy)
        elif self.stop_requested and returncode in (130, -signal.SIGINT):
            self.get_logger().warning("trainer %s; what it trained so far is in %s"
                                      % (how, self.policy or "its output folder"))
            self._publish_diagnostics(DiagnosticStatus.WARN, "stopped early: %s" % how)
        else:
            self.get_logger().error("trainer %s; its last output:\n%s" % (how, "\n".join(self._tail)))
            self._publish_diagnostics(DiagnosticStatus.ERROR, "trainer %s" % how)

    def _publish_diagnostics(self, level: int, message: str) -> None:
        values = protocol.iteration_summary(self._last_iteration) if self._last_iteration else []
        msg = DiagnosticArray()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.status = [DiagnosticStatus(level=level, name="reach_rl_train", message=message,
                                       hardware_id=self.policy,
                                       values=[KeyValue(key=k, value=v) for k, v in values])]
        self._diag_pub.publish(msg)


def main(args: Optional[List[str]] = None) -> int:
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    try:
        node = TrainNode()
    except ValueError as exc:  # TrainerArgumentError, and rclpy's parameter errors
        sys.stderr.write("train_node: refusing to start: %s\n" % exc)
        rclpy.try_shutdown()
        return 2
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, _frame: node.request_stop(signum))
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        node.start()
    except OSError as exc:
        node.get_logger().error("cannot start the trainer %s: %s" % (node.command[0], exc))
        node.exit_status = 2
    # Short spins keep the main thread free for the signal handlers.
    while node.exit_status is None:
        executor.spin_once(timeout_sec=0.1)
    if node.exit_status == 0 and node.linger > 0 and not node.stop_requested:
        node.get_logger().info("policy path stays latched for %g s (Ctrl-C ends it now)" % node.linger)
        deadline = time.monotonic() + node.linger
        while time.monotonic() < deadline and not node.stop_requested:
            executor.spin_once(timeout_sec=0.1)
    status = node.exit_status
    wait_acknowledged((node._diag_pub, node._policy_pub), 1.0)  # the last status and policy path
    executor.shutdown()
    node.destroy_node()
    rclpy.try_shutdown()
    return status


if __name__ == "__main__":
    sys.exit(main())
