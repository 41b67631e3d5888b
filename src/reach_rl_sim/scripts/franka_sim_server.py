"""franka-sim's server (``run-franka-sim-server``) with a 0.2 ms interpreter switch interval.

franka-sim answers libfranka from two Python threads, the physics loop and the UDP server,
which share one interpreter lock. At Python's default switch interval (5 ms) the server thread
waits up to 5 ms for it: commands that arrived in time are read cycles late, counted as lost
(``communication_constraints_violation`` after 20) or applied over the robot's own
extrapolation (an acceleration discontinuity). A robot answers within its 1 ms cycle; so does
this server once the lock changes hands every 0.2 ms (docs/measurements.md, 2026-12-06,
evening). Run with franka-sim's Python (``.venv-sim``); arguments go to the server.
"""
import sys

SWITCH_INTERVAL = 2e-4  # s


def main() -> int:
    sys.setswitchinterval(SWITCH_INTERVAL)
    from franka_sim.run_server import main as run_server

    sys.argv[0] = "run-franka-sim-server"
    return run_server()


if __name__ == "__main__":
    sys.exit(main())
