"""Train a reach policy: ``ros2 launch reach_rl_train train.launch.py max_iterations:=5 output:=/tmp/p.onnx``.

Starts ``train_node`` (reach_rl_train/train_node.py), which runs the trainer as a child
process and relays its progress to ``/diagnostics`` and ``/reach_rl_train/progress``; the
policy path is latched on ``/reach_rl_train/policy`` when training succeeds. Ctrl-C saves a
checkpoint and the policy trained so far. The arguments are the node's text parameters
(reach_rl_train/train_parameters.py); empty ones keep the config's values, and the node
checks every one.
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue

from reach_rl_train.train_parameters import TEXT_PARAMETERS


def generate_launch_description():
    return LaunchDescription([
        *(DeclareLaunchArgument(name, default_value="", description=description)
          for name, description in TEXT_PARAMETERS),
        Node(
            package="reach_rl_train",
            executable="train_node",
            output="screen",
            # Text, not YAML-typed: the node parses and checks each value itself.
            parameters=[{name: ParameterValue(LaunchConfiguration(name), value_type=str)
                         for name, _ in TEXT_PARAMETERS}],
            # After Ctrl-C the trainer saves a checkpoint and exports the policy: give it time
            # before launch escalates to SIGTERM [s].
            sigterm_timeout="60",
        ),
    ])
