"""Train a reach policy: ``ros2 launch reach_rl_train train.launch.py max_iterations:=5 output:=/tmp/p.onnx``.

Starts ``train_node`` (reach_rl_train/train_node.py), which runs the trainer as a child
process and relays its progress to ``/diagnostics`` and ``/reach_rl_train/progress``; the
policy path is latched on ``/reach_rl_train/policy`` when training succeeds. Ctrl-C saves a
checkpoint and the policy trained so far. Empty numeric arguments keep the config's values;
the node checks every argument.
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare

ARGUMENTS = (
    ("config", PathJoinSubstitution([FindPackageShare("reach_rl_train"), "config", "train.yaml"]),
     "training YAML"),
    ("backend", "torch", "arm simulator: torch or isaacgym"),
    ("device", "", "cpu, cuda or cuda:N (empty: the config's run.device)"),
    ("num_envs", "", "parallel simulated arms (empty: the config's run.num_envs)"),
    ("max_iterations", "", "PPO iterations (empty: the config's run.max_iterations)"),
    ("output", "", "policy file to write, .onnx (empty: the config's run.out)"),
    ("python", "", "interpreter that runs the trainer, e.g. Isaac Gym's Python 3.8 "
                   "(empty: the one running the node)"),
    ("nproc", "1", "trainer processes under torchrun on this machine, one per GPU (torch.distributed)"),
)


def generate_launch_description():
    return LaunchDescription([
        *(DeclareLaunchArgument(name, default_value=default, description=description)
          for name, default, description in ARGUMENTS),
        Node(
            package="reach_rl_train",
            executable="train_node",
            output="screen",
            # Text, not YAML-typed: the node parses and checks each value itself.
            parameters=[{name: ParameterValue(LaunchConfiguration(name), value_type=str)
                         for name, _, _ in ARGUMENTS}],
            # After Ctrl-C the trainer saves a checkpoint and exports the policy: give it time
            # before launch escalates to SIGTERM [s].
            sigterm_timeout="60",
        ),
    ])
