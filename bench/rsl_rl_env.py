"""Our ReachTask as an rsl_rl (v5) ``VecEnv``, for benchmarking rsl_rl's PPO on the same task.

Observations: a TensorDict with one group, ``"policy"`` = ``ObservationEncoder`` features of the
raw observation of ``task.target``'s layout (the same features our ActorCritic computes inside
its network: 34 for point targets, 62 for pose targets), so both learners see the same
information; rsl_rl's own empirical normaliser (``obs_normalization``) then plays the role of
our RunningNormalizer.

Every episode end of the reach task is a time limit, so ``extras["time_outs"]`` = ``dones``
(rsl_rl then bootstraps the value, as our PPO does).

Bench code only: nothing in src/ imports this.
"""
import inspect
import os
from typing import Dict, Optional

# GitPython (imported by rsl_rl's logger) refuses to import when no git executable exists
# (e.g. on a bare GPU machine) unless told to stay quiet.
os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")



def _ensure_cloudpickle() -> None:
    """tensordict imports cloudpickle at import time, only to pickle modules (never done here).

    Where the wheel is missing, a stand-in backed by ``pickle`` lets tensordict import.
    """
    try:
        import cloudpickle  # noqa: F401
    except ImportError:
        import pickle
        import sys
        import types

        stub = types.ModuleType("cloudpickle")
        setattr(stub, "dumps", pickle.dumps)
        setattr(stub, "loads", pickle.loads)
        stub.__doc__ = "stand-in installed by bench/rsl_rl_env.py (cloudpickle not installed)"
        sys.modules["cloudpickle"] = stub


_ensure_cloudpickle()

import torch  # noqa: E402
from tensordict import TensorDict  # noqa: E402
from rsl_rl.env import VecEnv  # noqa: E402

from reach_rl_train.actor_critic import ObservationEncoder, split_obs  # noqa: E402
from reach_rl_train.config import TrainConfig  # noqa: E402
from reach_rl_train.reach_task import ReachTask, select_results  # noqa: E402


class ReachVecEnv(VecEnv):
    """``ReachTask`` behind rsl_rl's ``VecEnv`` interface (observation group ``"policy"``)."""

    num_actions = 7

    def __init__(self, cfg: TrainConfig, device, num_envs: Optional[int] = None,
                 seed: Optional[int] = None, stagger: bool = True):
        self.train_cfg = cfg
        self.device = torch.device(device)
        self.num_envs = int(num_envs if num_envs is not None else cfg.run.num_envs)
        self.task = ReachTask(cfg.task, cfg.reward, cfg.randomization, self.num_envs, self.device,
                              seed=cfg.run.seed if seed is None else seed)
        self.target_type = cfg.task.target
        self.encoder = ObservationEncoder(self.target_type, cfg.task.robot).to(self.device)
        self.max_episode_length = self.task.max_episode_steps
        self.cfg = cfg.to_dict()  # rsl_rl's logger stores it with the run
        # Same start as our Runner: targets and episode ends spread over time.
        self._obs = self._wrap(self.task.reset(stagger=stagger))

    # -- VecEnv ---------------------------------------------------------------------------
    @property
    def episode_length_buf(self) -> torch.Tensor:
        return self.task.episode_step

    @episode_length_buf.setter
    def episode_length_buf(self, value: torch.Tensor) -> None:
        self.task.episode_step = value.to(device=self.device, dtype=torch.long)

    def features(self, raw_obs: torch.Tensor) -> torch.Tensor:
        """Raw observation [N, obs_dim] -> encoder features [N, self.encoder.dim]."""
        return self.encoder(*split_obs(raw_obs, self.target_type))

    def _wrap(self, raw_obs: torch.Tensor) -> TensorDict:
        return TensorDict({"policy": self.features(raw_obs)}, batch_size=[raw_obs.shape[0]],
                          device=self.device)

    def get_observations(self) -> TensorDict:
        return self._obs

    def step(self, actions: torch.Tensor):
        raw_obs, reward, done, info = self.task.step(actions)
        self._obs = self._wrap(raw_obs)
        log = {}  # type: Dict[str, torch.Tensor]
        results = select_results([info], [done])
        if results["success"].numel():
            log["/reach/success"] = results["success"].mean()
            log["/reach/final_error_mm"] = 1000.0 * results["final_error"].median()
            if "final_orientation_error" in results:  # pose targets
                log["/reach/final_orientation_error_deg"] = torch.rad2deg(
                    results["final_orientation_error"].median())
        if results["episode_return"].numel():
            log["/reach/episode_return"] = results["episode_return"].mean()
        extras = {"time_outs": done, "log": log}
        return self._obs, reward, done, extras


