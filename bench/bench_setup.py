"""What the deploy benchmarks share: franka-sim's launcher, a process's CPU time, onnxruntime
inference time, and the header (command, machine) and DDS domain of a run."""
import os
import random
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# `ros2 run reach_rl_sim franka_sim`'s launcher, from the source tree (no colcon build needed)
FRANKA_SIM = os.path.join(ROOT, "src", "reach_rl_sim", "scripts", "franka_sim")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time [s] of process ``pid`` so far."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def inference_times(path: str, calls: int):
    """p50, p99 and max [us] of one ``Policy.__call__`` (one observation, onnxruntime); a pose
    policy's targets point the hand down with yaws around the circle."""
    from reach_rl_core.orientation import matrix_to_quaternion, rotation_from_rpy
    from reach_rl_deploy.policy_runtime import Policy

    policy = Policy(path)
    rng = np.random.default_rng(0)
    inputs = [(rng.normal(0, 0.3, 7), rng.normal(0, 0.1, 7), np.array([0.45, 0.0, 0.4]),
               rng.normal(0, 0.1, 7)) for _ in range(64)]
    if policy.pose:  # roll pi (hand down), then yaw
        inputs = [sample + (matrix_to_quaternion(rotation_from_rpy(np.pi, 0.0, yaw)),)
                  for sample, yaw in zip(inputs, rng.uniform(-np.pi, np.pi, len(inputs)))]
    for i in range(200):
        policy(*inputs[i % 64])
    times = []
    for i in range(calls):
        start = time.perf_counter_ns()
        policy(*inputs[i % 64])
        times.append(1e-3 * (time.perf_counter_ns() - start))
    return np.percentile(times, 50), np.percentile(times, 99), max(times)


def bench_setup(name: str, policy: str, hint: str) -> bool:
    """Before a deploy benchmark: False (and why, on stderr) without the ``policy`` file; else a
    DDS domain of its own on loopback, and the command and machine printed beside the figures."""
    if not os.path.isfile(policy):
        print("%s: no policy file %s: %s" % (name, policy, hint), file=sys.stderr)
        return False
    os.environ.setdefault("ROS_DOMAIN_ID", str(random.randint(101, 200)))
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    print("command: %s" % " ".join([sys.executable] + sys.argv))
    print("machine: %d CPUs, %s" % (os.cpu_count(), os.uname().release), flush=True)
    return True
