"""Deploy a reach policy on a Franka FR3/Panda: real arm, franka_ros2 fake hardware, or the
package's simulated Franka.

    ros2 launch reach_rl_deploy franka.launch.py sim:=true policy:=/path/policy.onnx
    ros2 launch reach_rl_deploy franka.launch.py robot_ip:=172.16.0.2 policy:=/path/policy.onnx

What starts for which arguments is decided in reach_rl_deploy.launch_plan.franka_plan (unit-tested).
"""
from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration

from reach_rl_deploy.launch_plan import franka_plan


def _actions(context):
    values = {name: LaunchConfiguration(name).perform(context) for name in franka_plan.ARGUMENTS}
    plan = franka_plan.plan(values)
    return franka_plan.launch_actions(plan, get_package_share_directory("reach_rl_deploy"))


def generate_launch_description():
    arguments = [DeclareLaunchArgument(name, default_value=default, description=description)
                 for name, (default, description) in franka_plan.ARGUMENTS.items()]
    return LaunchDescription(arguments + [OpaqueFunction(function=_actions)])
