"""Running mean / variance normalisation of observation features (frozen into the policy file)."""
import torch
from torch import nn


class RunningNormalizer(nn.Module):
    """y = (x - mean) / sqrt(var + eps), with mean and var tracked over every batch seen.

    The statistics are buffers, so they travel with ``state_dict`` and are exported into
    the ONNX graph as constants. In a data-parallel job (``collectives``, see
    :mod:`reach_rl_train.distributed`) each update merges every rank's batch, so the
    statistics stay equal on all ranks.
    """

    def __init__(self, size: int, eps: float = 1e-4, clip: float = 10.0, collectives=None):
        super().__init__()
        self.eps, self.clip = eps, clip
        self.collectives = collectives  # distributed.Collectives of a torchrun job, or None
        self.register_buffer("mean", torch.zeros(size))
        self.register_buffer("var", torch.ones(size))
        self.register_buffer("count", torch.tensor(0.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return ((x - self.mean) / torch.sqrt(self.var + self.eps)).clamp(-self.clip, self.clip)

    @torch.no_grad()
    def update(self, x: torch.Tensor) -> None:
        """Merge the statistics of batch ``x`` [B, size] (parallel-variance formula)."""
        batch_mean = x.mean(0)
        batch_var = x.var(0, unbiased=False)
        n = float(x.shape[0])
        if self.collectives is not None and self.collectives.world_size > 1:
            # Every rank's batch (all of the same size) as one: average mean and
            # var + mean^2 over ranks.
            moments = torch.cat([batch_mean, batch_var + batch_mean.square()]).double()
            moments = self.collectives.sum_(moments) / self.collectives.world_size
            size = batch_mean.numel()
            n *= self.collectives.world_size
            batch_mean = moments[:size].to(x.dtype)
            batch_var = moments[size:].to(x.dtype) - batch_mean.square()
        total = self.count + n
        delta = batch_mean - self.mean
        self.mean += delta * n / total
        self.var.copy_((self.var * self.count + batch_var * n + delta.square() * self.count * n / total)
                       / total)
        self.count.fill_(total)
