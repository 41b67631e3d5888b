"""``reach-rl-targets``: send a sequence of TCP targets to the deploy node and report how close
the arm got to each, and whether the robot reported a reflex.

    reach-rl-targets --robot fr3 --hold 3.0 0.45,0.2,0.35 0.5,-0.2,0.5 0.35,0.05,0.25
    reach-rl-targets 0.45,0.2,0.35,0,3.1416,0.5 0.5,-0.2,0.4,0,3.1416,-1   # poses (pose policy)
    reach-rl-targets --random 50 --policy runs/demo/libfranka_policy.onnx   # 50 held-out targets
                                                  # from the box that policy was trained on

Each target, x,y,z in metres in ``<robot>_link0`` (a point: geometry_msgs/PointStamped) or
x,y,z,roll,pitch,yaw with angles in rad (a pose: geometry_msgs/PoseStamped, the TCP frame's
orientation as tf2's ``setRPY``: about the fixed x, y, z axes in turn; 0,pi,yaw points the TCP
down), is published on ``--target-topic`` and held for ``--hold`` seconds, each from wherever the
last one left the arm. One run sends one kind, the kind the deploy node's policy takes (it is
checked against the topic's subscriber); ``--random`` draws poses for a pose policy (within its
down cone, any yaw). The TCP error [mm], and for a pose the orientation error [deg], are
computed from ``--joint-states`` by forward kinematics at the end of the hold, with the time
until the TCP first came within 1 cm (and ``--angle-tolerance``). While the deploy node
reports that it moves the arm to the ready pose, the first target waits. Reflexes are collected
from the simulated Franka (``/sim_robot/reflex``) and from ``/diagnostics`` (the deploy node's on
the libfranka interface, the franka_ros2 stand-in's on the topic path), and so is the smallest
distance of any joint to its position limits. Exit status 0 when the share of targets within
``--tolerance`` (and ``--angle-tolerance``) is at least ``--min-success`` (default: all) and no
reflex fired; 2 when no joint state comes, or the deploy node takes the other kind of target.
"""
import argparse
import math
import sys
import time
from typing import List, NamedTuple, Optional, Sequence, Tuple

import numpy as np

from reach_rl_core.franka_model import ROBOTS, tcp_pose, tcp_position
from reach_rl_core.orientation import (ORIENTATION_TOLERANCE, matrix_to_quaternion,
                                       numpy_uniform, orientation_error_angle,
                                       quaternion_to_matrix, rotation_from_rpy,
                                       sample_down_orientations)
from reach_rl_core.policy_file import POINT, POSE, TARGET_PERIOD_S
from reach_rl_deploy.deploy_controller import HOMING
from reach_rl_deploy.target_observer import Observer
from reach_rl_deploy.targets import MESSAGE_TYPES, Target, pose_target

DEFAULT_TARGETS = ("0.45,0.20,0.35", "0.50,-0.20,0.50", "0.35,0.05,0.25")
REACHED = 0.01  # m: "time to 1 cm"


def random_targets(count: int, seed: int, box) -> List[Tuple[float, float, float]]:
    """``count`` targets [m] drawn uniformly from ``box`` ((min xyz), (max xyz)) with ``seed``."""
    rng = np.random.default_rng(seed)
    low, high = np.asarray(box[0]), np.asarray(box[1])
    return [tuple(float(v) for v in low + (high - low) * rng.random(3)) for _ in range(count)]


def random_orientations(count: int, seed: int, down_cone: float) -> np.ndarray:
    """``count`` unit quaternions (x, y, z, w) of TCP orientations as a pose policy trained with
    ``down_cone`` [rad] saw them (z axis within the cone around straight down, any yaw), drawn
    with ``seed`` from a generator of their own (the positions stay those of a point run)."""
    rng = np.random.default_rng([seed, 1])
    return matrix_to_quaternion(sample_down_orientations(numpy_uniform(rng), count, down_cone))


def random_policy_targets(count: int, seed: int, path: str) -> List[Target]:
    """``count`` held-out targets of the policy file ``path``: positions from its box, and
    orientations from its down cone when it is a pose policy."""
    from reach_rl_deploy.policy_runtime import Policy

    policy = Policy(path)
    info = policy.info
    positions = random_targets(count, seed, (info.target_min, info.target_max))
    if not policy.pose:
        return [Target(np.array(p)) for p in positions]
    quaternions = random_orientations(count, seed, info.down_cone)
    return [pose_target(p, q) for p, q in zip(positions, quaternions)]


