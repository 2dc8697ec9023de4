"""The training step, run eagerly or replayed as one captured CUDA graph, behind one interface.

A step is forward (under autocast), loss, backward and optimizer step, plus on-device
bookkeeping that is read back only at checks: the training loss summed since the last
check, the steps since then, the first of them whose loss was not finite and, under fp16,
the steps the loss scaler skipped. Nothing is read back per step, except by fp16's loss
scaler (`torch.amp.GradScaler` reads once a step whether the gradients overflowed, and skips
the update if they did).

The Trainer sees one interface (`Step`), whatever the kind: `batches_from(k)` (this epoch's
batches from batch k, in the form the step takes), calling it on a batch (one optimizer
step), `peek()` and `read()` (one read-back each: the interval since the last read; `read`
starts a new one), `summary()` (what the run file records of the step), `state_dict()` /
`load_state_dict()` (what a checkpoint keeps), `kind` and `describe()`. `make_step` builds
the eager or the graphed one.

At the course's batch sizes (32, 64) these models leave a GPU mostly idle and an eager step
costs its kernel launches; `GraphedStep` captures the whole step once, the batch's gather
from the on-device images, normalisation, resizing and channels_last included, and then
replays it with one launch. What varies per step (which images) goes in through a static
index tensor; the learning rate is baked in and a change of it captures the step again.
"""
from __future__ import annotations

import contextlib
import itertools
import random
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn


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


@contextlib.contextmanager
def training_rng_kept(device: torch.device):
    """Run what is not training (figures, tables, models built for a table, progress) as if
    it drew nothing random: PyTorch's CPU generator and `device`'s (`torch.random.fork_rng`),
    NumPy's and Python's are as they were when the block ends. A run's numbers then depend
    on its seed and flags alone, not on how often such work ran (Dropout draws its masks from
    the CPU generator on the CPU)."""
    device = torch.device(device)
    devices = []
    if device.type == "cuda":
        devices = [device.index if device.index is not None else torch.cuda.current_device()]
    elif device.type == "mps":
        devices = [device]
    numpy_state, python_state = np.random.get_state(), random.getstate()
    try:
        with torch.random.fork_rng(devices=devices,
                                   device_type=device.type if devices else None):
            yield
    finally:
        np.random.set_state(numpy_state)
        random.setstate(python_state)


class TrainStep:
    """One eager optimizer step of `model` on (images, labels), with its bookkeeping on the
    device: `loss_sum` and `count` (the loss summed over the steps since the last `reset`,
    and how many), `first_bad` (the count at the first step whose loss was not finite; -1:
    none) and `skipped` (fp16: the steps the loss scaler skipped since the run began).

    `scheduler` (a `torch.optim.lr_scheduler`, or None) steps after every optimizer step:
    a learning-rate schedule over the run's steps.

    Under fp16 (`autocast_dtype=torch.float16`) the loss is scaled by `self.scaler`
    (dynamic loss scaling): a step whose gradients overflowed is skipped and the scale
    halved, as fp16's narrow range needs (normal, not a divergence). bf16 has fp32's range
    and needs no scaler.
    """

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, criterion: nn.Module,
                 device: torch.device, autocast_dtype: torch.dtype | None = None,
                 scheduler: torch.optim.lr_scheduler.LRScheduler | None = None):
        self.model, self.optimizer, self.criterion = model, optimizer, criterion
        self.scheduler = scheduler  # stepped after every optimizer step
        self.device, self.autocast_dtype = torch.device(device), autocast_dtype
        self.scaler = (torch.amp.GradScaler(self.device.type)
                       if autocast_dtype == torch.float16 else None)
        # Static tensors, updated in place (a captured graph writes to the same memory).
        self.loss_sum = torch.zeros((), device=self.device)
        self.count = torch.zeros((), dtype=torch.long, device=self.device)
        self.first_bad = torch.full((), -1, dtype=torch.long, device=self.device)
        self.skipped = torch.zeros((), dtype=torch.long, device=self.device)  # fp16 only
        self._one = torch.ones((), device=self.device)

    def reset(self, loss_sum: float = 0.0, count: int = 0) -> None:
        """Start a new interval (or continue a saved one: its loss sum and step count)."""
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
        if self.scheduler is not None:
            self.scheduler.step()
        loss = loss.detach()
        self.loss_sum.add_(loss)
        self.count.add_(1)
        # Remember the first non-finite step without reading the loss back.
        self.first_bad.copy_(torch.where(~torch.isfinite(loss) & (self.first_bad < 0),
                                         self.count, self.first_bad))


