"""Data-parallel training with torch.distributed, launched by torchrun.

``torchrun --nproc_per_node=N -m reach_rl_train.cli ...`` starts N copies of the trainer and
gives each ``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE`` (and a rendezvous). Each process owns
one device (``cuda:LOCAL_RANK``, or the CPU) and its own ``run.num_envs`` arms; they share one
policy:

* rank 0's weights and normaliser statistics are broadcast at start;
* gradients are averaged over ranks after every minibatch's backward pass (NCCL on GPUs,
  gloo on the CPU), so every rank takes the same optimiser step;
* the observation normaliser merges every rank's batch moments;
* the adaptive learning rate follows the KL averaged over ranks;
* a stop (goal reached, a benchmark's time limit) on any rank stops all of them together.

Collectives time out after ``run.dist_timeout_s``: a rank that hangs ends the job with an
error instead of a hang. A rank that dies is torchrun's to handle: with its default
``--max-restarts 0`` the agent stops the other ranks and reports the failed one's error.

In a single process (no ``WORLD_SIZE``) :class:`Collectives` does nothing, and training is
what it always was.
"""
import datetime
import os
from typing import Iterable, NamedTuple

import torch
import torch.distributed as dist


class Ranks(NamedTuple):
    """Where this process stands in the job: torchrun's RANK, LOCAL_RANK and WORLD_SIZE."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the one that logs, checkpoints, evaluates and exports."""
        return self.rank == 0


def ranks_from_environment(env=os.environ) -> Ranks:
    """The ranks torchrun set in ``env``; one process (rank 0 of 1) when it set none."""
    try:
        ranks = Ranks(int(env.get("RANK", 0)), int(env.get("LOCAL_RANK", 0)),
                      int(env.get("WORLD_SIZE", 1)))
    except ValueError:
        raise ValueError("RANK, LOCAL_RANK and WORLD_SIZE must be integers (torchrun sets them), "
                         "got %r, %r, %r" % (env.get("RANK"), env.get("LOCAL_RANK"),
                                             env.get("WORLD_SIZE"))) from None
    if ranks.world_size < 1 or not 0 <= ranks.rank < ranks.world_size:
        raise ValueError("RANK %d must be in [0, WORLD_SIZE %d)" % (ranks.rank, ranks.world_size))
    return ranks


def device_for_rank(device: str, ranks: Ranks) -> str:
    """The device this rank trains on: ``cuda:LOCAL_RANK`` for a CUDA run of several ranks
    (each process owns one GPU), else ``device`` itself."""
    if ranks.world_size > 1 and device.startswith("cuda"):
        return "cuda:%d" % ranks.local_rank
    return device


class Collectives:
    """What the ranks of a data-parallel job share; for a single process, nothing."""

    world_size = 1

    def broadcast_module(self, module: torch.nn.Module) -> None:
        """Every rank takes rank 0's parameters and buffers."""

    def average_gradients(self, parameters: Iterable[torch.nn.Parameter]) -> None:
        """Replace each gradient by its mean over ranks."""

    def sum_(self, tensor: torch.Tensor) -> torch.Tensor:
        """``tensor`` summed over ranks, in place; returns it."""
        return tensor

    def any(self, flag: bool) -> bool:
        """True on every rank when ``flag`` is True on any rank."""
        return flag

    def barrier(self) -> None:
        """Wait until every rank is here."""

    def close(self) -> None:
        """Leave the job."""


class TorchDistributed(Collectives):
    """:class:`Collectives` over a torch.distributed process group: NCCL for CUDA devices,
    gloo for the CPU, every collective bounded by ``timeout_s`` [s]."""

    def __init__(self, ranks: Ranks, device: torch.device, timeout_s: float):
        self.world_size = ranks.world_size
        self.device = device
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend, rank=ranks.rank, world_size=ranks.world_size,
                                timeout=datetime.timedelta(seconds=timeout_s))

    def broadcast_module(self, module: torch.nn.Module) -> None:
        for tensor in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(tensor.data, src=0)

    def average_gradients(self, parameters: Iterable[torch.nn.Parameter]) -> None:
        grads = [p.grad for p in parameters if p.grad is not None]
        flat = torch.cat([g.reshape(-1) for g in grads])  # one all-reduce, not one per tensor
        dist.all_reduce(flat)
        flat /= self.world_size
        offset = 0
        for g in grads:
            g.copy_(flat[offset:offset + g.numel()].view_as(g))
            offset += g.numel()

    def sum_(self, tensor: torch.Tensor) -> torch.Tensor:
        dist.all_reduce(tensor)
        return tensor

    def any(self, flag: bool) -> bool:
        value = torch.tensor([1.0 if flag else 0.0], device=self.device)
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value.item() > 0.0)

    def barrier(self) -> None:
        dist.barrier()

    def close(self) -> None:
        if dist.is_initialized():
            dist.destroy_process_group()


def collectives_for(ranks: Ranks, device: torch.device, timeout_s: float) -> Collectives:
    """Collectives of a torchrun job (``ranks.world_size`` > 1), or the single-process ones."""
    if ranks.world_size == 1:
        return Collectives()
    return TorchDistributed(ranks, device, timeout_s)
