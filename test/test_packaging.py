"""The colcon install space registers reach_rl, reach_rl_train and reach_rl_deploy in the ament
index, with their package.xml, launch/, config/ and ROS executables (run by `make test`, after
`colcon build`; skips when the ROS packaging tools or the install space are absent)."""
import os

import pytest

ament_index = pytest.importorskip(
    "ament_index_python.packages",
    reason="ament_index_python is not installed (ROS 2 wheels absent: run `make setup`)",
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# package -> (share subdirectory, file that must be there), and its executables.
SHARE = {
    "reach_rl_train": [("config", "train.yaml")],
    "reach_rl_deploy": [("config", None), ("launch", None)],
    "reach_rl_sim": [],
}
EXECUTABLES = {
    "reach_rl_train": ["train_node"],
    "reach_rl_deploy": ["deploy_node"],
    "reach_rl_sim": ["sim_robot_node", "franka_standin_node", "franka_sim"],
}


def _share(name):
    try:
        return ament_index.get_package_share_directory(name)
    except ament_index.PackageNotFoundError:
        if "reach_rl" not in ament_index.get_packages_with_prefixes():
            pytest.skip("reach_rl is not in the ament index: run under `colcon test` "
                        "(make test) or source install/setup.bash after `colcon build`")
        raise


def _files_in(root, sub):
    return sorted(os.listdir(os.path.join(ROOT, sub))) if os.path.isdir(os.path.join(ROOT, sub)) else []


@pytest.mark.parametrize("name", ["reach_rl", "reach_rl_train", "reach_rl_deploy", "reach_rl_sim"])
def test_package_registered_with_package_xml(name):
    share = _share(name)
    assert os.path.isfile(os.path.join(share, "package.xml"))


@pytest.mark.parametrize("name", sorted(SHARE))
def test_share_has_config_and_launch(name):
    share = _share(name)
    for sub, required in SHARE[name]:
        path = os.path.join(share, sub)
        assert os.path.isdir(path), "%s has no %s/ in %s" % (name, sub, share)
        if required:
            assert os.path.isfile(os.path.join(path, required))


def test_source_files_go_to_the_right_package():
    """Every launch/config file of the repository is installed for exactly one ROS package."""
    train, deploy = _share("reach_rl_train"), _share("reach_rl_deploy")
    for sub, suffix in (("launch", ".launch.py"), ("config", ".yaml")):
        for f in _files_in(ROOT, sub):
            if not f.endswith(suffix):
                continue
            owners = [s for s in (train, deploy) if os.path.isfile(os.path.join(s, sub, f))]
            assert len(owners) == 1, "%s/%s installed into %s" % (sub, f, owners or "no package")
            expected = train if f.startswith("train") else deploy
            assert owners == [expected], "%s/%s belongs to %s" % (sub, f, expected)


@pytest.mark.parametrize("name", sorted(EXECUTABLES))
def test_ros_executables(name):
    """What `ros2 run <name> <exe>` and launch_ros' Node(package=, executable=) look up."""
    prefix = ament_index.get_package_prefix(name)
    for exe in EXECUTABLES[name]:
        path = os.path.join(prefix, "lib", name, exe)
        assert os.path.isfile(path) and os.access(path, os.X_OK), path


def test_launch_ros_resolves_executables():
    substitutions = pytest.importorskip(
        "launch_ros.substitutions", reason="launch_ros is not installed (../shared/ros2-tools)")
    launch = pytest.importorskip("launch")
    context = launch.LaunchContext()
    for name, exes in sorted(EXECUTABLES.items()):
        for exe in exes:
            path = substitutions.ExecutableInPackage(exe, name).perform(context)
            assert os.access(path, os.X_OK), path
