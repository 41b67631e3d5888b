"""``reach-rl-targets``: send a sequence of TCP targets to the deploy node and report how close
the arm got to each, and whether the robot reported a reflex.

    reach-rl-targets --robot fr3 --hold 3.0 0.45,0.2,0.35 0.5,-0.2,0.5 0.35,0.05,0.25
    reach-rl-targets --random 50 --policy runs/demo/libfranka_policy.onnx   # 50 held-out targets
                                                  # from the box that policy was trained on

Each target (x,y,z in metres, in ``<robot>_link0``) is published on ``--target-topic``
(geometry_msgs/PointStamped) and held for ``--hold`` seconds, each from wherever the last one
left the arm; the TCP error [mm] is computed from ``--joint-states`` by forward kinematics at
the end of the hold, with the time until the TCP first came within 1 cm. While the deploy node
reports that it moves the arm to the ready pose, the first target waits. Reflexes are collected
from the simulated Franka (``/sim_robot/reflex``) and from ``/diagnostics`` (the deploy node's on
the libfranka interface, the franka_ros2 stand-in's on the topic path), and so is the smallest distance of any joint to its position limits.
Exit status 0 when the share of targets within ``--tolerance`` is at least ``--min-success``
(default: all) and no reflex fired.
"""
import argparse
import sys
import threading
import time
from typing import List, Optional, Sequence, Tuple

import numpy as np

from reach_rl_core.franka_model import (ROBOTS, joint_limits, joint_names, limit_distance,
                                        tcp_position)
from reach_rl_deploy.deploy_controller import HOMING, reorder_joint_state

DEFAULT_TARGETS = ("0.45,0.20,0.35", "0.50,-0.20,0.50", "0.35,0.05,0.25")
# /diagnostics statuses that report the robot's reflexes: the deploy node's (libfranka) and the
# franka_ros2 stand-in's (the topic path on franka-sim).
REFLEX_REPORTERS = ("reach_rl_deploy", "franka_standin")

def random_targets(count: int, seed: int, box) -> List[Tuple[float, float, float]]:
    """``count`` targets [m] drawn uniformly from ``box`` ((min xyz), (max xyz)) with ``seed``."""
    rng = np.random.default_rng(seed)
    low, high = np.asarray(box[0]), np.asarray(box[1])
    return [tuple(float(v) for v in low + (high - low) * rng.random(3)) for _ in range(count)]


def policy_box(path: str):
    """The target box ((min xyz), (max xyz)) [m, base frame] a policy file was trained on."""
    from reach_rl_deploy.policy_runtime import Policy

    info = Policy(path).info
    return info.target_min, info.target_max


def parse_target(text: str) -> Tuple[float, float, float]:
    """``"x,y,z"`` (metres) -> a tuple; ValueError saying what is wrong."""
    parts = text.split(",")
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) != 3 or not all(np.isfinite(values)):
        raise ValueError("target %r must be x,y,z in metres, e.g. 0.45,0.2,0.35" % text)
    return values  # type: ignore[return-value]


def tcp_error(joint_positions: Sequence[float], target: Sequence[float]) -> float:
    """Distance [m] from the TCP at ``joint_positions`` [rad] to ``target`` [m, base frame]."""
    return float(np.linalg.norm(tcp_position(np.asarray(joint_positions, float)) - np.asarray(target)))


def parse_args(argv: Optional[List[str]]):
    """The command line, with the targets [m] resolved into ``args.target_list``."""
    parser = argparse.ArgumentParser(prog="reach-rl-targets", description=__doc__.split("\n\n")[0])
    parser.add_argument("targets", nargs="*", default=list(DEFAULT_TARGETS), metavar="x,y,z",
                        help="targets in metres, base frame (default: three targets)")
    parser.add_argument("--robot", default="fr3", choices=ROBOTS)
    parser.add_argument("--hold", type=float, default=3.0, help="seconds per target (default 3)")
    parser.add_argument("--tolerance", type=float, default=0.01, help="metres (default 0.01)")
    parser.add_argument("--random", type=int, default=0, metavar="N",
                        help="N targets drawn from the policy's target box (--policy) instead of "
                             "the listed ones")
    parser.add_argument("--policy", default="", metavar="FILE",
                        help="the policy file the deploy node runs: --random draws from the box "
                             "it was trained on (its metadata)")
    parser.add_argument("--seed", type=int, default=12345, help="seed of --random (default 12345)")
    parser.add_argument("--min-success", type=float, default=1.0,
                        help="share of targets within tolerance for exit status 0 (default 1)")
    parser.add_argument("--target-topic", default="/reach_target")
    parser.add_argument("--joint-states", default="/joint_states")
    parser.add_argument("--wait", type=float, default=30.0,
                        help="seconds to wait for the first joint state (default 30)")
    args = parser.parse_args(argv)
    if args.random and not args.policy:
        parser.error("--random draws targets from the box the policy was trained on: "
                     "pass --policy FILE")
    try:
        args.target_list = (random_targets(args.random, args.seed, policy_box(args.policy))
                            if args.random else [parse_target(t) for t in args.targets])
    except ValueError as exc:  # PolicyFileError included
        parser.error(str(exc))
    return args


