"""franka-sim, the independent FCI emulator, as a process of a test: started, awaited, always stopped.

franka-sim serves libfranka's protocol on TCP 1337, a port libfranka fixes, so one runs per
machine: tests that use it run one after another (pytest's default) and stop it in their
teardown. Its output is kept, so a test can assert that it judged nothing a violation
(franka-sim logs every motion-limit and communication-constraint violation, enforced or not).
:func:`franka_sim_fixture` skips the test, saying why, where ``make setup`` did not install
franka-sim or pylibfranka.
"""
import importlib.util
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import List, Mapping, Optional

from source_tree import REPO

import pytest

from captured_process import CapturedProcess

ROOT = REPO
LAUNCHER = ROOT / "src" / "reach_rl_sim" / "scripts" / "franka_sim"  # ros2 run reach_rl_sim franka_sim
VENV = Path(os.environ.get("REACH_RL_FRANKA_SIM_VENV", str(ROOT / ".venv-sim")))
PORT = 1337
VIOLATION = re.compile(r"violat|reflex|abort", re.IGNORECASE)



def missing(client: str = "pylibfranka") -> str:
    """Why franka-sim cannot run here with ``client`` (the module a test's robot side imports:
    pylibfranka for the franka_ros2 stand-in, franky for the deploy node), or ''. Only looked
    up, not imported: the two bundle libfranka's bindings and cannot share a process."""
    if not (VENV / "bin" / "run-franka-sim-server").exists():
        return "franka-sim is not installed in %s (make setup installs it)" % VENV
    if importlib.util.find_spec(client) is None:
        return "%s is not installed (make setup installs it)" % client
    return ""


def port_open(port: int = PORT) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


# Each 1 kHz loop on a core of its own, as a robot computer runs Franka's loop (and as
# bench/libfranka_bench.py --pin does): franka-sim on the first core, the node under test on the
# last (its ``cpu`` parameter). One core: no pinning.
CPUS = sorted(os.sched_getaffinity(0))
SIM_CPU, LOOP_CPU = (CPUS[0], CPUS[-1]) if len(CPUS) > 1 and shutil.which("taskset") else (None, -1)


class FrankaSim(CapturedProcess):
    """One franka-sim server with motion limits and communication constraints enforced."""

    def __init__(self, start_timeout: float = 60.0, env: Optional[Mapping[str, str]] = None):
        """``env``: variables added to this process's environment for the server."""
        if port_open():
            pytest.fail("TCP %d is taken: another franka-sim (or a robot server) runs on this "
                        "machine; stop it first" % PORT)
        pin = ["taskset", "-c", str(SIM_CPU)] if SIM_CPU is not None else []
        super().__init__(pin + [str(LAUNCHER)], start_new_session=True,
                         env=dict(os.environ, **(env or {})))
        deadline = time.monotonic() + start_timeout
        while not port_open():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail("franka-sim did not start:\n" + self.output)
            time.sleep(0.2)

    def violations(self) -> List[str]:
        """franka-sim's lines that report a violation or an aborted motion."""
        return [line for line in self.lines if VIOLATION.search(line)
                and ("WARNING" in line or "ERROR" in line)]

    def stop(self) -> None:
        """SIGINT to its process group, then SIGKILL if it has not left within 20 s."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(20.0)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.join_reader()


def franka_sim_fixture(client: str = "pylibfranka"):
    """Body of a module-scoped fixture: one franka-sim for the module, always stopped."""
    reason = missing(client)
    if reason:
        pytest.skip(reason)
    sim = FrankaSim()
    try:
        yield sim
    finally:
        sim.stop()
