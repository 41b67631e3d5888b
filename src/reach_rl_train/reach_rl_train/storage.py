"""Rollout storage on the training device, with generalised advantage estimation."""
from typing import Iterator, NamedTuple, Optional

import torch


class Transition(NamedTuple):
    """One policy step of every environment, as the rollout stores it (tensors, first dim N)."""

    features: torch.Tensor  # the encoder's raw features of the observation (ActorCritic.encode)
    action: torch.Tensor
    reward: torch.Tensor  # time-limit ends already bootstrapped with gamma * value
    done: torch.Tensor  # 0/1
    value: torch.Tensor
    log_prob: torch.Tensor
    mean: torch.Tensor
    std: torch.Tensor


class Minibatch(NamedTuple):
    """A shuffled slice of the rollout for one PPO update (first dim: minibatch size)."""

    features: torch.Tensor
    action: torch.Tensor
    log_prob: torch.Tensor
    value: torch.Tensor
    ret: torch.Tensor
    advantage: torch.Tensor
    mean: torch.Tensor
    std: torch.Tensor


class RolloutStorage:
    """``num_steps`` x ``num_envs`` transitions; ``add`` one step at a time, then ``compute_returns``."""

    def __init__(self, num_steps: int, num_envs: int, feature_dim: int, num_actions: int, device):
        """``feature_dim``: the width of the encoder's features, which the storage keeps instead
        of the raw observation so that the PPO epochs need not run the encoder (its forward and
        inverse kinematics) again."""
        self.num_steps, self.num_envs = num_steps, num_envs
        shape = (num_steps, num_envs)

        def zeros(*extra):
            return torch.zeros(shape + extra, device=device)

        self.features = zeros(feature_dim)
        self.actions = zeros(num_actions)
        self.rewards = zeros()
        self.dones = zeros()
        self.values = zeros()
        self.log_probs = zeros()
        self.means = zeros(num_actions)
        self.stds = zeros(num_actions)
        self.returns = zeros()
        self.advantages = zeros()
        self.order = None  # type: Optional[torch.Tensor]  # [epochs, steps * envs]: shuffle()'s
        self.step = 0

    def add(self, transition: Transition) -> None:
        t = self.step
        for buf, x in zip((self.features, self.actions, self.rewards, self.dones, self.values,
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
        # in place: a CUDA graph of the PPO update reads these very tensors
        torch.add(self.advantages, self.values, out=self.returns)
        mean, std = self.advantages.mean(), self.advantages.std()
        self.advantages.sub_(mean).div_(std + 1e-8)
        self.step = 0

    def shuffle(self, num_epochs: int, generator: torch.Generator) -> None:
        """Draw each epoch's order of the transitions (``generator`` on the storage's device)."""
        total = self.num_steps * self.num_envs
        if self.order is None or self.order.shape[0] != num_epochs:
            self.order = torch.empty(num_epochs, total, dtype=torch.long,
                                     device=self.features.device)
        for epoch in range(num_epochs):
            self.order[epoch].copy_(torch.randperm(total, generator=generator,
                                                   device=generator.device))

    def minibatches(self, num_minibatches: int) -> Iterator[Minibatch]:
        """``num_minibatches`` per epoch of the last ``shuffle()``, in its order."""
        assert self.order is not None, "shuffle() first"
        size = self.num_steps * self.num_envs // num_minibatches
        flat = [x.flatten(0, 1) for x in (self.features, self.actions, self.log_probs, self.values,
                                          self.returns, self.advantages, self.means, self.stds)]
        for order in self.order:
            for i in range(num_minibatches):
                idx = order[i * size:(i + 1) * size]
                yield Minibatch(*(x[idx] for x in flat))
