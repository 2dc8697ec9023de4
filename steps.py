"""The training step, run eagerly or replayed as one captured CUDA graph.

A step is forward (under autocast), loss, backward and optimizer step, plus on-device
bookkeeping that is read back only at checks: the training loss summed since the last check
and the first step whose loss was not finite. Nothing is read back per step.

At the course's batch sizes (32, 64) these models leave a GPU mostly idle and an eager step
costs its kernel launches; `GraphedStep` captures the whole step once, the batch's gather
from the on-device images, normalisation, resizing and channels_last included, and then
replays it with one launch. What varies per step (which images) goes in through a static
index tensor; the learning rate is baked in and a change of it captures the step again.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn as nn


class TrainStep:
    """One eager optimizer step of `model` on (images, labels), with its bookkeeping."""

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, criterion: nn.Module,
                 device: torch.device, autocast_dtype: torch.dtype | None = None):
        self.model, self.optimizer, self.criterion = model, optimizer, criterion
        self.device, self.autocast_dtype = torch.device(device), autocast_dtype
        # Static tensors, updated in place (a captured graph writes to the same memory).
        self.loss_sum = torch.zeros((), device=self.device)
        self.count = torch.zeros((), dtype=torch.long, device=self.device)  # steps so far
        self.first_bad = torch.full((), -1, dtype=torch.long, device=self.device)

    def reset(self, loss_sum: float = 0.0, count: int = 0) -> None:
        """Start a new interval between checks (at step `count`)."""
        self.loss_sum.fill_(loss_sum)
        self.count.fill_(count)
        self.first_bad.fill_(-1)

    def __call__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        # cache_enabled=False: autocast's weight cast cache does not survive graph capture.
        with torch.autocast(self.device.type, dtype=self.autocast_dtype or torch.bfloat16,
                            enabled=self.autocast_dtype is not None, cache_enabled=False):
            logits = self.model(images)
        loss = self.criterion(logits.float(), labels)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        loss = loss.detach()
        self.loss_sum.add_(loss)
        self.count.add_(1)
        # Remember the first non-finite step without reading the loss back.
        self.first_bad.copy_(torch.where(~torch.isfinite(loss) & (self.first_bad < 0),
                                         self.count, self.first_bad))


def capture_cuda_graph(fn: Callable[[], None], warmup: int = 3) -> Callable[[], None]:
    """Capture one call of `fn` as a CUDA graph and return its replay.

    `fn` runs `warmup` times on a side stream first (cuDNN picks its kernels, the optimizer
    creates its state, the autograd graph is built), as PyTorch's CUDA-graph notes ask; those
    calls change the model, so `GraphedStep` restores everything afterwards.
    """
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(warmup):
            fn()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        fn()
    return graph.replay  # the bound method keeps the graph alive


def make_capturable(optimizer: torch.optim.Optimizer, capturable: bool = True) -> None:
    """Let Adam-style optimizers step inside a graph: `capturable` on, step counts on the
    parameters' device (where a resumed state dict may have left them on the CPU). Off: for
    an eager run resumed from a graphed run's checkpoint (a CPU refuses capturable)."""
    for group in optimizer.param_groups:
        if "capturable" in group:
            group["capturable"] = capturable
    if not capturable:
        return
    for param, state in optimizer.state.items():
        step = state.get("step")
        if torch.is_tensor(step) and step.device != param.device:
            state["step"] = step.to(param.device, torch.float32)


class GraphedStep:
    """`step` on the images `gather(index)` selects, replayed as one captured graph.

    Called with a batch's index tensor (on the device). A batch of another size than
    `batch_size` (a short last batch) runs eagerly. Capturing runs the step a few times; the
    model's weights and buffers, the optimizer's state and the bookkeeping are restored
    afterwards (state the optimizer creates in those runs is zeroed, as it is created), so
    training is step for step the eager one. `record` captures a callable and returns its
    replay: `capture_cuda_graph`, or in tests on a CPU a recorder that returns the callable.
    """

    def __init__(self, step: TrainStep, gather: Callable[[torch.Tensor], tuple],
                 batch_size: int, record: Callable = capture_cuda_graph):
        self.step, self.gather, self.record = step, gather, record
        self.index = torch.zeros(batch_size, dtype=torch.long, device=step.device)
        self.replay: Callable[[], None] | None = None
        self.captured_lrs: list[float] | None = None

    @classmethod
    def over(cls, step: TrainStep, batches) -> "GraphedStep":
        """`step` graphed over `batches` (needs their `gather` and `batch_size`)."""
        if not hasattr(batches, "gather"):
            raise ValueError("CUDA graphs need batches with iter_indices_from and gather")
        return cls(step, batches.gather, batches.batch_size)

    def __call__(self, index: torch.Tensor) -> None:
        if len(index) != len(self.index):
            self.step(*self.gather(index))
            return
        lrs = [group["lr"] for group in self.step.optimizer.param_groups]
        if self.replay is None or lrs != self.captured_lrs:
            self.capture()
        self.index.copy_(index)
        self.replay()

    def capture(self) -> None:
        if self.step.device.type == "cuda":
            make_capturable(self.step.optimizer)
        before = self._tensors()
        saved = {id(t): t.detach().clone() for t in before}
        self.replay = self.record(lambda: self.step(*self.gather(self.index)))
        self.captured_lrs = [group["lr"] for group in self.step.optimizer.param_groups]
        with torch.no_grad():
            for t in self._tensors():
                if id(t) in saved:
                    t.copy_(saved[id(t)])
                else:  # optimizer state made in the warm-up: as new (Adam's zeros, step 0)
                    t.zero_()

    def _tensors(self) -> list[torch.Tensor]:
        """Everything a step changes: weights, buffers, optimizer state, bookkeeping."""
        model = self.step.model  # parameters() and buffers(): the same objects on every call
        tensors = [*model.parameters(), *model.buffers()]
        for state in self.step.optimizer.state.values():
            tensors += [v for v in state.values() if torch.is_tensor(v)]
        return tensors + [self.step.loss_sum, self.step.count, self.step.first_bad]