def parse_target(text: str) -> Tuple[float, ...]:
    """``"x,y,z"`` (metres) or ``"x,y,z,roll,pitch,yaw"`` (metres, rad) -> a tuple of 3 or 6;
    ValueError saying what is wrong."""
    parts = text.split(",")
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) not in (3, 6) or not all(np.isfinite(values)):
        raise ValueError("target %r must be x,y,z in metres, e.g. 0.45,0.2,0.35, or a pose "
                         "x,y,z,roll,pitch,yaw (rad), e.g. 0.45,0.2,0.35,0,3.1416,0" % text)
    return values


def target_from_values(values: Sequence[float]) -> Target:
    """A parsed target (:func:`parse_target`) as a Target: a point, or for six values a pose
    whose orientation is ``rotation_from_rpy(roll, pitch, yaw)`` (tf2's setRPY)."""
    if len(values) == 3:
        return Target(np.asarray(values, dtype=float))
    rotation = rotation_from_rpy(*values[3:])
    return pose_target(values[:3], matrix_to_quaternion(rotation))


def tcp_error(joint_positions: Sequence[float], target: Sequence[float]) -> float:
    """Distance [m] from the TCP at ``joint_positions`` [rad] to ``target`` [m, base frame]."""
    tcp = tcp_position(np.asarray(joint_positions, float))
    return float(np.linalg.norm(tcp - np.asarray(target)))


def orientation_error(joint_positions: Sequence[float], quaternion: Sequence[float]) -> float:
    """Angle [rad] between the TCP frame at ``joint_positions`` [rad] and the orientation
    ``quaternion`` (x, y, z, w, base frame)."""
    rotation = tcp_pose(np.asarray(joint_positions, float))[1]
    return float(orientation_error_angle(rotation, quaternion_to_matrix(np.asarray(quaternion,
                                                                                  float))))


