"""The actuator model of every simulated arm here: a first-order lag behind the velocity command.

A joint commanded to move at ``command`` [rad/s] reaches it as dv/dt = (command - v) / tau,
``tau`` [s] the lag's time constant (0: ideal tracking). Over a step of ``dt`` [s] with the
command held, exactly:

    v(dt) = command + (v - command) * exp(-dt / tau)
    q(dt) - q = command * dt + (v - command) * tau * (1 - exp(-dt / tau))

The training simulator (:mod:`reach_rl_train.arm_sim`), Isaac Gym's velocity targets
(:mod:`reach_rl_train.isaacgym_backend`) and the kinematic Franka of the topic-path tests
(:mod:`reach_rl_sim.sim_robot`) all step it with :func:`lag_step`. numpy or torch.
"""
import numpy as np

from reach_rl_core.franka_model import array_namespace

MIN_TAU = 1e-6  # s; shorter lags are ideal tracking to within float precision


def lag_step(velocity, command, tau, dt: float):
    """``(velocity, displacement)`` after holding ``command`` [rad/s] for ``dt`` [s] from joint
    velocity ``velocity`` [rad/s] through lags ``tau`` [s] (broadcastable against them; 0 or
    less: no lag). Arrays or tensors in, the same kind out."""
    xp = array_namespace(velocity)
    if xp is np:
        tau, shortest = np.maximum(tau, 0.0), np.maximum(tau, MIN_TAU)
    else:
        tau, shortest = tau.clamp(min=0.0), tau.clamp(min=MIN_TAU)
    decay = xp.exp(-dt / shortest)  # (tau 0: exactly 0)
    gap = velocity - command
    return command + gap * decay, command * dt + gap * tau * (1.0 - decay)
