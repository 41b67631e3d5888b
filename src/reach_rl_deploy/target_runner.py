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
from the simulated Franka (``/sim_robot/reflex``) and from the deploy node's ``/diagnostics``
(libfranka interface), and so is the smallest distance of any joint to its position limits.
Exit status 0 when the share of targets within ``--tolerance`` is at least ``--min-success``
(default: all) and no reflex fired.
"""
import argparse
import sys
import threading
import time
from typing import List, Optional, Sequence, Tuple

import numpy as np

from reach_rl_core.franka_model import ROBOTS, joint_limits, limit_distance, tcp_position

DEFAULT_TARGETS = ("0.45,0.20,0.35", "0.50,-0.20,0.50", "0.35,0.05,0.25")
def random_targets(count: int, seed: int, box) -> List[Tuple[float, float, float]]:
    """``count`` targets [m] drawn uniformly from ``box`` ((min xyz), (max xyz)) with ``seed``."""
    rng = np.random.default_rng(seed)
    low, high = np.asarray(box[0]), np.asarray(box[1])
    return [tuple(float(v) for v in low + (high - low) * rng.random(3)) for _ in range(count)]


def policy_box(path: str):
    """The target box ((min xyz), (max xyz)) [m, base frame] a policy file was trained on."""
    from reach_rl_core.policy_file import Policy

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


def main(argv: Optional[List[str]] = None) -> int:
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
        targets = (random_targets(args.random, args.seed, policy_box(args.policy)) if args.random
                   else [parse_target(t) for t in args.targets])
    except ValueError as exc:  # PolicyFileError included
        parser.error(str(exc))

    import rclpy
    from geometry_msgs.msg import PointStamped
    from rclpy.executors import SingleThreadedExecutor
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
    from sensor_msgs.msg import JointState
    from std_msgs.msg import String

    from reach_rl_deploy.deploy_controller import HOMING, reorder_joint_state
    from reach_rl_core.franka_model import joint_names
    from reach_rl_core.ros_qos import reliable

    rclpy.init()
    node = rclpy.create_node("reach_rl_targets")
    names = joint_names(args.robot)
    limits = joint_limits(args.robot)
    latest = {"limit": np.full(7, np.inf), "deploy": ""}  # q [rad], each joint's smallest limit
    # distance so far [rad], the deploy node's status
    reflexes = []  # type: List[str]

    def on_state(msg):
        try:
            latest["q"] = reorder_joint_state(msg.name, msg.position, msg.velocity or
                                              [0.0] * len(msg.name), names)[0]
        except ValueError:
            return
        latest["limit"] = np.minimum(latest["limit"], limit_distance(
            np.asarray(latest["q"], float), limits.pos_min, limits.pos_max))

    def on_diagnostics(msg):
        for status in msg.status:
            if status.name != "reach_rl_deploy":
                continue
            latest["deploy"] = status.message
            if status.level == DiagnosticStatus.ERROR and status.message.startswith("reflex"):
                if status.message not in reflexes:
                    reflexes.append(status.message)

    node.create_subscription(JointState, args.joint_states, on_state, 10)
    node.create_subscription(String, "/sim_robot/reflex", lambda m: reflexes.append(m.data),
                             reliable(10, latched=True))
    node.create_subscription(DiagnosticArray, "/diagnostics", on_diagnostics, 10)
    publisher = node.create_publisher(PointStamped, args.target_topic, 10)
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()

    deadline = time.monotonic() + args.wait
    while "q" not in latest and time.monotonic() < deadline:
        time.sleep(0.05)
    if "q" not in latest:
        print("reach-rl-targets: no %s joint state on %s within %g s" % (args.robot, args.joint_states,
                                                                        args.wait), file=sys.stderr)
        return 2
    time.sleep(1.5)  # let the deploy node's subscription match ours, and its first report come
    while latest["deploy"] == HOMING and time.monotonic() < deadline + 30.0:
        time.sleep(0.1)
    errors, times = [], []
    for target in targets:
        msg = PointStamped()
        msg.header.frame_id = args.robot + "_link0"
        msg.point.x, msg.point.y, msg.point.z = target
        start = time.monotonic()
        reached = None
        while time.monotonic() - start < args.hold:
            publisher.publish(msg)  # republished: a late-joining deploy node still gets it
            if reached is None and tcp_error(latest["q"], target) < 0.01:
                reached = time.monotonic() - start
            time.sleep(0.02)
        error = tcp_error(latest["q"], target)
        errors.append(error)
        times.append(reached if reached is not None else np.nan)
        print("target (%.3f, %.3f, %.3f) m: final error %6.1f mm | time to 1 cm %s"
              % (target + (1000 * error, "%.2f s" % reached if reached is not None else "never")),
              flush=True)
    within = sum(e < args.tolerance for e in errors)
    ok = within >= args.min_success * len(errors) and not reflexes
    reached_times = [t for t in times if np.isfinite(t)]
    print("%d/%d targets within %.0f mm | median final error %.1f mm | median time to 1 cm %s | "
          "closest joint to its limits %.3f rad (joint %d) | reflexes: %s"
          % (within, len(errors), 1000 * args.tolerance, 1000 * float(np.median(errors)),
             "%.2f s" % float(np.median(reached_times)) if reached_times else "never",
             float(np.min(latest["limit"])), int(np.argmin(latest["limit"])) + 1,
             "; ".join(reflexes) if reflexes else "none"))
    executor.shutdown()
    spinner.join(timeout=2.0)
    node.destroy_node()
    rclpy.try_shutdown()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
