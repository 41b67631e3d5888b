"""deploy_node's parameters have one declaration (deploy_parameters.py), and everything that
names them agrees with it: the running node's declared parameters and descriptors,
franka.launch.py's arguments, config/deploy.yaml (overrides only) and docs/parameters.md."""
import dataclasses
import pathlib

import numpy as np
import pytest
import yaml

from reach_rl_core.filter_limits import (DEFAULT_BRAKE_MARGIN, INTERFACE_DEFAULTS, LIBFRANKA,
                                         POSE_BRAKE_MARGIN, ROS2_CONTROL)
from reach_rl_core.franka_model import READY_POSE, joint_names
from reach_rl_core.safety_filter import FilterState, filter_step
from reach_rl_deploy.deploy_parameters import (DeployParameters, declarations, described,
                                               markdown_table)
from reach_rl_deploy.launch_plan.franka_plan import ARGUMENTS, CONTROLLER_NAME, TRAJECTORY_TOPIC

PACKAGE = pathlib.Path(__file__).resolve().parents[1]
DOCS = PACKAGE.parents[1] / "docs" / "parameters.md"
POLICY = str(PACKAGE / "test" / "policies" / "fr3_ros2_control.onnx")
FIELDS = {f.name: f for f in declarations()}


def test_every_parameter_is_declared_with_a_description_and_a_valid_default():
    for f in declarations():
        assert f.metadata["doc"], f.name
        assert DeployParameters().problems() == []
        if f.metadata["low"] is not None:
            assert f.metadata["low"] <= f.default <= f.metadata["high"], f.name


def test_docs_parameters_md_is_generated_from_the_declaration():
    assert DOCS.read_text() == markdown_table(), (
        "docs/parameters.md is stale: python -m reach_rl_deploy.deploy_parameters > "
        "docs/parameters.md")


def test_deploy_yaml_holds_only_declared_values_that_differ_from_the_defaults():
    config = yaml.safe_load((PACKAGE / "config" / "deploy.yaml").read_text())
    overrides = config["reach_rl_deploy"]["ros__parameters"] or {}
    for name, value in overrides.items():
        assert name in FIELDS, "deploy.yaml sets %s, which deploy_node does not declare" % name
        default = FIELDS[name].default
        assert value != (list(default) if isinstance(default, tuple) else default), (
            "deploy.yaml repeats %s's default %r" % (name, value))


def test_launch_arguments_take_the_declared_defaults_and_descriptions():
    for argument, parameter in (("interface", "interface"), ("policy", "policy"),
                                ("arm_id", "robot"), ("target_topic", "target_topic")):
        default, description = ARGUMENTS[argument]
        assert default == FIELDS[parameter].default
        assert description == described(parameter)
    assert TRAJECTORY_TOPIC.startswith(CONTROLLER_NAME + "/")


@pytest.mark.parametrize("change, message", [
    ({"interface": "velocity"}, "interface 'velocity': expected one of ros2_control, libfranka"),
    ({"velocity_fraction": 1.5}, "velocity_fraction 1.5: expected 0.01..1.0"),
    ({"state_timeout": 0.0}, "state_timeout 0.0: expected 0.001..1.0 s"),
    ({"cpu": -2}, "cpu -2: expected -1..1023"),
])
def test_values_outside_the_declaration_are_refused_saying_what_to_fix(change, message):
    p = dataclasses.replace(DeployParameters(), **change)
    with pytest.raises(ValueError, match=message.replace(".", r"\.").replace("(", r"\(")):
        p.resolved()


@pytest.mark.parametrize("interface", [ROS2_CONTROL, LIBFRANKA])
def test_minus_one_resolves_to_the_interfaces_own_values_and_given_ones_stay(interface):
    own = INTERFACE_DEFAULTS[interface]
    p = DeployParameters(interface=interface).resolved()
    assert (p.rt_priority, p.command_hold, p.accel_fraction, p.jerk_fraction) == (
        own.rt_priority, own.command_hold, own.accel_fraction, own.jerk_fraction)
    given = DeployParameters(interface=interface, rt_priority=0, accel_fraction=0.2).resolved()
    assert (given.rt_priority, given.accel_fraction) == (0, 0.2)


def test_the_node_declares_every_parameter_as_declared():
    rclpy = pytest.importorskip("rclpy", reason="needs ROS 2's rclpy (make setup)")
    from reach_rl_deploy.deploy_node import DeployNode

    rclpy.init(args=["--ros-args", "-p", "policy:=" + POLICY, "-p", "home_speed:=0.3"])
    try:
        node = DeployNode()
        try:
            names = list(FIELDS)
            values = {p.name: p.value for p in node.get_parameters(names)}
            descriptors = dict(zip(names, node.describe_parameters(names)))
        finally:
            node.destroy()
    finally:
        rclpy.try_shutdown()
    for name, f in FIELDS.items():
        expected = {"home_speed": 0.3, "policy": POLICY}.get(name, f.default)
        value = values[name]
        assert (tuple(value) if isinstance(f.default, tuple) else value) == expected, name
        descriptor = descriptors[name]
        assert descriptor.description == described(name) and descriptor.read_only, name
        ranges = list(descriptor.floating_point_range) + list(descriptor.integer_range)
        if f.metadata["low"] is None:
            assert not ranges, name
        else:
            assert (ranges[0].from_value, ranges[0].to_value) == (f.metadata["low"],
                                                                  f.metadata["high"]), name


@pytest.mark.parametrize("name, interface, margin", [
    ("fr3_ros2_control.onnx", ROS2_CONTROL, DEFAULT_BRAKE_MARGIN),
    ("fr3_libfranka_pose.onnx", LIBFRANKA, POSE_BRAKE_MARGIN)])
def test_the_filter_brakes_at_the_policy_files_margin_allowing_for_the_hold(name, interface,
                                                                           margin):
    """A pose file commands every joint to rest 0.215 rad inside its limits; the deploy filter
    does too, with the robot side's hold in its curve, so a stalled node keeps that clearance."""
    pytest.importorskip("rclpy", reason="needs ROS 2's rclpy (make setup)")
    from reach_rl_deploy.deploy_node import make_controller

    p = DeployParameters(policy=str(PACKAGE / "test" / "policies" / name),
                         interface=interface).resolved()
    limits = make_controller(p, list(joint_names("fr3"))).limits
    assert limits.brake_margin == margin
    assert limits.hold_time > INTERFACE_DEFAULTS[interface].command_hold
    q = np.array(READY_POSE, dtype=float)
    q[6] = limits.joint_limits.pos_max[6] - 0.2  # inside 0.215 rad, outside 0.05 rad
    goal = np.zeros(7)
    goal[6] = 1.0  # rad/s toward joint 7's upper limit
    command = filter_step(limits, FilterState.at_rest(), goal, q)[0].command[6]
    assert (command == 0.0) if margin == POSE_BRAKE_MARGIN else (command > 0.0)