@dataclass
class Interval:
    """The steps since the last `Step.read()`, as one read-back gives them."""
    steps: int                    # optimizer steps in the interval
    loss_sum: float               # their training losses, summed
    first_bad: int | None = None  # the 1-based step of the interval whose loss was not finite
    fields: dict = field(default_factory=dict)  # what a check records besides (fp16's scaler)

    @property
    def mean_loss(self) -> float:
        return self.loss_sum / self.steps if self.steps else float("nan")


class Step:
    """The eager step over `batches` (any iterable of (images, labels); `iter_from(k)`, when
    they have it, resumes mid-epoch exactly): the interface the Trainer calls."""
    kind = "eager"

    def __init__(self, core: TrainStep, batches=None):
        self.core, self.batches = core, batches

    @property
    def optimizer(self) -> torch.optim.Optimizer:
        return self.core.optimizer

    @property
    def scaler(self) -> torch.amp.GradScaler | None:
        return self.core.scaler

    def describe(self) -> str:
        dtype = self.core.autocast_dtype
        name = {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}.get(dtype, str(dtype))
        return name + (" with dynamic loss scaling" if self.core.scaler is not None else "")

    def batches_from(self, start: int = 0) -> Iterator:
        """This epoch's training batches from batch `start` on, as __call__ takes them."""
        if hasattr(self.batches, "iter_from"):
            return self.batches.iter_from(start)
        return itertools.islice(iter(self.batches), start, None)

    def __call__(self, batch) -> None:
        """One optimizer step on (images, labels). No read-back."""
        self.core(*batch)

    def peek(self) -> Interval:
        """The interval so far, in one read-back; it goes on."""
        core = self.core
        values = [core.loss_sum.float(), core.count.float(), core.first_bad.float()]
        if core.scaler is not None:  # the scale as a device tensor, read in the same copy
            values += [core.skipped.float(), core.scaler.scale(core._one).float()]
        loss_sum, count, first_bad, *fp16 = torch.stack(values).tolist()
        fields = ({"loss_scale": fp16[1], "skipped_steps": int(fp16[0])} if fp16 else {})
        return Interval(int(count), loss_sum, int(first_bad) if first_bad >= 0 else None,
                        fields)

    def read(self) -> Interval:
        """The interval since the last read, in one read-back; a new one starts."""
        interval = self.peek()
        self.core.reset()
        return interval

    def summary(self) -> dict:
        """What the run file records of the step: fp16's loss scaler (the steps it skipped
        since the run began, its scale now), else nothing."""
        if self.core.scaler is None:
            return {"loss_scaler": None}
        fields = self.peek().fields
        return {"loss_scaler": {"skipped_steps": fields["skipped_steps"],
                                "scale": fields["loss_scale"]}}

    def state_dict(self) -> dict:
        """What a checkpoint keeps: the interval so far, the skipped steps, the scaler, the
        learning-rate schedule."""
        interval = self.peek()
        scaler, scheduler = self.core.scaler, self.core.scheduler
        return {"loss_sum": interval.loss_sum, "count": interval.steps,
                "skipped": int(self.core.skipped.item()),
                "scaler": scaler.state_dict() if scaler is not None else None,
                "scheduler": scheduler.state_dict() if scheduler is not None else None}

    def load_state_dict(self, state: dict) -> None:
        """Continue from `state_dict()`; the optimizer (loaded before) made eager, in case
        the checkpoint was a graphed run's."""
        make_capturable(self.core.optimizer, False)
        self._load(state)

    def _load(self, state: dict) -> None:
        self.core.reset(state["loss_sum"], state["count"])
        self.core.skipped.fill_(state.get("skipped", 0))
        if self.core.scaler is not None and state.get("scaler"):
            self.core.scaler.load_state_dict(state["scaler"])  # the scale and growth count
        if self.core.scheduler is not None and state.get("scheduler"):
            self.core.scheduler.load_state_dict(state["scheduler"])


def legacy_state(checkpoint: dict) -> dict:
    """`Step.state_dict()` of a checkpoint written before 2026-12-01, which kept the step's
    state among the Trainer's (`loss_sum`, `loss_count`, `skipped_steps`) and the scaler's
    apart."""
    trainer = checkpoint.get("trainer") or {}
    return {"loss_sum": trainer.get("loss_sum", 0.0), "count": trainer.get("loss_count", 0),
            "skipped": trainer.get("skipped_steps", 0), "scaler": checkpoint.get("scaler")}


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