# Keys of rsl_rl's PPO whose defaults are its own recommended schedule (settings "rsl_rl").
RECOMMENDED_KEYS = ("schedule", "desired_kl", "num_learning_epochs", "num_mini_batches",
                    "learning_rate")
SETTINGS = ("rsl_rl", "ours")


def rsl_rl_recommended() -> dict:
    """rsl_rl's own defaults for its learning schedule (:data:`RECOMMENDED_KEYS`), read from its
    PPO's constructor: the adaptive schedule, its desired KL, epochs, minibatches, first rate."""
    from rsl_rl.algorithms import PPO

    parameters = inspect.signature(PPO.__init__).parameters
    return {key: parameters[key].default for key in RECOMMENDED_KEYS}


def rsl_rl_train_cfg(cfg: TrainConfig, check_for_nan: bool = False, settings: str = "ours") -> dict:
    """rsl_rl v5 OnPolicyRunner configuration matching our ``cfg.ppo`` as closely as it allows;
    ``settings`` "rsl_rl": with rsl_rl's own schedule instead (:func:`rsl_rl_recommended`; the
    task-shaped rest, gamma, lambda, entropy, clip, network, std, rollout length, stays ours).

    Remaining differences (rsl_rl's design): its normaliser updates after each PPO update from the
    rollout's observations and does not clip; its actor's last layer has the default init (ours
    scales it by 0.01 to start near "stand still"); gradients are clipped per network (ours over
    both together). ``check_for_nan`` is off by default, as in our runner (it syncs every step).
    """
    p = cfg.ppo
    model = {
        "class_name": "rsl_rl.models:MLPModel",
        "hidden_dims": list(p.hidden),
        "activation": "elu",
        "obs_normalization": True,
    }
    if settings not in SETTINGS:
        raise ValueError("settings must be one of %s, got %r" % (SETTINGS, settings))
    gaussian = {"class_name": "rsl_rl.modules.distribution:GaussianDistribution",
                "init_std": float(p.init_std), "std_type": "log"}  # ours: a learned log std
    actor = dict(model, distribution_cfg=gaussian)
    algorithm = {
        "class_name": "rsl_rl.algorithms:PPO",
        "num_learning_epochs": int(p.num_epochs),
        "num_mini_batches": int(p.num_minibatches),
        "clip_param": float(p.clip),
        "gamma": float(p.gamma),
        "lam": float(p.gae_lambda),
        "value_loss_coef": float(p.value_coef),
        "entropy_coef": float(p.entropy_coef),
        "learning_rate": float(p.learning_rate),
        "max_grad_norm": float(p.max_grad_norm),
        "optimizer": "adam",
        "use_clipped_value_loss": True,
        "schedule": "adaptive" if p.desired_kl > 0 else "fixed",
        "desired_kl": float(p.desired_kl) if p.desired_kl > 0 else None,
        "normalize_advantage_per_mini_batch": False,
    }
    if settings == "rsl_rl":
        algorithm.update(rsl_rl_recommended())
    return {
        "num_steps_per_env": int(p.num_steps),
        "save_interval": 10 ** 9,
        "check_for_nan": check_for_nan,
        "obs_groups": {"actor": ["policy"], "critic": ["policy"]},
        "logger": "tensorboard",
        "actor": actor,
        "critic": dict(model),
        "algorithm": algorithm,
    }
