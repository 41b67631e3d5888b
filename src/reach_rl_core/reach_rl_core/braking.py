"""Braking curves: the fastest approach to a boundary from which a stop still ends before it.

One law serves the joint position limits (:mod:`reach_rl_core.safety_filter`) and the
self-collision separation (:mod:`reach_rl_core.self_collision`). An approach at speed ``v``
that may go on unchanged for ``hold_time`` seconds (the command stays in force that long
before anything can lower it) and then decelerates at ``decel`` covers
``v * hold_time + v^2 / (2 decel)``; the largest ``v`` for which that is at most the
``distance`` left is ``sqrt((decel * hold_time)^2 + 2 decel distance) - decel * hold_time``,
which is ``sqrt(2 decel distance)`` without a hold.

Units: any consistent pair, e.g. rad, rad/s, rad/s^2 or m, m/s, m/s^2; s for ``hold_time``.
numpy arrays or torch tensors in, the same kind out.
"""


def braking_speed(distance, decel, hold_time: float = 0.0):
    """Largest approach speed (>= 0) that stops within ``distance`` (clipped at 0) after
    ``hold_time`` [s] at that speed, decelerating at ``decel`` (module docstring)."""
    room = distance.clip(0.0) if hasattr(distance, "clip") else max(distance, 0.0)
    if hold_time == 0.0:
        return (2.0 * decel * room) ** 0.5
    reach = decel * hold_time
    return (reach * reach + 2.0 * decel * room) ** 0.5 - reach
