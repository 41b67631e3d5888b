"""Proximal policy optimisation: clipped surrogate, clipped value loss, entropy bonus, and a
fixed learning rate or (``desired_kl`` > 0) one adapted to keep the policy's KL step near it.

In a torchrun job (``collectives``) gradients and the KL are averaged over ranks, so every
rank takes the same step with the same learning rate."""
from typing import Any, Dict

import torch
from torch import nn

from reach_rl_train.actor_critic import ActorCritic
from reach_rl_train.config import PPOConfig
from reach_rl_train.distributed import Collectives
from reach_rl_train.storage import RolloutStorage


def gaussian_kl(mu_old, std_old, mu_new, std_new) -> torch.Tensor:
    """KL(old || new) of diagonal Gaussians, summed over action dims -> [B]."""
    return (torch.log(std_new / std_old)
            + (std_old.square() + (mu_old - mu_new).square()) / (2.0 * std_new.square())
            - 0.5).sum(-1)


class PPO:
    def __init__(self, actor_critic: ActorCritic, cfg: PPOConfig, seed: int = 0,
                 collectives: Collectives = Collectives()):
        self.actor_critic = actor_critic
        self.cfg = cfg
        self.collectives = collectives
        self.learning_rate = cfg.learning_rate
        self.optimizer = torch.optim.Adam(actor_critic.parameters(), lr=self.learning_rate)
        self.generator = torch.Generator()
        self.generator.manual_seed(seed)

    def _adapt_learning_rate(self, kl: float) -> None:
        if self.cfg.desired_kl <= 0:
            return
        if kl > 2.0 * self.cfg.desired_kl:
            self.learning_rate = max(1e-5, self.learning_rate / 1.5)
        elif 0.0 < kl < 0.5 * self.cfg.desired_kl:
            self.learning_rate = min(1e-2, self.learning_rate * 1.5)
        for group in self.optimizer.param_groups:
            group["lr"] = self.learning_rate

    def update(self, storage: RolloutStorage) -> Dict[str, float]:
        """Run the PPO epochs over ``storage``; returns mean losses, KL and learning rate."""
        cfg, model = self.cfg, self.actor_critic
        sums = {"policy_loss": 0.0, "value_loss": 0.0, "entropy": 0.0, "kl": 0.0}  # type: Dict[str, Any]
        count = 0
        for batch in storage.minibatches(cfg.num_minibatches, cfg.num_epochs, self.generator):
            features = model.features(batch.obs)
            dist = model.distribution(features)
            value = model.critic(features).squeeze(-1)
            with torch.no_grad():
                kl_mean = gaussian_kl(batch.mean, batch.std, dist.mean, dist.stddev).mean()
                kl = self.collectives.sum_(kl_mean.reshape(1)).item() / self.collectives.world_size
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
                sums[key] += v.detach() if isinstance(v, torch.Tensor) else v  # read once, below
            count += 1
        result = {k: float(v) / count for k, v in sums.items()}
        result["learning_rate"] = self.learning_rate
        return result
