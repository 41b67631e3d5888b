"""The deploy node's two ways to reach the arm, one module each, behind :class:`DeployInterface`.

* ``ros2_control`` (:mod:`.ros2_control`): one trajectory per policy step for franka_ros2's
  joint_trajectory_controller, which interpolates it at 1 kHz in C++;
* ``libfranka`` (:mod:`.libfranka`): the policy at its own rate over franky-control's 1 kHz C++
  loop (:mod:`.franky_loop`).

An interface owns its loop (run on a thread of the node's) and its recovery. It gets what it
needs in a :class:`LoopContext`: the ROS node only as a factory of its own publishers,
subscriptions and services and as its logger, the rest as plain values and callables.
"""
from typing import Callable, List, NamedTuple, Optional, Protocol, Tuple

from rclpy.node import Node

from reach_rl_deploy.deploy_controller import DeployController, JointSample
from reach_rl_deploy.targets import Target


class LoopInputs(NamedTuple):
    """What a loop reads from the node every tick."""

    target: Optional[Target]  # m (and orientation), base frame; None: none
    enabled: bool
    stopping: bool  # SIGINT/SIGTERM: ramp to zero, let the motion end, return


class LoopContext(NamedTuple):
    """What the node hands an interface."""

    ros: Node  # creates the interface's publishers, subscriptions, services; logs
    controller: DeployController  # watchdog, homing, policy, safety filter
    joint_names: List[str]  # the arm's, in the policy's order
    inputs: Callable[[], LoopInputs]  # this tick's target, enable and stop flags
    account: Callable[[Optional[JointSample]], None]  # one tick done (the state it used)
    # called after every tick with monotonic now [s]; None in production (test stalls use it)
    after_tick: Optional[Callable[[float], None]] = None


class DeployInterface(Protocol):
    """What the node asks of an interface."""

    name: str  # for logs and /diagnostics: the topic, or "libfranka:<robot_ip>"

    def run(self) -> bool:
        """Policy ticks on the calling thread until ``inputs().stopping`` and the arm at rest;
        False if the loop failed (after bringing the arm to rest as far as it can)."""

    def fault(self) -> str:
        """Why motion cannot work now ('' when it can), for ``~/enable`` and /diagnostics."""

    def activate(self) -> str:
        """On ``~/enable true``: prepare the robot side ('' when ready, else why not)."""

    def diagnostic_values(self) -> List[Tuple[str, str]]:
        """The interface's key/value pairs for /diagnostics."""

    def timing_lines(self) -> List[str]:
        """The interface's figures over the whole run, logged at exit."""

    def finish(self) -> None:
        """After the loop ended: e.g. wait until the last command was acknowledged."""

    def destroy(self) -> None:
        """Release what the interface created besides ROS endpoints of the node."""
