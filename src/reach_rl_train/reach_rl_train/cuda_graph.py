"""CUDA graphs for the training loop's fixed-shape work.

A rollout is a few thousand small kernels (policy, arm, limits, reward, resets) whose shapes
never change. Launched one by one from Python, the GPU waits on the launches, not on the
work; recorded once as a CUDA graph and replayed, they launch as one. On the CPU nothing is
captured: the same code runs as it is.

A graph replays the kernels it recorded on the tensors it recorded them with. Two rules follow
for code run under :class:`CapturedCall`:

- no reads to the host (``.item()``, Python branches on tensor values) and no shapes that
  depend on data;
- state carried from one call to the next must live at fixed addresses. Code that rebinds
  attributes (``self.x = f(self.x)``) declares them to a :class:`StateCarry`, whose
  ``store()``, the last step of the captured work, copies the new values into the tensors the
  next replay will read.
"""
from typing import Any, Callable, Iterable, List, Sequence, Tuple

import torch


class StateCarry:
    """The tensor attributes ``names`` of each ``(holder, names)``, kept at the addresses they
    have now across calls: ``store()`` copies each attribute's current value into its original
    tensor and binds that tensor back."""

    def __init__(self, holders: Iterable[Tuple[Any, Sequence[str]]]):
        # (holder, attribute name, the tensor it holds now: its home)
        self.slots = [(holder, name, getattr(holder, name)) for holder, names in holders
                      for name in names]  # type: List[Tuple[Any, str, torch.Tensor]]

    def store(self) -> None:
        for holder, name, home in self.slots:
            value = getattr(holder, name)
            if value is not home:
                home.copy_(value)
                setattr(holder, name, home)


class CapturedCall:
    """``fn()`` (no arguments: it reads and writes fixed tensors) as a CUDA graph on ``device``.

    The first call runs ``fn`` eagerly on a side stream (lazy initialisation, library
    workspaces), the second records it and replays the recording, every later call replays it.
    Each call returns what ``fn`` returned when it was recorded: tensors the graph overwrites at
    every replay, so read them before the next call. ``generators``: the torch.Generators on
    ``device`` that ``fn`` draws from, registered with the graph so that each replay draws new
    numbers. ``fn`` must not draw from torch's default CUDA generator: with torch 2.11 that
    fails inside a capture ("operation not permitted when stream is capturing"). On a device
    other than CUDA every call simply runs ``fn``.
    """

    def __init__(self, fn: Callable[[], Any], device: torch.device,
                 generators: Sequence[torch.Generator] = ()):
        self.fn = fn
        self.enabled = torch.device(device).type == "cuda"
        self.generators = list(generators)
        self.calls = 0
        self.graph = None  # type: Any
        self.outputs = None  # type: Any

    def __call__(self) -> Any:
        self.calls += 1
        if not self.enabled:
            return self.fn()
        if self.calls == 1:
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                outputs = self.fn()
            torch.cuda.current_stream().wait_stream(side)
            return outputs
        if self.graph is None:
            self.graph = torch.cuda.CUDAGraph()
            for generator in self.generators:
                self.graph.register_generator_state(generator)
            with torch.cuda.graph(self.graph):
                self.outputs = self.fn()
        self.graph.replay()
        return self.outputs
