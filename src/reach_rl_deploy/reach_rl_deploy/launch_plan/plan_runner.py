"""``reach-rl-launch``: start what ``franka.launch.py`` starts, without ROS 2's launch system.

    reach-rl-launch interface:=libfranka sim:=true policy:=$PWD/runs/demo/libfranka_policy.onnx
    reach-rl-launch sim:=true policy:=$PWD/runs/policy.onnx     # the topic path on franka-sim

The arguments are the launch file's (``name:=value``), read by the same :func:`franka_plan.plan`,
and the processes are the same :func:`franka_plan.node_processes`, started with the command
line launch_ros gives a ``Node``: the executable from the package's ``lib/<package>/``,
``--ros-args -r __node:=<name>``, the parameter files, then the plan's parameters as one more
parameter file. Each process's output lines are printed with its name in front.

The hardware mode (franka_ros2's bring-up and controller spawner) needs a ROS 2 install with
franka_ros2: use ``ros2 launch`` there. Unlike ``ros2 launch``, this runner stops everything when
any process ends on its own, and on Ctrl-C (SIGINT) or SIGTERM stops the processes in the reverse
of their start order, each with SIGINT, then SIGTERM after 5 s, then SIGKILL after 5 s more (the
timeouts launch uses), so the deploy node ends its motion against a robot that is still up. The
processes die with it when it is killed (SIGKILL included). Exit status: 0 after a requested stop
in which every process exited 0; else 1.
"""
import ctypes
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from typing import Callable, Dict, List, Optional, Sequence

import yaml

from reach_rl_deploy.launch_plan import franka_plan
from reach_rl_deploy.launch_plan.franka_plan import NodeProcess

SIGTERM_TIMEOUT = 5.0  # s after SIGINT (launch's sigterm_timeout)
SIGKILL_TIMEOUT = 5.0  # s after SIGTERM (launch's sigkill_timeout)
PR_SET_PDEATHSIG = 1  # prctl option: a signal for the child when its parent dies
_LIBC = ctypes.CDLL(None, use_errno=True)  # loaded here: a forked child must not load libraries


def parse_arguments(argv: Sequence[str]) -> Dict[str, str]:
    """``["name:=value", ...]`` -> ``{name: value}``; ValueError naming a word without ``:=``."""
    values = {}
    for word in argv:
        name, sep, value = word.partition(":=")
        if not sep or not name:
            raise ValueError("%r: arguments are name:=value, as for ros2 launch (e.g. "
                             "interface:=libfranka)" % word)
        values[name] = value
    return values


def parameter_file_text(parameters: Dict[str, object]) -> str:
    """What launch_ros writes for a Node's dict of parameters: every node's ``ros__parameters``."""
    return yaml.safe_dump({"/**": {"ros__parameters": dict(parameters)}}, sort_keys=True)


def command_line(process: NodeProcess, executable: str,
                 parameter_file: Optional[str]) -> List[str]:
    """The command that starts ``process``: ``executable`` is its path, ``parameter_file`` the
    file written from :attr:`NodeProcess.parameters` (None when it has none)."""
    files = list(process.param_files) + ([parameter_file] if parameter_file else [])
    args = [executable, "--ros-args", "-r", "__node:=%s" % process.name]
    for path in files:
        args += ["--params-file", path]
    return args


def find_executable(package: str, executable: str) -> str:
    """``<prefix of package>/lib/<package>/<executable>``, as ``ros2 run`` finds it; FileNotFoundError
    saying what to build."""
    from ament_index_python.packages import PackageNotFoundError, get_package_prefix

    try:
        prefix = get_package_prefix(package)
    except PackageNotFoundError:
        raise FileNotFoundError("package %s is not in the ament index: colcon build, then "
                                "source env.sh (or install/setup.bash)" % package) from None
    path = os.path.join(prefix, "lib", package, executable)
    if not os.access(path, os.X_OK):
        raise FileNotFoundError("%s is not an executable: colcon build %s again" % (path, package))
    return path


