"""Proximal policy optimisation: clipped surrogate, clipped value loss, entropy bonus, and a
fixed learning rate or (``desired_kl`` > 0) one adapted to keep the policy's KL step near it.

In a torchrun job (``collectives``) gradients and the KL are averaged over ranks, so every
rank takes the same step with the same learning rate."""
from typing import Any, Dict, Optional

import torch
from torch import nn

from reach_rl_train.actor_critic import ActorCritic
from reach_rl_train.adam import Adam
from reach_rl_train.config import PPOConfig
from reach_rl_train.cuda_graph import CapturedCall
from reach_rl_train.distributed import Collectives
from reach_rl_train.storage import RolloutStorage


def gaussian_kl(mu_old, std_old, mu_new, std_new) -> torch.Tensor:
    """KL(old || new) of diagonal Gaussians, summed over action dims -> [B]."""
    return (torch.log(std_new / std_old)
            + (std_old.square() + (mu_old - mu_new).square()) / (2.0 * std_new.square())
            - 0.5).sum(-1)


class PPO:
    """``update(storage)`` runs the epochs. ``cuda_graph``: on a GPU with one rank the epochs
    run as one CUDA graph (:mod:`reach_rl_train.cuda_graph`). The optimiser keeps its step
    count and learning rate on the device, and the adaptive schedule runs there too."""

    def __init__(self, actor_critic: ActorCritic, cfg: PPOConfig, seed: int = 0,
                 collectives: Collectives = Collectives(), cuda_graph: bool = False):
        self.actor_critic = actor_critic
        self.cfg = cfg
        self.collectives = collectives
        self.device = next(actor_critic.parameters()).device
        # Gradients of several ranks meet in an all-reduce, which stays outside a graph.
        self.graphed = (cuda_graph and self.device.type == "cuda"
                        and collectives.world_size == 1)
        self.optimizer = Adam(actor_critic.parameters(), lr=cfg.learning_rate)
        # minibatch shuffles, drawn where the rollout lives (no copy of the order from the host)
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(seed)
        self.epochs = None  # type: Optional[CapturedCall]
        self.storage = None  # type: Optional[RolloutStorage]  # the one the epochs were built on

    @property
    def learning_rate(self) -> float:
        return float(self.optimizer.lr)  # (on a GPU: one wait for the device)

    @learning_rate.setter
    def learning_rate(self, value: float) -> None:
        self.optimizer.lr.fill_(float(value))  # in place: the tensor a captured update reads

    def _adapt_learning_rate(self, kl: torch.Tensor) -> None:
        """rsl_rl's schedule: the rate / 1.5 when the minibatch's ``kl`` (averaged over ranks)
        exceeds twice ``desired_kl``, * 1.5 below half of it, within [1e-5, 1e-2]; on the
        device, no wait for it."""
        target = self.cfg.desired_kl
        if self.collectives.world_size > 1:
            kl = self.collectives.sum_(kl.reshape(1).clone())[0] / self.collectives.world_size
        lr = self.optimizer.lr
        lr.copy_(torch.where(kl > 2.0 * target, (lr / 1.5).clamp(min=1e-5),
                             torch.where((kl > 0.0) & (kl < 0.5 * target),
                                         (lr * 1.5).clamp(max=1e-2), lr)))

    def update(self, storage: RolloutStorage) -> Dict[str, float]:
        """Run the PPO epochs over ``storage`` (the same one at every call); returns mean
        losses, KL (this rank's) and the learning rate after it."""
        if self.epochs is None:
            self.storage = storage
            self.epochs = CapturedCall(self._run_epochs, self.device if self.graphed else "cpu")
        assert storage is self.storage, "PPO.update takes the storage of its first call"
        storage.shuffle(self.cfg.num_epochs, self.generator)
        sums, count = self.epochs()
        result = {k: float(v) / count for k, v in sums.items()}
        result["learning_rate"] = self.learning_rate
        return result

    def _run_epochs(self):
        """Every minibatch of ``self.storage``'s shuffle: the summed losses and KL, and the count."""
        cfg, model = self.cfg, self.actor_critic
        sums = {"policy_loss": 0.0, "value_loss": 0.0, "entropy": 0.0, "kl": 0.0}  # type: Dict[str, Any]
        count = 0
        for batch in self.storage.minibatches(cfg.num_minibatches):
            features = model.normalizer(batch.features)
            dist = model.distribution(batch.features, features)
            value = model.critic(features).squeeze(-1)
            with torch.no_grad():
                kl = gaussian_kl(batch.mean, batch.std, dist.mean, dist.stddev).mean()
                if self.cfg.desired_kl > 0:
                    self._adapt_learning_rate(kl)

            ratio = torch.exp(dist.log_prob(batch.action).sum(-1) - batch.log_prob)
            advantage = batch.advantage
            surrogate = torch.min(ratio * advantage,
                                  ratio.clamp(1.0 - cfg.clip, 1.0 + cfg.clip) * advantage)
            policy_loss = -surrogate.mean()
            value_clipped = batch.value + (value - batch.value).clamp(-cfg.clip, cfg.clip)
            value_loss = torch.max((value - batch.ret).square(),
                                   (value_clipped - batch.ret).square()).mean()
            entropy = dist.entropy().sum(-1).mean()
            loss = policy_loss + cfg.value_coef * value_loss - cfg.entropy_coef * entropy

            self.optimizer.zero_grad()
            loss.backward()
            self.collectives.average_gradients(model.parameters())
            nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
            self.optimizer.step()
            for key, v in (("policy_loss", policy_loss), ("value_loss", value_loss),
                           ("entropy", entropy), ("kl", kl)):
                sums[key] += v.detach()  # read once, after the epochs
            count += 1
        return sums, count