class GraphedStep(Step):
    """The step on the images `gather(index)` selects, replayed as one captured graph.

    Called with a batch's index tensor (on the device): `batches_from` yields those
    (`iter_indices_from` of the batches). A batch of another size than `batch_size` (a
    short last batch) runs eagerly. Capturing runs the step a few times; the model's weights
    and buffers, the optimizer's state and the bookkeeping are restored afterwards (state the
    optimizer creates in those runs is zeroed, as it is created), and so is the random
    generator of the step's device (Dropout draws the masks the eager step would), so
    training is step for step the eager one. fp16's loss scaler cannot be captured (it
    decides on the host whether to step): a step with a scaler is refused. `record` captures
    a callable and returns its replay: `capture_cuda_graph`, or in tests on a CPU a recorder
    that returns the callable.
    """
    kind = "graphed"

    def __init__(self, step: TrainStep, gather: Callable[[torch.Tensor], tuple],
                 batch_size: int, record: Callable = capture_cuda_graph, batches=None):
        if step.scaler is not None:
            raise ValueError("a step with fp16's loss scaler cannot be captured as a graph")
        if step.scheduler is not None:  # the rate is baked into a capture
            raise ValueError("a step with a learning-rate schedule cannot be captured as a "
                             "graph")
        super().__init__(step, batches)
        self.gather, self.record = gather, record
        self.index = torch.zeros(batch_size, dtype=torch.long, device=step.device)
        self.replay: Callable[[], None] | None = None
        self.captured_lrs: list[float] | None = None

    @classmethod
    def over(cls, step: TrainStep, batches) -> GraphedStep:
        """`step` graphed over `batches` (needs their `gather`, `iter_indices_from` and
        `batch_size`)."""
        if not hasattr(batches, "gather"):
            raise ValueError("CUDA graphs need batches with iter_indices_from and gather")
        if getattr(batches, "augment", False):
            raise ValueError("CUDA graphs do not capture the augmentation of the batches")
        return cls(step, batches.gather, batches.batch_size, batches=batches)

    def describe(self) -> str:
        return super().describe() + ", CUDA graphs"

    def batches_from(self, start: int = 0) -> Iterator[torch.Tensor]:
        return self.batches.iter_indices_from(start)

    def load_state_dict(self, state: dict) -> None:
        self._load(state)  # the capture makes the optimizer capturable

    def __call__(self, index: torch.Tensor) -> None:
        core = self.core
        if len(index) != len(self.index):
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=_CAPTURABLE_WARNING)
                core(*self.gather(index))
            return
        lrs = [group["lr"] for group in core.optimizer.param_groups]
        if self.replay is None or lrs != self.captured_lrs:
            self.capture()
        self.index.copy_(index)
        self.replay()

    def capture(self) -> None:
        core = self.core
        if core.device.type == "cuda":
            make_capturable(core.optimizer)
        before = self._tensors()
        saved = {id(t): t.detach().clone() for t in before}
        rng = get_rng_state(core.device)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=_CAPTURABLE_WARNING)
            self.replay = self.record(lambda: core(*self.gather(self.index)))
        self.captured_lrs = [group["lr"] for group in core.optimizer.param_groups]
        set_rng_state(core.device, rng)  # replays draw what the eager steps would
        with torch.no_grad():
            for t in self._tensors():
                if id(t) in saved:
                    t.copy_(saved[id(t)])
                else:  # optimizer state made in the warm-up: as new (Adam's zeros, step 0)
                    t.zero_()

    def _tensors(self) -> list[torch.Tensor]:
        """Everything a step changes: weights, buffers, optimizer state, bookkeeping."""
        core = self.core
        model = core.model  # parameters() and buffers(): the same objects on every call
        tensors = [*model.parameters(), *model.buffers()]
        for state in core.optimizer.state.values():
            tensors += [v for v in state.values() if torch.is_tensor(v)]
        return tensors + [core.loss_sum, core.count, core.first_bad, core.skipped]


def make_step(model: nn.Module, optimizer: torch.optim.Optimizer, batches,
              device: torch.device, autocast_dtype: torch.dtype | None = None, *,
              graphed: bool = False, criterion: nn.Module | None = None,
              scheduler: torch.optim.lr_scheduler.LRScheduler | None = None) -> Step:
    """The step a run trains with: eager, or replayed as one CUDA graph (`graphed`, which
    needs index batches: `dataloaders.TensorBatches`); cross-entropy on logits unless
    `criterion` says otherwise; `scheduler` stepped after each optimizer step."""
    core = TrainStep(model, optimizer, criterion or nn.CrossEntropyLoss(), device,
                     autocast_dtype, scheduler)
    return GraphedStep.over(core, batches) if graphed else Step(core, batches)