def _child_setup() -> None:
    """In the child, before exec: SIGTERM when the runner dies, however it dies; and SIGINT
    back to its default, so that the runner's SIGINT stops it even where the runner was started
    with SIGINT ignored (a script's background job: a shell cannot trap what it inherits
    ignored)."""
    _LIBC.prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM))
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Runner:
    """The plan's processes: started in order, their output relayed, stopped in reverse order."""

    def __init__(self, processes: Sequence[NodeProcess], workdir: str,
                 locate: Callable[[str, str], str] = find_executable,
                 write: Callable[[str], None] = print):
        self.commands = []  # (name, argv, env) in start order
        for index, process in enumerate(processes):
            parameter_file = None
            if process.parameters:
                parameter_file = os.path.join(workdir, "%d_%s.yaml" % (index, process.name))
                with open(parameter_file, "w") as f:
                    f.write(parameter_file_text(process.parameters))
            argv = command_line(process, locate(process.package, process.executable),
                                parameter_file)
            self.commands.append((process.name, argv, dict(os.environ, **process.env)))
        self.write = write
        self.children = []  # (name, Popen)
        self._readers = []  # type: List[threading.Thread]

    def start(self) -> None:
        for name, argv, env in self.commands:
            self.write("[reach-rl-launch] %s: %s" % (name, " ".join(argv)))
            # A session of its own: the terminal's Ctrl-C reaches the runner, which stops the
            # processes in order, not all of them at once.
            child = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True,
                                     start_new_session=True, preexec_fn=_child_setup)
            self.children.append((name, child))
            reader = threading.Thread(target=self._relay, args=(name, child), daemon=True)
            reader.start()
            self._readers.append(reader)

    def _relay(self, name: str, child: subprocess.Popen) -> None:
        for line in child.stdout:
            self.write("[%s] %s" % (name, line.rstrip("\n")))

    def first_exit(self) -> Optional[str]:
        """The name of a process that has ended, or None while all run."""
        for name, child in self.children:
            if child.poll() is not None:
                return name
        return None

    def stop(self) -> Dict[str, int]:
        """Stop every process, the last started first; their exit statuses by name."""
        for name, child in reversed(self.children):
            for sig, timeout in ((signal.SIGINT, SIGTERM_TIMEOUT),
                                 (signal.SIGTERM, SIGKILL_TIMEOUT), (signal.SIGKILL, None)):
                if child.poll() is not None:
                    break
                self.write("[reach-rl-launch] %s: sending %s" % (name, signal.Signals(sig).name))
                child.send_signal(sig)
                try:
                    child.wait(timeout)
                except subprocess.TimeoutExpired:
                    continue
        for reader in self._readers:
            reader.join(timeout=2.0)
        return {name: child.wait() for name, child in self.children}


def run(args: Dict[str, str], write: Callable[[str], None] = print) -> int:
    """Plan, start, supervise and stop; the exit status."""
    from ament_index_python.packages import get_package_share_directory

    launch_plan = franka_plan.plan(args)
    if launch_plan.mode == "hardware":
        raise ValueError("interface:=ros2_control on a real arm or fake hardware needs franka_ros2 "
                         "and ROS 2's launch system: ros2 launch reach_rl_deploy franka.launch.py "
                         "on a ROS 2 install (here: sim:=true, or interface:=libfranka)")
    processes = franka_plan.node_processes(
        launch_plan, get_package_share_directory("reach_rl_deploy"))
    stop_requested = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop_requested.set())
    with tempfile.TemporaryDirectory(prefix="reach_rl_launch_") as workdir:
        runner = Runner(processes, workdir, write=write)
        runner.start()
        ended = None
        while not stop_requested.is_set() and ended is None:
            ended = runner.first_exit()
            time.sleep(0.1)
        if ended is not None:
            write("[reach-rl-launch] %s ended on its own: stopping the others" % ended)
        codes = runner.stop()
    write("[reach-rl-launch] exit statuses: %s"
          % ", ".join("%s %d" % (name, code) for name, code in codes.items()))
    return 0 if ended is None and not any(codes.values()) else 1


def main(argv: Optional[List[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if any(word in ("-h", "--help") for word in argv):
        print(__doc__)
        print("Arguments (name:=value, default in brackets):")
        for name, (default, description) in franka_plan.ARGUMENTS.items():
            print("  %-18s %s [%s]" % (name, description, default))
        return 0
    try:
        return run(parse_arguments(argv), write=lambda line: print(line, flush=True))
    except (ValueError, FileNotFoundError) as exc:
        print("reach-rl-launch: %s" % exc, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
