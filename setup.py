"""reach_rl: one colcon (ament_python) package that provides the ROS packages
reach_rl_train, reach_rl_deploy and reach_rl_sim (the simulated robots, not needed on a robot).

Python packages live under src/. Besides `reach_rl` itself, the ament index gets
`reach_rl_train` and `reach_rl_deploy`, each with its package.xml, launch/ and config/
files, and ROS executables in lib/<name>/ (small wrappers around the console scripts),
so that `ros2 run reach_rl_deploy deploy_node` and
`Node(package='reach_rl_deploy', executable='deploy_node')` resolve.
"""
from glob import glob
import os

from setuptools import find_packages, setup

PACKAGE = "reach_rl"
ROS_PACKAGES = ("reach_rl_train", "reach_rl_deploy", "reach_rl_sim")

# Which launch and config files belong to which ROS package (globs: files added later are picked up).
SHARE = {
    "reach_rl_train": {
        "launch": ["launch/train*.launch.py"],
        "config": ["config/train*.yaml"],
    },
    "reach_rl_deploy": {
        "launch": ["launch/*.launch.py"],  # everything that is not a train*.launch.py
        "config": ["config/*.yaml"],  # deploy.yaml, controller yaml, ...: everything not train*.yaml
    },
    "reach_rl_sim": {},  # executables only: the simulated robots (scripts/reach_rl_sim/)
}

HERE = os.path.dirname(os.path.abspath(__file__))


def _files(patterns, exclude=()):
    # Relative paths: setuptools requires data_files relative to setup.py's directory.
    out = set()
    for pattern in patterns:
        out.update(p for p in glob(os.path.join(HERE, pattern)) if os.path.isfile(p))
    excluded = set()
    for pattern in exclude:
        excluded.update(glob(os.path.join(HERE, pattern)))
    return sorted(os.path.relpath(p, HERE) for p in out - excluded)


def _data_files():
    data = [("share/ament_index/resource_index/packages", ["resource/" + PACKAGE])]
    train_patterns = [p for kind in SHARE["reach_rl_train"].values() for p in kind]
    for name in ROS_PACKAGES:
        data.append(("share/ament_index/resource_index/packages", ["resource/" + name]))
        data.append(("share/" + name, ["package.xml"]))
        for kind, patterns in SHARE[name].items():
            exclude = train_patterns if name == "reach_rl_deploy" else ()
            # Always listed, even when empty: an empty list still creates the directory.
            data.append(("share/%s/%s" % (name, kind), _files(patterns, exclude)))
        executables = _files(["scripts/%s/*" % name])
        if executables:
            data.append(("lib/" + name, executables))
    # Last: colcon-ros maps data_files source -> destination (last one wins) to check that
    # share/reach_rl/package.xml is installed, and warns otherwise.
    data.append(("share/" + PACKAGE, ["package.xml"]))
    return data


setup(
    name=PACKAGE,
    version="0.1.0",
    description="Franka arm reaching policy: PPO training (torch), ONNX export, "
    "and deployment behind a safety filter (ROS 2 Jazzy).",
    license="Apache-2.0",
    maintainer="reach_rl maintainers",
    maintainer_email="reach_rl@example.com",
    python_requires=">=3.8",
    package_dir={"": "src"},
    packages=find_packages(where="src", include=["reach_rl_core*", "reach_rl_train*", "reach_rl_deploy*", "reach_rl_sim*"]),
    data_files=_data_files(),
    zip_safe=False,
    # Deploy side: no torch. rclpy and the message packages come from ROS (rosdep or the
    # ros-jazzy-* wheels), not from here.
    install_requires=["numpy", "pyyaml", "onnxruntime"],
    extras_require={
        # Install torch pinned BEFORE this extra (see Makefile: torch==2.13.0), or pip may
        # resolve a multi-GB CUDA build.
        "train": ["torch", "onnx", "omegaconf", "tensorboard", "matplotlib"],
        "test": ["pytest>=8,<8.4"],  # launch_pytest (Jazzy) breaks on pytest 8.4
    },
    entry_points={
        "console_scripts": [
            "reach-rl-train = reach_rl_train.cli:train_main",
            "reach-rl-eval = reach_rl_train.cli:eval_main",
            "reach-rl-export = reach_rl_train.cli:export_main",
            "reach-rl-deploy = reach_rl_deploy.deploy_node:main",
            "reach-rl-sim-robot = reach_rl_sim.sim_robot_node:main",
            "reach-rl-franka-standin = reach_rl_sim.franka_standin_node:main",
            "reach-rl-targets = reach_rl_deploy.target_runner:main",
            "reach-rl-train-node = reach_rl_train.train_node:main",
        ],
    },
)