class Observer:
    """A run's ROS side: the arm's joint positions [rad] on ``joint_states`` (None: not read),
    each joint's smallest distance to its limits so far [rad], the deploy node's status,
    reflexes (the simulated Franka's and the deploy node's), and targets published in
    ``<robot>_link0`` on ``target_topic``. Its node spins on a thread of its own."""

    def __init__(self, name: str, robot: str = "fr3", joint_states: Optional[str] = "/joint_states",
                 target_topic: str = "/reach_target"):
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
        from geometry_msgs.msg import PointStamped
        from rclpy.executors import SingleThreadedExecutor
        from sensor_msgs.msg import JointState
        from std_msgs.msg import String

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
        self._target = PointStamped()
        self._target.header.frame_id = robot + "_link0"
        self._publisher = self.node.create_publisher(PointStamped, target_topic, 10)
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(self.node)
        self.spinner = threading.Thread(target=self.executor.spin, daemon=True)
        self.spinner.start()

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

    def publish(self, target: Sequence[float]) -> None:
        """Publish ``target`` [m, base frame]."""
        point = self._target.point
        point.x, point.y, point.z = (float(v) for v in target)
        self._publisher.publish(self._target)

    def close(self) -> None:
        import rclpy

        self.executor.shutdown()
        self.spinner.join(timeout=2.0)
        self.node.destroy_node()
        rclpy.try_shutdown()


def hold_target(observer: Observer, target, hold: float) -> Tuple[float, float]:
    """Publish ``target`` for ``hold`` seconds: (final TCP error [m], time to 1 cm [s] or nan)."""
    start = time.monotonic()
    reached = np.nan
    while time.monotonic() - start < hold:
        observer.publish(target)  # republished: a late-joining deploy node still gets it
        if np.isnan(reached) and tcp_error(observer.q, target) < 0.01:
            reached = time.monotonic() - start
        time.sleep(0.02)
    return tcp_error(observer.q, target), reached


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    observer = Observer("reach_rl_targets", args.robot, args.joint_states, args.target_topic)
    try:
        deadline = time.monotonic() + args.wait
        while observer.q is None and time.monotonic() < deadline:
            time.sleep(0.05)
        if observer.q is None:
            print("reach-rl-targets: no %s joint state on %s within %g s"
                  % (args.robot, args.joint_states, args.wait), file=sys.stderr)
            return 2
        time.sleep(1.5)  # let the deploy node's subscription match ours, and its first report come
        while observer.deploy_status == HOMING and time.monotonic() < deadline + 30.0:
            time.sleep(0.1)
        errors, times = [], []
        for target in args.target_list:
            error, reached = hold_target(observer, target, args.hold)
            errors.append(error)
            times.append(reached)
            print("target (%.3f, %.3f, %.3f) m: final error %6.1f mm | time to 1 cm %s"
                  % (tuple(target) + (1000 * error, "never" if np.isnan(reached)
                                      else "%.2f s" % reached)), flush=True)
        within = sum(e < args.tolerance for e in errors)
        print(summary(errors, times, args.tolerance, observer.limit, observer.reflexes))
        return 0 if within >= args.min_success * len(errors) and not observer.reflexes else 1
    finally:
        observer.close()


def summary(errors, times, tolerance: float, limit, reflexes) -> str:
    """The run's one-line result: errors [m], times to 1 cm [s] (nan: never), smallest limit
    distance per joint [rad]."""
    reached = [t for t in times if np.isfinite(t)]
    within = sum(e < tolerance for e in errors)
    return ("%d/%d targets within %.0f mm | median final error %.1f mm | median time to 1 cm %s | "
            "closest joint to its limits %.3f rad (joint %d) | reflexes: %s"
            % (within, len(errors), 1000 * tolerance, 1000 * float(np.median(errors)),
               "%.2f s" % float(np.median(reached)) if reached else "never",
               float(np.min(limit)), int(np.argmin(limit)) + 1,
               "; ".join(reflexes) if reflexes else "none"))


if __name__ == "__main__":
    sys.exit(main())
