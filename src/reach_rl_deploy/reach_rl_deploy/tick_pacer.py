"""When the deploy loop publishes its next command: on the robot's joint states, or on a clock.

Franka's controller publishes a joint state every cycle (1 kHz). A command computed the
moment such a state arrives reaches the controller before its next cycle with the least
latency, so while joint states come at about the control rate every new state starts a
tick (*locked*). When they come slower (a simulator publishing at 500 Hz), or stop, ticks
follow the monotonic clock at the control rate, so the stream keeps its rate and the
watchdog can ramp the arm to zero.

Either way two ticks are at least ``MIN_GAP`` periods apart, counted from when the earlier
message went out: after a stall, a burst of states gives one tick, not a burst of
messages, and at most two messages fall into one controller cycle -- the case the safety
filter's acceleration bound is sized for. A late clock tick is not caught up.

Times are monotonic seconds; this module is pure logic, no ROS, no threads.
"""
import math
from typing import Optional

MIN_GAP = 0.25  # periods between two ticks, at least
LOCK_RATIO = 1.25  # joint states at most this many periods apart (on average) lock the ticks
FALLBACK = 1.5  # periods: while locked, a tick comes at the latest this long after the last one
#                 (then, until a state arrives again, one per period)
STATE_AVERAGING = 0.05  # weight of a new interval in the running mean of state intervals


class TickPacer:
    """Decides when the loop ticks; feed it state arrivals and the ticks it made."""

    def __init__(self, period: float, now: float):
        self.period = period  # s, 1 / control_rate
        self.state_interval = math.inf  # s, running mean of the intervals between joint states
        self._last_state = None  # type: Optional[float]
        self._last_tick = -math.inf  # when the last tick's message went out
        self._next_clock_tick = now
        self.pending_state = False  # a state arrived since the last tick

    @property
    def locked(self) -> bool:
        """Whether ticks follow the joint states (they come at about the control rate)."""
        return self.state_interval <= LOCK_RATIO * self.period

    def on_state(self, now: float) -> None:
        """A joint state arrived at ``now``."""
        if self._last_state is not None:
            interval = now - self._last_state
            if math.isinf(self.state_interval):
                self.state_interval = interval
            else:
                self.state_interval += STATE_AVERAGING * (interval - self.state_interval)
        self._last_state = now
        self.pending_state = True

    def deadline(self) -> float:
        """When the next tick is due if no further state arrives."""
        earliest = self._last_tick + MIN_GAP * self.period
        due = earliest if self.pending_state and self.locked else self._next_clock_tick
        return max(due, earliest)

    def due(self, now: float) -> bool:
        """Whether to tick at ``now``."""
        return now >= self.deadline()

    def ticked(self, started: float, sent: float) -> None:
        """The tick that started at ``started`` sent its message at ``sent``."""
        if self.pending_state and self.locked:
            # On a state: the clock takes over if the next one is FALLBACK periods late.
            self._next_clock_tick = started + FALLBACK * self.period
        else:
            self._next_clock_tick = max(self._next_clock_tick + self.period,
                                        sent + MIN_GAP * self.period)
        self._last_tick = sent
        self.pending_state = False
