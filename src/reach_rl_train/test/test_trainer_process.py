"""The trainer child process of train_node: interpreter, command line, environment, exit status."""
import os
import signal
import subprocess
import sys

import pytest

from reach_rl_train import trainer_process as tp

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = os.path.join(ROOT, "config", "train.yaml")
PY = "/usr/bin/python3.8"  # any resolved path: trainer_command does not look at it


def test_empty_python_is_this_interpreter():
    assert tp.resolve_python("") == sys.executable
    assert tp.resolve_python("  ") == sys.executable


def test_python_by_path_and_by_name(tmp_path, monkeypatch):
    exe = tmp_path / "python3.8"
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    assert tp.resolve_python(str(exe)) == str(exe)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert tp.resolve_python("python3.8") == str(exe)


def test_missing_or_unusable_python_is_refused(tmp_path, monkeypatch):
    with pytest.raises(tp.TrainerArgumentError, match="'/nonexistent/bin/python' does not exist"):
        tp.resolve_python("/nonexistent/bin/python")
    plain = tmp_path / "python"
    plain.write_text("")
    plain.chmod(0o644)
    with pytest.raises(tp.TrainerArgumentError, match="is not executable"):
        tp.resolve_python(str(plain))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(tp.TrainerArgumentError, match="'python3.8' not found on PATH"):
        tp.resolve_python("python3.8")


def test_command_with_every_argument():
    command = tp.trainer_command(PY, CONFIG, "isaacgym", "cuda:0", "1024", " 50 ", "/tmp/p.onnx",
                                 "run.threads=1 'task.target_min=[0.3, -0.3, 0.2]'")
    assert command == [PY, "-m", "reach_rl_train.cli", "--progress-json", "--config", CONFIG,
                       "--device", "cuda:0", "--num-envs", "1024", "--max-iterations", "50",
                       "--out", "/tmp/p.onnx", "task.backend=isaacgym", "run.threads=1",
                       "task.target_min=[0.3, -0.3, 0.2]"]


def test_empty_arguments_keep_the_config_values():
    assert tp.trainer_command(PY) == [PY, "-m", "reach_rl_train.cli", "--progress-json"]
    assert tp.trainer_command(PY, backend="torch")[-1] == "task.backend=torch"
    assert tp.trainer_command(PY, nproc="1") == tp.trainer_command(PY, nproc="")


def test_interface_and_target_become_the_trainers_options():
    command = tp.trainer_command(PY, interface=" libfranka", target="pose ")
    assert command[-4:] == ["--interface", "libfranka", "--target", "pose"]


def test_nproc_runs_the_trainer_under_torchrun():
    assert tp.trainer_command(PY, device="cuda", nproc="2") == [
        PY, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        "-m", "reach_rl_train.cli", "--progress-json", "--device", "cuda"]


@pytest.mark.parametrize("kwargs, message", [
    ({"backend": "bullet"}, "unknown backend 'bullet' (known: torch, isaacgym)"),
    ({"interface": "fci"}, "unknown interface 'fci' (known: ros2_control, libfranka)"),
    ({"target": "orientation"}, "unknown target 'orientation' (known: point, pose)"),
    ({"num_envs": "many"}, "num_envs must be a positive integer, got 'many'"),
    ({"num_envs": "32.5"}, "num_envs must be a positive integer, got '32.5'"),
    ({"max_iterations": "0"}, "max_iterations must be a positive integer, got 0"),
    ({"max_iterations": "-3"}, "max_iterations must be a positive integer, got -3"),
    ({"config": "/nonexistent/train.yaml"}, "config file '/nonexistent/train.yaml' does not exist"),
    ({"overrides": "run.threads"}, "override 'run.threads' is not section.key=value"),
    ({"overrides": "threads=1"}, "override 'threads=1' is not section.key=value"),
    ({"overrides": "'run.out=/tmp/a"}, "No closing quotation"),
    ({"nproc": "0"}, "nproc must be a positive integer, got 0"),
    ({"nproc": "2", "backend": "isaacgym"}, "nproc 2: the isaacgym backend trains in one process"),
])
def test_bad_arguments_are_refused_clearly(kwargs, message):
    with pytest.raises(tp.TrainerArgumentError) as error:
        tp.trainer_command(PY, **kwargs)
    assert message in str(error.value)


def test_environment_for_this_interpreter_keeps_pythonpath():
    env = tp.trainer_env(sys.executable, {"PYTHONPATH": "/opt/ros/lib", "HOME": "/root"})
    assert env["PYTHONPATH"] == tp.package_root() + os.pathsep + "/opt/ros/lib"
    assert env["HOME"] == "/root" and env["PYTHONUNBUFFERED"] == "1"
    assert os.path.isfile(os.path.join(tp.package_root(), "reach_rl_train", "cli.py"))


def test_environment_for_another_interpreter_has_only_the_package():
    env = tp.trainer_env("/opt/isaacgym-env/bin/python", {"PYTHONPATH": "/venv/lib/python3.11/site-packages"})
    assert env["PYTHONPATH"] == tp.package_root()


def test_exit_status_as_a_shell_reports_it():
    assert tp.exit_status(0) == 0
    assert tp.exit_status(130) == 130
    assert tp.exit_status(-signal.SIGINT) == 130
    assert tp.exit_status(-signal.SIGKILL) == 137
    assert tp.describe_exit(0) == "finished"
    assert tp.describe_exit(-signal.SIGKILL) == "killed by SIGKILL"
    assert "Ctrl-C" in tp.describe_exit(130)
    assert tp.describe_exit(2) == "failed with exit status 2"


def test_the_command_runs_the_trainer_cli():
    """``python -m reach_rl_train.cli`` works and knows --progress-json (no torch import for --help)."""
    command = tp.trainer_command(sys.executable) + ["--help"]
    out = subprocess.run(command, env=tp.trainer_env(sys.executable, os.environ),
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
                         timeout=60)
    assert out.returncode == 0, out.stdout
    assert "--progress-json" in out.stdout and "reach-rl-train" in out.stdout


def test_sigint_stops_a_trainer_started_with_sigint_ignored(tmp_path):
    """A shell's background job (and so a train_node started from one) inherits SIGINT
    ignored; the trainer still stops on SIGINT with a checkpoint and the policy file."""
    out = tmp_path / "policy.onnx"
    command = tp.trainer_command(sys.executable) + [
        "--progress-json", "--num-envs", "32", "--max-iterations", "10000", "--out", str(out),
        "run.threads=1"]
    process = subprocess.Popen(command, env=tp.trainer_env(sys.executable, os.environ),
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               universal_newlines=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        for line in process.stdout:
            if '"event": "iteration"' in line:
                break
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=120)  # a trainer that ignores SIGINT fails here
        assert process.returncode == 130
    finally:
        process.kill()
        process.wait()
    assert out.is_file()
    assert (tmp_path / "policy_logs" / "checkpoint.pt").is_file()
