"""The colcon install space registers the four packages in the ament index, with their
package.xml, launch/, config/ and ROS executables (run by `make test`, after `colcon build`;
skips when the ROS packaging tools or the install space are absent)."""
import os

import pytest

ament_index = pytest.importorskip(
    "ament_index_python.packages",
    reason="ament_index_python is not installed (ROS 2 wheels absent: run `make setup`)",
)

from source_tree import PACKAGES, REPO

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
        if "reach_rl_core" not in ament_index.get_packages_with_prefixes():
            pytest.skip("reach_rl is not in the ament index: run under `colcon test` "
                        "(make test) or source install/setup.bash after `colcon build`")
        raise


@pytest.mark.parametrize("name", PACKAGES)
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


@pytest.mark.parametrize("name", PACKAGES)
def test_every_launch_and_config_file_is_installed(name):
    """Each file in a package's launch/ and config/ lands in that package's share directory."""
    for sub in ("launch", "config"):
        folder = REPO / "src" / name / sub
        for f in sorted(os.listdir(folder)) if folder.is_dir() else []:
            assert os.path.isfile(os.path.join(_share(name), sub, f)), "%s/%s/%s" % (name, sub, f)


@pytest.mark.parametrize("name", sorted(EXECUTABLES))
def test_ros_executables(name):
    """What `ros2 run <name> <exe>` and launch_ros' Node(package=, executable=) look up."""
    prefix = ament_index.get_package_prefix(name)
    for exe in EXECUTABLES[name]:
        path = os.path.join(prefix, "lib", name, exe)
        assert os.path.isfile(path) and os.access(path, os.X_OK), path


def test_launch_ros_resolves_executables():
    substitutions = pytest.importorskip(
        "launch_ros.substitutions", reason="needs launch_ros from a ROS 2 install (not on PyPI); "
        "test_ros_executables looks up the same paths")
    launch = pytest.importorskip("launch")
    context = launch.LaunchContext()
    for name, exes in sorted(EXECUTABLES.items()):
        for exe in exes:
            path = substitutions.ExecutableInPackage(exe, name).perform(context)
            assert os.access(path, os.X_OK), path
