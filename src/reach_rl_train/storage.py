"""Rollout storage on the training device, with generalised advantage estimation."""
from typing import Iterator, NamedTuple

import torch


class Transition(NamedTuple):
    """One policy step of every environment, as the rollout stores it (tensors, first dim N)."""

    obs: torch.Tensor
    action: torch.Tensor
    reward: torch.Tensor  # time-limit ends already bootstrapped with gamma * value
    done: torch.Tensor  # 0/1
    value: torch.Tensor
    log_prob: torch.Tensor
    mean: torch.Tensor
    std: torch.Tensor


class Minibatch(NamedTuple):
    """A shuffled slice of the rollout for one PPO update (first dim: minibatch size)."""

    obs: torch.Tensor
    action: torch.Tensor
    log_prob: torch.Tensor
    value: torch.Tensor
    ret: torch.Tensor
    advantage: torch.Tensor
    mean: torch.Tensor
    std: torch.Tensor


class RolloutStorage:
    """``num_steps`` x ``num_envs`` transitions; ``add`` one step at a time, then ``compute_returns``."""

    def __init__(self, num_steps: int, num_envs: int, obs_dim: int, num_actions: int, device):
        self.num_steps, self.num_envs = num_steps, num_envs
        shape = (num_steps, num_envs)

        def zeros(*extra):
            return torch.zeros(shape + extra, device=device)

        self.obs = zeros(obs_dim)
        self.actions = zeros(num_actions)
        self.rewards = zeros()
        self.dones = zeros()
        self.values = zeros()
        self.log_probs = zeros()
        self.means = zeros(num_actions)
        self.stds = zeros(num_actions)
        self.returns = zeros()
        self.advantages = zeros()
        self.step = 0

    def add(self, transition: Transition) -> None:
        t = self.step
        for buf, x in zip((self.obs, self.actions, self.rewards, self.dones, self.values,
                           self.log_probs, self.means, self.stds), transition):
            buf[t].copy_(x)
        self.step += 1

    def compute_returns(self, last_value: torch.Tensor, gamma: float, lam: float) -> None:
        """GAE(gamma, lambda) advantages (normalised) and returns; resets ``step``."""
        advantage = torch.zeros_like(last_value)
        for t in reversed(range(self.num_steps)):
            next_value = last_value if t == self.num_steps - 1 else self.values[t + 1]
            not_done = 1.0 - self.dones[t]
            delta = self.rewards[t] + gamma * next_value * not_done - self.values[t]
            advantage = delta + gamma * lam * not_done * advantage
            self.advantages[t] = advantage
        self.returns = self.advantages + self.values
        self.advantages = (self.advantages - self.advantages.mean()) / (self.advantages.std() + 1e-8)
        self.step = 0

    def minibatches(self, num_minibatches: int, num_epochs: int,
                    generator: torch.Generator) -> Iterator[Minibatch]:
        """Shuffled minibatches, ``num_minibatches`` per epoch."""
        total = self.num_steps * self.num_envs
        size = total // num_minibatches
        flat = [x.flatten(0, 1) for x in (self.obs, self.actions, self.log_probs, self.values,
                                          self.returns, self.advantages, self.means, self.stds)]
        for _ in range(num_epochs):
            order = torch.randperm(total, generator=generator, device="cpu").to(self.obs.device)
            for i in range(num_minibatches):
                idx = order[i * size:(i + 1) * size]
                yield Minibatch(*(x[idx] for x in flat))
