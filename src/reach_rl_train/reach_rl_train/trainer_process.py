"""The trainer as a child process: its interpreter, command line, environment and exit status.

``train_node`` (and so ``train.launch.py``) runs ``<python> -m reach_rl_train.cli
--progress-json ...`` with the interpreter the user names, because Isaac Gym lives in its
own Python 3.8 environment. Everything here is plain functions on strings, so that bad
input (a missing interpreter, an unknown backend, a non-numeric count) is refused with a
clear message before anything starts.
"""
import os
import shlex
import shutil
import signal
import sys
from typing import Dict, List, Mapping, Optional, Sequence

from reach_rl_core.filter_limits import INTERFACES
from reach_rl_core.policy_file import TARGET_TYPES

BACKENDS = ("torch", "isaacgym")
TRAINER_MODULE = "reach_rl_train.cli"


class TrainerArgumentError(ValueError):
    """An argument of the trainer that cannot be used; the message says which and why."""


def resolve_python(name: str) -> str:
    """Absolute path of the interpreter ``name``: a path, or a command looked up on PATH.

    Empty means the interpreter running this code (``sys.executable``)."""
    if not name.strip():
        return sys.executable
    name = os.path.expanduser(name.strip())
    if os.sep in name:
        path = os.path.abspath(name)
        if not os.path.isfile(path):
            raise TrainerArgumentError("python interpreter %r does not exist" % name)
        if not os.access(path, os.X_OK):
            raise TrainerArgumentError("python interpreter %r is not executable" % name)
        return path
    found = shutil.which(name)
    if found is None:
        raise TrainerArgumentError("python interpreter %r not found on PATH (give a path, e.g. "
                                   "python:=/opt/isaacgym-env/bin/python)" % name)
    return os.path.abspath(found)


def parse_count(name: str, text: str) -> Optional[int]:
    """A positive integer argument given as text; None when empty (use the config's value)."""
    text = str(text).strip()
    if not text:
        return None
    try:
        value = int(text)
    except ValueError:
        raise TrainerArgumentError("%s must be a positive integer, got %r" % (name, text)) from None
    if value <= 0:
        raise TrainerArgumentError("%s must be a positive integer, got %d" % (name, value))
    return value


def check_choice(name: str, value: str, known: Sequence[str]) -> str:
    """``value`` if it is one of ``known`` ('' keeps the config's)."""
    value = value.strip()
    if value and value not in known:
        raise TrainerArgumentError("unknown %s %r (known: %s)" % (name, value, ", ".join(known)))
    return value


def split_overrides(text: str) -> List[str]:
    """``section.key=value`` config overrides from one shell-quoted string."""
    try:
        words = shlex.split(text)
    except ValueError as exc:
        raise TrainerArgumentError("overrides %r: %s" % (text, exc)) from None
    for word in words:
        if "=" not in word or "." not in word.split("=", 1)[0]:
            raise TrainerArgumentError("override %r is not section.key=value" % word)
    return words


def trainer_command(python: str, config: str = "", backend: str = "", device: str = "",
                    num_envs: str = "", max_iterations: str = "", output: str = "",
                    overrides: str = "", nproc: str = "", interface: str = "",
                    target: str = "") -> List[str]:
    """The trainer's argv. Arguments are text as they come from ROS parameters; empty ones
    keep the config's value. ``python`` must already be resolved (``resolve_python``).
    ``nproc`` > 1 runs that many trainer processes on this machine under torchrun
    (``torch.distributed.run --standalone``; each owns one GPU, or shares the CPU; see
    ``reach_rl_train.distributed``), rank 0 printing the progress.
    Raises TrainerArgumentError on any value that cannot be used."""
    backend = check_choice("backend", backend, BACKENDS)
    interface = check_choice("interface", interface, INTERFACES)
    target = check_choice("target", target, TARGET_TYPES)
    envs = parse_count("num_envs", num_envs)
    iterations = parse_count("max_iterations", max_iterations)
    processes = parse_count("nproc", nproc) or 1
    extra = split_overrides(overrides)
    config = config.strip()
    if config and not os.path.isfile(config):
        raise TrainerArgumentError("config file %r does not exist" % config)
    command = [python, "-m", TRAINER_MODULE, "--progress-json"]
    if processes > 1:
        if backend == "isaacgym":
            raise TrainerArgumentError("nproc %d: the isaacgym backend trains in one process"
                                       % processes)
        command[1:3] = ["-m", "torch.distributed.run", "--standalone",
                        "--nproc_per_node=%d" % processes, "-m", TRAINER_MODULE]
    for flag, value in (("--config", config), ("--device", device.strip()),
                        ("--num-envs", envs), ("--max-iterations", iterations),
                        ("--out", output.strip()), ("--interface", interface),
                        ("--target", target)):
        if value:
            command += [flag, str(value)]
    if backend:
        extra.insert(0, "task.backend=" + backend)
    return command + extra


def package_root() -> str:
    """The folder that holds the ``reach_rl_train`` package (for the child's PYTHONPATH)."""
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def trainer_env(python: str, base: Mapping[str, str]) -> Dict[str, str]:
    """The child's environment: ``base`` with this package importable and output unbuffered.

    The current interpreter keeps ``base``'s PYTHONPATH after the package; another one (a
    Python 3.8 Isaac Gym environment) gets only the package, since the paths of this
    interpreter's site-packages would shadow its own packages."""
    env = dict(base)
    same = os.path.realpath(python) == os.path.realpath(sys.executable)
    inherited = env.get("PYTHONPATH", "") if same else ""
    env["PYTHONPATH"] = package_root() + (os.pathsep + inherited if inherited else "")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def exit_status(returncode: int) -> int:
    """A process's exit status as a shell reports it: 128 + N when killed by signal N."""
    return 128 - returncode if returncode < 0 else returncode


def describe_exit(returncode: int) -> str:
    """Human words for a child's return code (Popen: negative = killed by that signal)."""
    if returncode == 0:
        return "finished"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = "signal %d" % -returncode
        return "killed by %s" % name
    if returncode == 130:
        return "stopped by Ctrl-C (exit status 130)"
    return "failed with exit status %d" % returncode