def parse_args(argv: Optional[List[str]]):
    """The command line, with the targets resolved into ``args.target_list`` (Targets, all
    points or all poses) and ``--angle-tolerance`` into rad."""
    parser = argparse.ArgumentParser(prog="reach-rl-targets", description=__doc__.split("\n\n")[0])
    parser.add_argument("targets", nargs="*", default=list(DEFAULT_TARGETS),
                        metavar="x,y,z[,roll,pitch,yaw]",
                        help="targets in metres (and rad), base frame (default: three points)")
    parser.add_argument("--robot", default="fr3", choices=ROBOTS)
    parser.add_argument("--hold", type=float, default=None,
                        help="seconds per target (default: as in training, %g for points, %g "
                             "for poses)" % (TARGET_PERIOD_S[POINT], TARGET_PERIOD_S[POSE]))
    parser.add_argument("--tolerance", type=float, default=0.01, help="metres (default 0.01)")
    parser.add_argument("--angle-tolerance", type=float,
                        default=math.degrees(ORIENTATION_TOLERANCE),
                        help="degrees, poses only (default %g: training's success tolerance)"
                             % math.degrees(ORIENTATION_TOLERANCE))
    parser.add_argument("--random", type=int, default=0, metavar="N",
                        help="N targets drawn from the policy's target box (--policy) instead of "
                             "the listed ones; poses from its down cone for a pose policy")
    parser.add_argument("--policy", default="", metavar="FILE",
                        help="the policy file the deploy node runs: --random draws from what "
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
        args.target_list = (random_policy_targets(args.random, args.seed, args.policy) if args.random
                            else [target_from_values(parse_target(t)) for t in args.targets])
    except ValueError as exc:  # PolicyFileError included
        parser.error(str(exc))
    if len({t.quaternion is None for t in args.target_list}) > 1:
        parser.error("the targets mix points (x,y,z) and poses (x,y,z,roll,pitch,yaw): a run "
                     "sends the one kind the deploy node's policy takes")
    args.angle_tolerance = math.radians(args.angle_tolerance)
    if args.hold is None:
        args.hold = TARGET_PERIOD_S[POINT if args.target_list[0].quaternion is None else POSE]
    return args


class Result(NamedTuple):
    """How one held target went: final TCP error [m], final orientation error [rad] (nan for a
    point), time until within 1 cm (and the angle tolerance) [s] (nan: never)."""

    error: float
    angle: float
    reached: float


def hold_target(observer: Observer, target: Target, hold: float, angle_tolerance: float) -> Result:
    """Publish ``target`` for ``hold`` seconds and judge it (``angle_tolerance`` [rad]: poses)."""
    def errors() -> Tuple[float, float]:
        angle = (np.nan if target.quaternion is None
                 else orientation_error(observer.q, target.quaternion))
        return tcp_error(observer.q, target.position), angle

    start = time.monotonic()
    reached = np.nan
    while time.monotonic() - start < hold:
        observer.publish(target)  # republished: a late-joining deploy node still gets it
        error, angle = errors()
        if np.isnan(reached) and error < REACHED and not angle >= angle_tolerance:
            reached = time.monotonic() - start
        time.sleep(0.02)
    return Result(*errors(), reached)


def report(target: Target, result: Result) -> str:
    """One target's line."""
    text = "target (%.3f, %.3f, %.3f) m" % tuple(target.position)
    if target.quaternion is not None:
        text += " (%.3f, %.3f, %.3f, %.3f)" % tuple(target.quaternion)
    text += ": final error %6.1f mm" % (1000 * result.error)
    if target.quaternion is not None:
        text += " %5.1f deg" % math.degrees(result.angle)
    return text + " | time to 1 cm %s" % ("never" if np.isnan(result.reached)
                                          else "%.2f s" % result.reached)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    pose = args.target_list[0].quaternion is not None
    observer = Observer("reach_rl_targets", args.robot, args.joint_states, args.target_topic, pose)
    try:
        deadline = time.monotonic() + args.wait
        while observer.q is None and time.monotonic() < deadline:
            time.sleep(0.05)
        if observer.q is None:
            print("reach-rl-targets: no %s joint state on %s within %g s"
                  % (args.robot, args.joint_states, args.wait), file=sys.stderr)
            return 2
        time.sleep(1.5)  # let the deploy node's subscription match ours, and its first report come
        taken = observer.subscriber_types()
        sent = MESSAGE_TYPES["pose" if pose else "point"]
        if taken and sent not in taken:
            print("reach-rl-targets: %s takes %s, these targets are %s: give %s"
                  % (args.target_topic, ", ".join(sorted(taken)), sent,
                     "x,y,z" if pose else "x,y,z,roll,pitch,yaw"), file=sys.stderr)
            return 2
        while observer.deploy_status == HOMING and time.monotonic() < deadline + 30.0:
            time.sleep(0.1)
        results = []
        for target in args.target_list:
            results.append(hold_target(observer, target, args.hold, args.angle_tolerance))
            print(report(target, results[-1]), flush=True)
        print(summary(results, args.tolerance, observer.limit, observer.reflexes,
                      args.angle_tolerance))
        within = sum(succeeded(r, args.tolerance, args.angle_tolerance) for r in results)
        return 0 if within >= args.min_success * len(results) and not observer.reflexes else 1
    finally:
        observer.close()


def succeeded(result: Result, tolerance: float, angle_tolerance: float) -> bool:
    """Within ``tolerance`` [m] and, for a pose, ``angle_tolerance`` [rad]."""
    return result.error < tolerance and not result.angle >= angle_tolerance


def summary(results: Sequence[Result], tolerance: float, limit, reflexes,
            angle_tolerance: float = ORIENTATION_TOLERANCE) -> str:
    """The run's one-line result: successes, median errors (and orientation errors for poses),
    median time to 1 cm, smallest limit distance per joint [rad], reflexes."""
    errors = [r.error for r in results]
    angles = [r.angle for r in results if np.isfinite(r.angle)]
    reached = [r.reached for r in results if np.isfinite(r.reached)]
    within = sum(succeeded(r, tolerance, angle_tolerance) for r in results)
    return ("%d/%d targets within %.0f mm%s | median final error %.1f mm%s | median time to "
            "1 cm %s | closest joint to its limits %.3f rad (joint %d) | reflexes: %s"
            % (within, len(errors), 1000 * tolerance,
               " and %.0f deg" % math.degrees(angle_tolerance) if angles else "",
               1000 * float(np.median(errors)),
               ", %.1f deg" % math.degrees(float(np.median(angles))) if angles else "",
               "%.2f s" % float(np.median(reached)) if reached else "never",
               float(np.min(limit)), int(np.argmin(limit)) + 1,
               "; ".join(reflexes) if reflexes else "none"))


if __name__ == "__main__":
    sys.exit(main())
