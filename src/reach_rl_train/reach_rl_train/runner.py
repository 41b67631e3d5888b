"""The training loop: rollouts on the reach task, PPO updates, held-out evaluation, logs,
checkpoints, export. Under torchrun each rank runs one Runner (:mod:`reach_rl_train.distributed`);
rank 0 alone logs, evaluates, checkpoints and exports."""
import copy
import json
import math
import os
import time
from typing import Callable, Dict, List, Optional

import torch

from reach_rl_train.actor_critic import ActorCritic
from reach_rl_train.config import TrainConfig
from reach_rl_train.cuda_graph import CapturedCall, StateCarry
from reach_rl_train.distributed import Ranks, collectives_for, device_for_rank, ranks_from_environment
from reach_rl_train.export import export_policy
from reach_rl_train.held_out import GoalJudge
from reach_rl_train.pose_target import POSE
from reach_rl_train.ppo import PPO
from reach_rl_train.reach_task import ReachTask, select_results
from reach_rl_train.storage import RolloutStorage, Transition


def resolve_device(name: str) -> torch.device:
    """``torch.device(name)``, or a ValueError that says why CUDA cannot be used."""
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError("device %r requested but CUDA is not available (torch %s%s): use "
                             "--device cpu" % (name, torch.__version__,
                                               "" if torch.version.cuda else ", a CPU-only build"))
        index = torch.device(name).index or 0
        if index >= torch.cuda.device_count():
            raise ValueError("device %r requested but only %d CUDA device(s) exist"
                             % (name, torch.cuda.device_count()))
    return torch.device(name)


def log_dir_for(cfg: TrainConfig) -> str:
    return cfg.run.log_dir or os.path.splitext(cfg.run.out)[0] + "_logs"


