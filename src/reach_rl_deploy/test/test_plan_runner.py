"""reach-rl-launch: the plan's processes as launch_ros would start them, and its supervision of
real child processes (shell scripts standing in for the nodes; the nodes themselves on franka-sim:
reach_rl_sim's test_sim_launch.py)."""
import os
import signal
import subprocess
import sys
import time

import pytest
import yaml

from reach_rl_deploy.launch_plan import franka_plan, plan_runner
from reach_rl_deploy.launch_plan.franka_plan import NodeProcess, plan

SHARE = "/share/reach_rl_deploy"


def test_arguments_are_name_value_pairs():
    assert plan_runner.parse_arguments(["interface:=libfranka", "robot_ip:="]) == {
        "interface": "libfranka", "robot_ip": ""}
    with pytest.raises(ValueError, match="name:=value"):
        plan_runner.parse_arguments(["interface=libfranka"])


@pytest.mark.parametrize("args, started", [
    ({"interface": "libfranka"}, ["franka_sim", "deploy_node"]),
    ({}, ["franka_sim", "franka_standin_node", "deploy_node"]),
    ({"interface": "libfranka", "robot_ip": "172.16.0.2"}, ["deploy_node"]),
    ({"robot_ip": "172.16.0.2"}, ["deploy_node"]),  # + franka_ros2's bring-up and spawner
])
def test_each_mode_starts_the_plans_processes_robot_first(args, started, policy_file):
    p = plan(dict(args, policy=policy_file))
    processes = franka_plan.node_processes(p, SHARE)
    assert [n.executable for n in processes] == started
    deploy = processes[-1]
    assert (deploy.package, deploy.name) == ("reach_rl_deploy", "reach_rl_deploy")
    assert deploy.param_files == (SHARE + "/config/deploy.yaml",)
    assert deploy.parameters == p.deploy_params
    if "franka_standin_node" in started:
        assert processes[1].parameters == p.sim_params
    if started[0] == "franka_sim":  # the robot outlives the SIGINT that stops the nodes
        assert processes[0].env == {franka_plan.OUTLIVE_SIGINT: "1"}


def test_command_line_is_launch_ros_nodes(tmp_path, policy_file):
    """``--ros-args -r __node:=<name>``, the package's parameter files, then the plan's
    parameters in a file whose every value the node reads back with its type."""
    p = plan({"policy": policy_file, "interface": "libfranka"})
    deploy = franka_plan.node_processes(p, SHARE)[-1]
    runner = plan_runner.Runner([deploy], str(tmp_path), locate=lambda pkg, exe: "/x/%s" % exe)
    (name, argv, env), = runner.commands
    assert argv[:4] == ["/x/deploy_node", "--ros-args", "-r", "__node:=reach_rl_deploy"]
    assert argv[4:6] == ["--params-file", SHARE + "/config/deploy.yaml"]
    assert argv[6] == "--params-file" and len(argv) == 8
    with open(argv[7]) as f:
        assert yaml.safe_load(f) == {"/**": {"ros__parameters": p.deploy_params}}
    assert p.deploy_params["autostart"] is True  # a bool stays a bool, not the text "True"


def test_the_hardware_mode_is_left_to_ros2_launch(policy_file):
    with pytest.raises(ValueError, match="ros2 launch reach_rl_deploy franka.launch.py"):
        plan_runner.run({"policy": policy_file, "robot_ip": "172.16.0.2"})


def test_a_missing_package_says_to_build():
    with pytest.raises(FileNotFoundError, match="colcon build"):
        plan_runner.find_executable("reach_rl_no_such_package", "deploy_node")


# -- supervision of real processes --------------------------------------------------------------

def _script(folder, name, on_int):
    """An executable that logs its signals to ``folder/log`` and runs ``on_int`` on SIGINT."""
    path = folder / name
    path.write_text("#!/bin/sh\n"
                    "trap 'echo %s INT >> %s/log; %s' INT\n"
                    "trap 'echo %s TERM >> %s/log; exit 3' TERM\n"
                    "echo %s up\n"
                    "while true; do sleep 0.05; done\n"
                    % (name, folder, on_int, name, folder, name))
    path.chmod(0o755)
    return str(path)


