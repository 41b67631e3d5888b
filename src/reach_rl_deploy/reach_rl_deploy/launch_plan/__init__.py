"""What `ros2 launch reach_rl_deploy franka.launch.py` starts: the pure plan (franka_plan.py) and
reach-rl-launch, which starts the same processes where ROS 2's launch is not installed
(plan_runner.py)."""
