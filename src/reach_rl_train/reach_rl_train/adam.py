"""Adam, written out: the optimiser PPO steps with.

The arithmetic is torch.optim.Adam's (capturable form, no weight decay). It is written here
because torch.optim's first use imports torch._dynamo, torch's compiler, which nothing here
uses, and whose import costs seconds of start-up in a GPU training that itself takes
seconds. The step count and the learning rate are tensors on the
parameters' device, so a step can be recorded in a CUDA graph, and the learning rate changed
on the device, between or inside replays.

``state_dict()`` has torch.optim.Adam's layout, so checkpoints of either load into this.
"""
from typing import Any, Dict, Iterable, List

import torch


class Adam:
    """Adam over ``params`` with learning rate ``lr`` (a 0-dim tensor on their device, ``.lr``)."""

    def __init__(self, params: Iterable[torch.nn.Parameter], lr: float,
                 betas=(0.9, 0.999), eps: float = 1e-8):
        self.params = list(params)  # type: List[torch.nn.Parameter]
        device = self.params[0].device
        self.betas = betas
        self.eps = eps
        self.lr = torch.tensor(float(lr), device=device)
        self.step_count = torch.zeros((), device=device)
        self.exp_avg = [torch.zeros_like(p) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in self.params]

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        """One Adam step of every parameter from its ``.grad`` (all of them must have one)."""
        beta1, beta2 = self.betas
        grads = [p.grad for p in self.params]
        self.step_count += 1
        torch._foreach_lerp_(self.exp_avg, grads, 1.0 - beta1)
        torch._foreach_mul_(self.exp_avg_sq, beta2)
        torch._foreach_addcmul_(self.exp_avg_sq, grads, grads, 1.0 - beta2)
        step_size = self.lr / (1.0 - beta1 ** self.step_count)
        denom = torch._foreach_sqrt(self.exp_avg_sq)
        torch._foreach_div_(denom, (1.0 - beta2 ** self.step_count).sqrt())
        torch._foreach_add_(denom, self.eps)
        torch._foreach_div_(denom, -step_size)
        torch._foreach_addcdiv_(self.params, self.exp_avg, denom)

    def state_dict(self) -> Dict[str, Any]:
        return {"state": {i: {"step": self.step_count.clone(), "exp_avg": m.clone(),
                              "exp_avg_sq": v.clone()}
                          for i, (m, v) in enumerate(zip(self.exp_avg, self.exp_avg_sq))},
                "param_groups": [{"lr": float(self.lr), "betas": self.betas, "eps": self.eps,
                                  "params": list(range(len(self.params)))}]}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        """A state of this class or of torch.optim.Adam over the same parameters, in order."""
        per_param = state["state"]
        if len(per_param) != len(self.params):
            raise ValueError("optimiser state for %d parameters, the model has %d"
                             % (len(per_param), len(self.params)))
        with torch.no_grad():
            for i, (m, v) in enumerate(zip(self.exp_avg, self.exp_avg_sq)):
                m.copy_(per_param[i]["exp_avg"])
                v.copy_(per_param[i]["exp_avg_sq"])
            self.step_count.fill_(float(per_param[0]["step"]))
            self.lr.fill_(float(state["param_groups"][0]["lr"]))