def _runner(tmp_path, scripts, lines):
    processes = [NodeProcess("pkg", name, name) for name in scripts]
    paths = {name: _script(tmp_path, name, on_int) for name, on_int in scripts.items()}
    return plan_runner.Runner(processes, str(tmp_path), locate=lambda pkg, exe: paths[exe],
                              write=lines.append)


def _log(tmp_path):
    return (tmp_path / "log").read_text().split("\n")[:-1]


def test_stop_goes_in_reverse_start_order_and_escalates(tmp_path, monkeypatch):
    """The node stops first, then the robot; a process that ignores SIGINT gets SIGTERM."""
    monkeypatch.setattr(plan_runner, "SIGTERM_TIMEOUT", 0.5)
    lines = []
    runner = _runner(tmp_path, {"robot": "exit 0", "node": "true"}, lines)  # node ignores INT
    # Started with SIGINT ignored, as from a script's background job (CI): the children get it
    # back, or their shells could not trap it.
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        runner.start()
    finally:
        signal.signal(signal.SIGINT, previous)
    deadline = time.monotonic() + 5.0
    while sum(line.endswith(" up") for line in lines) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert runner.first_exit() is None
    codes = runner.stop()
    assert _log(tmp_path) == ["node INT", "node TERM", "robot INT"]
    assert codes == {"robot": 0, "node": 3}
    assert "[robot] robot up" in lines and "[node] node up" in lines  # output, with its name


def test_runner_exits_1_and_stops_the_rest_when_a_process_ends(tmp_path):
    """A process that dies on its own stops the others; killing the runner kills its processes."""
    robot = tmp_path / "robot"
    robot.write_text("#!/bin/sh\nsleep 0.3\nexit 7\n")
    robot.chmod(0o755)
    node = _script(tmp_path, "node", "exit 0")
    code = (
        "import sys; from reach_rl_deploy.launch_plan import plan_runner, franka_plan as f\n"
        "procs = [f.NodeProcess('p', 'robot', 'robot'), f.NodeProcess('p', 'node', 'node')]\n"
        "paths = {'robot': %r, 'node': %r}\n"
        "r = plan_runner.Runner(procs, %r, locate=lambda p, e: paths[e])\n"
        "r.start()\n"
        "import time\n"
        "while r.first_exit() is None: time.sleep(0.05)\n"
        "print('ended', r.first_exit(), r.stop(), flush=True)\n"
        % (str(robot), node, str(tmp_path)))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert "ended robot {'robot': 7, 'node': 0}" in out.stdout, out.stdout + out.stderr
    assert _log(tmp_path) == ["node INT"]


def test_processes_die_with_a_killed_runner(tmp_path):
    node = _script(tmp_path, "node", "exit 0")
    code = ("from reach_rl_deploy.launch_plan import plan_runner, franka_plan as f\n"
            "r = plan_runner.Runner([f.NodeProcess('p', 'node', 'node')], %r, "
            "locate=lambda p, e: %r, write=lambda line: None)\n"
            "r.start()\n"
            "print('pid', r.children[0][1].pid, flush=True)\n"
            "import time; time.sleep(60)\n" % (str(tmp_path), node))
    runner = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        line = ""
        while not line.startswith("pid"):
            line = runner.stdout.readline()
        child = int(line.split()[1])
        time.sleep(0.3)
        runner.send_signal(signal.SIGKILL)
        runner.wait(5.0)
        deadline = time.monotonic() + 5.0
        while os.path.exists("/proc/%d" % child) and time.monotonic() < deadline:
            time.sleep(0.05)
        # The child got SIGTERM (PR_SET_PDEATHSIG) and is gone (a zombie of init at most).
        assert _log(tmp_path) == ["node TERM"]
    finally:
        if runner.poll() is None:
            runner.kill()