class Runner:
    """Owns task, model, PPO and storage; ``train()`` runs to ``max_iterations`` (or the goal,
    ``run.until_goal``) and exports. ``ranks``: this process's place in a torchrun job
    (default: read from torchrun's environment; one process without it)."""

    def __init__(self, cfg: TrainConfig, progress=print, backend=None, ranks: Optional[Ranks] = None):
        self.cfg = cfg
        self.ranks = ranks_from_environment() if ranks is None else ranks
        self.progress = progress if self.ranks.is_main else (lambda _line: None)
        self.device = resolve_device(device_for_rank(cfg.run.device, self.ranks))
        if cfg.run.threads:
            torch.set_num_threads(cfg.run.threads)
        if self.device.type == "cuda":  # TF32 tensor cores for the MLPs' float32 matmuls
            torch.set_float32_matmul_precision("high")
        seed = cfg.run.seed + self.ranks.rank  # each rank its own arms, targets and noise
        torch.manual_seed(seed)
        self.collectives = collectives_for(self.ranks, self.device, cfg.run.dist_timeout_s)
        # Exploration noise: torch's default generator on the CPU; on a GPU one of the runner's
        # own, which a CUDA graph of the rollout can draw from (cuda_graph.CapturedCall).
        self.action_generator = None  # type: Optional[torch.Generator]
        if self.device.type == "cuda":
            self.action_generator = torch.Generator(device=self.device)
            self.action_generator.manual_seed(seed + 1000003)  # a stream apart from the task's
        self.task = ReachTask(cfg.task, cfg.reward, cfg.randomization, cfg.run.num_envs,
                              self.device, seed=seed, backend=backend)
        self.model = ActorCritic.from_config(cfg, self.collectives).to(self.device)
        self.ppo = PPO(self.model, cfg.ppo, seed=seed, collectives=self.collectives,
                       cuda_graph=cfg.run.cuda_graph)
        self.storage = RolloutStorage(cfg.ppo.num_steps, cfg.run.num_envs,
                                      self.model.encoder.dim, 7, self.device)
        self.log_dir = log_dir_for(cfg)
        self.iteration = 0
        self.history = []  # type: List[Dict[str, float]]
        self.writer = None
        self.judge = (GoalJudge(cfg, self.device)
                      if cfg.run.until_goal and self.ranks.is_main else None)
        self.obs = None  # type: Optional[torch.Tensor]  # the next rollout's first observation
        self.rollout = None  # type: Optional[CapturedCall]
        self.carry = StateCarry([])
        if cfg.run.resume:
            self.load(cfg.run.resume)
        self.collectives.broadcast_module(self.model)

    # -- checkpoints ------------------------------------------------------------------------
    def checkpoint_path(self) -> str:
        return os.path.join(self.log_dir, "checkpoint.pt")

    def save(self, path: Optional[str] = None) -> str:
        path = path or self.checkpoint_path()
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        torch.save({"model": self.model.state_dict(), "optimizer": self.ppo.optimizer.state_dict(),
                    "learning_rate": self.ppo.learning_rate, "iteration": self.iteration,
                    "history": self.history, "config": self.cfg.to_dict(),
                    "world_size": self.ranks.world_size}, path + ".tmp")
        os.replace(path + ".tmp", path)
        return path

    def load(self, path: str) -> None:
        if not os.path.isfile(path):
            raise ValueError("checkpoint %r to resume from does not exist" % path)
        state = torch.load(path, map_location=self.device)
        ranks = state.get("world_size", 1)
        if ranks != self.ranks.world_size:
            raise ValueError("checkpoint %r was trained by %d rank(s), this job has %d: resume it "
                             "with torchrun --nproc_per_node=%d (or without torchrun for 1)"
                             % (path, ranks, self.ranks.world_size, ranks))
        self.model.load_state_dict(state["model"])
        self.ppo.optimizer.load_state_dict(state["optimizer"])
        self.ppo.learning_rate = state["learning_rate"]
        self.iteration = state["iteration"]
        self.history = state["history"]
        self.progress("resumed from %s at iteration %d" % (path, self.iteration))

    # -- training ---------------------------------------------------------------------------
    def _rollout(self):
        """``num_steps`` policy steps of every arm from ``self.obs`` into the storage; returns
        the steps' infos and dones and the value of the last observation. Fixed shapes and no
        reads to the host: on a GPU it runs as one CUDA graph (``run.cuda_graph``)."""
        gamma = self.cfg.ppo.gamma
        obs = self.obs
        infos, dones = [], []
        for _ in range(self.cfg.ppo.num_steps):
            raw = self.model.encode(obs)
            action, log_prob, value, mean, std = self.model.act(raw, self.action_generator)
            next_obs, reward, done, info = self.task.step(action)
            done_f = done.float()
            # Every episode end is a time limit: bootstrap instead of treating it as terminal.
            self.storage.add(Transition(raw, action, reward + gamma * value * done_f, done_f,
                                        value, log_prob, mean, std))
            infos.append(info)
            dones.append(done)
            obs = next_obs
        self.obs = obs
        last_value = self.model.value(obs)
        self.carry.store()
        return infos, dones, last_value

    def _graphed(self) -> bool:
        """Whether rollouts run as a CUDA graph: asked for, on a GPU, the built-in simulator (Isaac
        Gym steps outside torch's streams) and one rank (the normaliser's all-reduce would be in
        the graph)."""
        return (self.cfg.run.cuda_graph and self.device.type == "cuda"
                and self.cfg.task.backend == "torch" and self.ranks.world_size == 1)

    def collect(self) -> Dict[str, float]:
        """One rollout of ``num_steps`` from ``self.obs``, returns and advantages; returns the
        rollout's statistics."""
        if self.rollout is None:
            graphed = self._graphed()
            self.carry = StateCarry([(self, ("obs",))] + self.task.state_holders()
                                    if graphed else [])
            generators = [self.task.generator] + ([self.action_generator] if graphed else [])
            self.rollout = CapturedCall(self._rollout, self.device if graphed else "cpu",
                                        generators)
        with torch.no_grad():
            infos, dones, last_value = self.rollout()
        self.storage.compute_returns(last_value, self.cfg.ppo.gamma, self.cfg.ppo.gae_lambda)
        stats = {"reward": self.storage.rewards.sum(0).mean().item() / self.cfg.ppo.num_steps}
        cat = select_results(infos, dones)
        if len(cat["success"]):
            stats["success"] = cat["success"].mean().item()
            stats["final_error_mm"] = 1000.0 * cat["final_error"].median().item()
            if "final_orientation_error" in cat:  # pose targets
                stats["final_orientation_error_deg"] = math.degrees(
                    cat["final_orientation_error"].median().item())
        if len(cat["episode_return"]):
            stats["episode_return"] = cat["episode_return"].mean().item()
        return stats

    def train(self, on_iteration: Optional[Callable[["Runner", Dict[str, float]], bool]] = None
              ) -> Dict[str, float]:
        """Train to ``run.max_iterations``, checkpoint, export; returns the last iteration's stats.

        ``on_iteration(runner, stats)`` is called after every iteration; returning True stops
        training early (benchmarks use it to stop at a time limit). With ``run.until_goal``
        the policy may be judged on held-out targets every ``goal.eval_every`` iterations
        (:class:`reach_rl_train.held_out.GoalJudge`: screened cheaply first), training stops
        at the goal, and the best policy judged in full is exported.

        Ctrl-C (KeyboardInterrupt) stops after saving a checkpoint and exporting the policy
        trained so far, then re-raises.
        """
        cfg = self.cfg
        main = self.ranks.is_main
        if main:
            os.makedirs(self.log_dir, exist_ok=True)
            self.writer = tensorboard_writer(self.log_dir, self.progress)
            with open(os.path.join(self.log_dir, "config.json"), "w") as f:
                json.dump(cfg.to_dict(), f, indent=2)
        # env-steps of the whole job: every rank steps its own arms
        steps_per_iter = cfg.run.num_envs * cfg.ppo.num_steps * self.ranks.world_size
        self.obs = self.task.reset(stagger=True)
        self.rollout = None  # built at the first collect, from the state reset left
        start = time.perf_counter()
        first_iteration = self.iteration
        stats = {}  # type: Dict[str, float]
        try:
            while self.iteration < cfg.run.max_iterations:
                t0 = time.perf_counter()
                stats = self.collect()
                t1 = time.perf_counter()
                stats.update(self.ppo.update(self.storage))
                t2 = time.perf_counter()
                self.iteration += 1
                stats.update(iteration=self.iteration, wall_s=time.perf_counter() - start,
                             steps_per_s=steps_per_iter / (t2 - t0),
                             collect_steps_per_s=steps_per_iter / (t1 - t0),
                             env_steps=float(self.iteration * steps_per_iter),
                             action_std=self.model.log_std.exp().mean().item())
                last = self.iteration >= cfg.run.max_iterations
                stop = (self.judge is not None
                        and self.judge(self.model, self.iteration, last, stats))
                self.history.append(stats)
                self._log(stats, first_iteration)
                if main and self.iteration % cfg.run.checkpoint_every == 0:
                    self.save()
                if on_iteration is not None and on_iteration(self, stats):
                    stop = True
                if self.collectives.any(stop):
                    break
        except KeyboardInterrupt:
            self.progress("interrupted at iteration %d: saving checkpoint and policy" % self.iteration)
            self._finish()
            raise
        line = self.judge and self.judge.report(self.iteration, time.perf_counter() - start)
        if line:
            self.progress(line)
        self._finish()
        self.collectives.barrier()  # the other ranks wait for rank 0's export
        self.collectives.close()
        return stats

    @property
    def goal_reached(self) -> bool:
        """Whether training stopped at its goal (``run.until_goal``)."""
        return self.judge is not None and self.judge.reached

    def policy_model(self) -> ActorCritic:
        """The model to export: the best held-out one with ``run.until_goal``, else the latest."""
        if self.judge is None or self.judge.best_state is None:
            return self.model
        best = copy.deepcopy(self.model)
        best.load_state_dict(self.judge.best_state)
        return best

    def _finish(self) -> None:
        if not self.ranks.is_main:
            return
        path = self.save()
        diff = export_policy(self.policy_model(), self.cfg, self.cfg.run.out)
        best = self.judge and self.judge.best
        which = " (iteration %d's, the best held-out)" % best["iteration"] if best else ""
        self.progress("checkpoint %s\npolicy %s%s (torch vs onnxruntime max abs diff %.2e)"
                      % (path, self.cfg.run.out, which, diff))
        curve = plot_curve(self.history, os.path.join(self.log_dir, "training_curve.png"))
        if curve:
            self.progress("training curve %s" % curve)
        elif curve is None:
            self.progress("no training curve: matplotlib is not installed (pip install matplotlib)")
        if self.writer is not None:
            self.writer.close()

    def _log(self, stats: Dict[str, float], first_iteration: int) -> None:
        if self.writer is not None:
            for key, value in stats.items():
                if key != "iteration":
                    self.writer.add_scalar("train/" + key, value, self.iteration)
        done = self.iteration - first_iteration
        remaining = self.cfg.run.max_iterations - self.iteration
        eta = stats["wall_s"] / max(done, 1) * remaining
        success = ("%5.1f%%" % (100 * stats["success"])) if "success" in stats else "   - "
        error = ("%6.1f mm" % stats["final_error_mm"]) if "final_error_mm" in stats else "     - "
        if self.cfg.task.target == POSE:  # and the orientation's
            error += (" %5.1f deg" % stats["final_orientation_error_deg"]
                      if "final_orientation_error_deg" in stats else "     - ")
        held_out = self.judge.describe_latest() if self.judge is not None else ""
        self.progress("it %4d/%d | %7.0f steps/s | reward %7.3f | success %s | median error %s | "
                      "lr %.1e | std %.2f | eta %3.0fs%s"
                      % (self.iteration, self.cfg.run.max_iterations, stats["steps_per_s"],
                         stats["reward"], success, error, stats["learning_rate"],
                         stats["action_std"], eta, held_out))


def tensorboard_writer(log_dir: str, progress: Callable[[str], None]):
    """A TensorBoard SummaryWriter on ``log_dir``, or None (said once through ``progress``) when
    the optional tensorboard package is missing: training goes on without its logs."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        progress("no TensorBoard logs: tensorboard is not installed (pip install tensorboard)")
        return None
    return SummaryWriter(log_dir)


def plot_curve(history: List[Dict[str, float]], path: str) -> Optional[str]:
    """Training-curve PNG (success rate and median final error vs iteration): its path, '' when
    there is nothing to plot yet, None without matplotlib."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    rows = [h for h in history if "success" in h]
    if not rows:
        return ""
    it = [h["iteration"] for h in rows]
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(7, 6), sharex=True)
    ax1.plot(it, [100 * h["success"] for h in rows])
    ax1.set_ylabel("success within 1 cm [%]")
    ax1.grid(True)
    ax2.semilogy(it, [h["final_error_mm"] for h in rows])
    ax2.set_ylabel("median final error [mm]")
    ax2.set_xlabel("iteration")
    ax2.grid(True)
    fig.suptitle("reach_rl training (%.0f s)" % rows[-1]["wall_s"])
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
