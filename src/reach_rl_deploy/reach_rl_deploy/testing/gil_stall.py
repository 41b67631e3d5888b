"""Test-only stalls of the deploy node's Python side (the entry point that runs them:
:mod:`reach_rl_deploy.testing.stalled_deploy_node`) that hold the interpreter lock (GIL), as
a garbage-collector pause or a busy callback would.

Set ``REACH_RL_TEST_GIL_STALLS`` in the node's environment, comma-separated items:

* ``L/P``: a stall of ``L`` seconds every ``P`` seconds;
* ``L@T``: one stall of ``L`` seconds ``T`` seconds after the loop started.

E.g. ``0.1/2,0.25@7``. Unset (the default), nothing stalls. A stall calls libc's ``usleep``
through ``ctypes.PyDLL``, which keeps the GIL for the whole call: no other Python thread of
the process runs meanwhile, while threads that never take the GIL (franky's 1 kHz control
thread) go on.
"""
import ctypes
import os
from typing import List, NamedTuple, Optional

ENVIRONMENT_VARIABLE = "REACH_RL_TEST_GIL_STALLS"


class Stall(NamedTuple):
    length: float  # s
    period: Optional[float]  # s between stalls; None: once, at ``at``
    at: float  # s after the start of the first (or only) stall


def parse_stalls(text: str) -> List[Stall]:
    """The stalls ``text`` describes (module docstring); ValueError saying what is wrong."""
    stalls = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        try:
            if "/" in item:
                length, period = (float(v) for v in item.split("/"))
                stall = Stall(length, period, period)
            else:
                length, at = (float(v) for v in item.split("@"))
                stall = Stall(length, None, at)
        except ValueError:
            raise ValueError("%s item %r: expected LENGTH/PERIOD or LENGTH@TIME in seconds"
                             % (ENVIRONMENT_VARIABLE, item)) from None
        periodic_ok = stall.period is None or stall.period > stall.length
        if not (stall.length > 0.0 and stall.at >= 0.0 and periodic_ok):
            raise ValueError("%s item %r: lengths > 0, periods longer than the stall"
                             % (ENVIRONMENT_VARIABLE, item))
        stalls.append(stall)
    return stalls


class GilStalls:
    """The stalls due at each loop tick; :meth:`due` returns their total length [s]."""

    def __init__(self, stalls: List[Stall], start: float):
        self._next = [start + s.at for s in stalls]  # monotonic s
        self._stalls = stalls

    def due(self, now: float) -> float:
        """Seconds of stall due at monotonic ``now``; each stall is due once per period."""
        total = 0.0
        for i, stall in enumerate(self._stalls):
            if self._next[i] is not None and now >= self._next[i]:
                total += stall.length
                self._next[i] = None if stall.period is None else self._next[i] + stall.period
        return total


def stalls_from_environment() -> List[Stall]:
    """The stalls ``REACH_RL_TEST_GIL_STALLS`` describes (none when unset)."""
    return parse_stalls(os.environ.get(ENVIRONMENT_VARIABLE, ""))


def hold_gil(seconds: float) -> None:
    """Block this thread for ``seconds`` without releasing the GIL."""
    ctypes.PyDLL(None).usleep(int(seconds * 1e6))
