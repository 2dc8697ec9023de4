"""The training step, run eagerly or replayed as one captured CUDA graph.

A step is forward (under autocast), loss, backward and optimizer step, plus on-device
bookkeeping that is read back only at checks: the training loss summed since the last check,
the first step whose loss was not finite and, under fp16, the steps the loss scaler skipped.
Nothing is read back per step, except by fp16's loss scaler (`torch.amp.GradScaler` reads
once a step whether the gradients overflowed, and skips the update if they did).

At the course's batch sizes (32, 64) these models leave a GPU mostly idle and an eager step
costs its kernel launches; `GraphedStep` captures the whole step once, the batch's gather
from the on-device images, normalisation, resizing and channels_last included, and then
replays it with one launch. What varies per step (which images) goes in through a static
index tensor; the learning rate is baked in and a change of it captures the step again.
"""
from __future__ import annotations

import contextlib
import warnings
from typing import Callable

import torch
import torch.nn as nn


def autocast(device_type: str, dtype: torch.dtype | None, cache_enabled: bool = True):
    """torch.autocast to `dtype`, or no context at all for fp32 (before torch 2.5 even a
    disabled autocast raises on MPS)."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type, dtype=dtype, cache_enabled=cache_enabled)


def get_rng_state(device: torch.device) -> torch.Tensor:
    """The random generator state of `device` (CUDA: its current device): what Dropout
    draws from in a step."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_rng_state(device)
    if device.type == "mps":
        return torch.mps.get_rng_state()
    return torch.get_rng_state()


def set_rng_state(device: torch.device, state: torch.Tensor) -> None:
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.set_rng_state(state, device)
    elif device.type == "mps":
        torch.mps.set_rng_state(state)
    else:
        torch.set_rng_state(state)


class TrainStep:
    """One eager optimizer step of `model` on (images, labels), with its bookkeeping.

    Under fp16 (`autocast_dtype=torch.float16`) the loss is scaled by `self.scaler`
    (dynamic loss scaling): a step whose gradients overflowed is skipped and the scale
    halved, as fp16's narrow range needs; `skipped` counts those steps (normal, not a
    divergence). bf16 has fp32's range and needs no scaler.
    """

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, criterion: nn.Module,
                 device: torch.device, autocast_dtype: torch.dtype | None = None):
        self.model, self.optimizer, self.criterion = model, optimizer, criterion
        self.device, self.autocast_dtype = torch.device(device), autocast_dtype
        self.scaler = (torch.amp.GradScaler(self.device.type)
                       if autocast_dtype == torch.float16 else None)
        # Static tensors, updated in place (a captured graph writes to the same memory).
        self.loss_sum = torch.zeros((), device=self.device)
        self.count = torch.zeros((), dtype=torch.long, device=self.device)  # steps so far
        self.first_bad = torch.full((), -1, dtype=torch.long, device=self.device)
        self.skipped = torch.zeros((), dtype=torch.long, device=self.device)  # fp16 only
        self._one = torch.ones((), device=self.device)

    def reset(self, loss_sum: float = 0.0, count: int = 0) -> None:
        """Start a new interval between checks (at step `count`)."""
        self.loss_sum.fill_(loss_sum)
        self.count.fill_(count)
        self.first_bad.fill_(-1)

    @property
    def loss_scale(self) -> float | None:
        """The fp16 loss scale now (a read-back), None without a scaler."""
        return None if self.scaler is None else float(self.scaler.get_scale())

    def __call__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        # cache_enabled=False: autocast's weight cast cache does not survive graph capture.
        with autocast(self.device.type, self.autocast_dtype, cache_enabled=False):
            logits = self.model(images)
        loss = self.criterion(logits.float(), labels)
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is None:
            loss.backward()
            self.optimizer.step()
        else:
            scale = self.scaler.scale(self._one)  # the scale before, as a device tensor
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)  # no update when the gradients overflowed
            self.scaler.update()  # which then halves the scale: that is how a skip shows
            self.skipped.add_((self.scaler.scale(self._one) < scale).long())
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


# What Adam says when a capturable optimizer steps outside a graph: the warm-up above and
# the eager short batches of a graphed run do so on purpose.
_CAPTURABLE_WARNING = ".*capturable=True.*"


def make_capturable(optimizer: torch.optim.Optimizer, capturable: bool = True) -> None:
    """Let Adam-style optimizers step inside a graph: `capturable` on, step counts on the
    parameters' device (where a resumed state dict may have left them on the CPU). Off: for
    an eager run resumed from a graphed run's checkpoint (a CPU refuses capturable), with
    the step counts back on the CPU, where eager Adam keeps them (on a GPU they would cost
    a read-back every step)."""
    for group in optimizer.param_groups:
        if "capturable" in group:
            group["capturable"] = capturable
    for param, state in optimizer.state.items():
        step = state.get("step")
        where = param.device if capturable else torch.device("cpu")
        if torch.is_tensor(step) and step.device != where:
            state["step"] = step.to(where, torch.float32)


class GraphedStep:
    """`step` on the images `gather(index)` selects, replayed as one captured graph.

    Called with a batch's index tensor (on the device). A batch of another size than
    `batch_size` (a short last batch) runs eagerly. Capturing runs the step a few times; the
    model's weights and buffers, the optimizer's state and the bookkeeping are restored
    afterwards (state the optimizer creates in those runs is zeroed, as it is created), and
    so is the random generator of the step's device (Dropout draws the masks the eager step
    would), so training is step for step the eager one. fp16's loss scaler cannot be
    captured (it decides on the host whether to step): a step with a scaler is refused.
    `record` captures a callable and returns its replay: `capture_cuda_graph`, or in tests
    on a CPU a recorder that returns the callable.
    """

    def __init__(self, step: TrainStep, gather: Callable[[torch.Tensor], tuple],
                 batch_size: int, record: Callable = capture_cuda_graph):
        if step.scaler is not None:
            raise ValueError("a step with fp16's loss scaler cannot be captured as a graph")
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
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=_CAPTURABLE_WARNING)
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
        rng = get_rng_state(self.step.device)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=_CAPTURABLE_WARNING)
            self.replay = self.record(lambda: self.step(*self.gather(self.index)))
        self.captured_lrs = [group["lr"] for group in self.step.optimizer.param_groups]
        set_rng_state(self.step.device, rng)  # replays draw what the eager steps would
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
        return tensors + [self.step.loss_sum, self.step.count, self.step.first_bad,
                          self.step.skipped]
