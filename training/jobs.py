"""What a task trains, decided before any data or Trainer is there: each model as a `Job`
(how to build it and its recipe, flags applied), its optimizer (`make_optimizer`) and
learning-rate schedule (`make_schedule`), the runs --seed/--seeds ask for (`seed_runs`), the
checks --resume makes first, and how often a run's check callback may follow a check.

A task script describes each model as a `Job` and calls trainer.run_jobs(args, jobs), which
loads the data and trains each job for each seed.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from training.errors import UserError
from training.recipes import Recipe
from training.record import Run

# Flags that may change when a run is resumed: how long and where it runs, not what it
# learns (--model, --plot-only, --seeds pick which runs a command makes, not a run's content).
RESUMABLE_FLAGS = ("resume", "epochs", "patience", "device", "cuda_graphs", "data_dir",
                   "output_dir", "no_progress", "debug", "plot_only", "model", "seeds",
                   "eval_batch_size", "no_test_curve", "best_model")

# How often a run's check callback (figures, tables) may follow a check, in seconds of
# wall-clock time; it always follows the first check and the end.
CALLBACK_EVERY_S = 20.0


@dataclass
class Job:
    """One model of a task, trained once per seed: how to build it and how to train it.

    `config` is what the run records besides the flags (the model's key, label, figure
    prefix, its task's default epochs, ...; `Job.of` fills them from the model's recipe);
    `data` holds extra `load_cifar10` options (normalization, image_size, resize_mode, ...).
    epochs/patience/stop_metric None take the command's --epochs/--patience/
    --early-stop-metric.
    """
    run_name: str
    build_model: Callable[[], nn.Module]
    optimizer: str  # "SGD" or "Adam", the course's, with PyTorch's defaults otherwise
    lr: float
    batch_size: int
    weight_decay: float = 0.0  # L2 penalty of the optimizer (the course used none)
    momentum: float = 0.0      # SGD's (the course used none); Nesterov's with `nesterov`
    nesterov: bool = False
    schedule: str | None = None  # "one-cycle" (make_schedule), None: a constant rate
    config: dict = field(default_factory=dict)
    data: dict = field(default_factory=dict)
    epochs: int | None = None
    patience: int | None = None
    stop_metric: str | None = None

    @classmethod
    def of(cls, recipe: Recipe, build_model: Callable[[], nn.Module], args, *,
           suffix: str = "", config: dict | None = None, data: dict | None = None) -> Job:
        """The job of `recipe`'s model: its course recipe, where a flag in `args` (--lr,
        --batch-size, --epochs, --patience, --early-stop-metric, --run-name) does not say
        otherwise."""
        def flag(name, default):
            value = getattr(args, name, None)
            return default if value is None else value

        return cls(flag("run_name", recipe.run_name) + suffix, build_model, recipe.optimizer,
                   flag("lr", recipe.lr), flag("batch_size", recipe.batch_size),
                   weight_decay=recipe.weight_decay, momentum=recipe.momentum,
                   nesterov=recipe.nesterov, schedule=recipe.schedule,
                   config={"model": recipe.key, "label": recipe.label,
                           "figure_prefix": recipe.figure_prefix + suffix,
                           "default_epochs": recipe.epochs, **(config or {})},
                   data={**({"augment": True} if recipe.augment else {}), **(data or {})},
                   epochs=flag("epochs", recipe.epochs),
                   patience=flag("patience", recipe.patience),
                   stop_metric=flag("early_stop_metric", recipe.stop_metric))


def make_optimizer(kind: str, model: nn.Module, lr: float, weight_decay: float = 0.0,
                   momentum: float = 0.0, nesterov: bool = False) -> torch.optim.Optimizer:
    """SGD (no momentum, as the course, unless `momentum`) or Adam (default betas and eps)
    over the parameters that train; `weight_decay` adds that L2 penalty's gradient
    (lambda * w) to each."""
    params = [p for p in model.parameters() if p.requires_grad]
    if kind == "SGD":
        return torch.optim.SGD(params, lr=lr, weight_decay=weight_decay, momentum=momentum,
                               nesterov=nesterov)
    if kind == "Adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {kind!r}")


WARMUP = 0.2  # the share of the steps that the one-cycle schedule warms up over


def make_schedule(kind: str | None, optimizer: torch.optim.Optimizer, steps: int
                  ) -> torch.optim.lr_scheduler.LRScheduler | None:
    """The learning-rate schedule over a run's `steps` optimizer steps, stepped after each:
    None keeps the optimizer's rate; "one-cycle" warms up linearly from a tenth of it over the
    first `WARMUP` of the steps, then decays linearly to a ten-thousandth of it at the last
    (`torch.optim.lr_scheduler.OneCycleLR`; the momentum stays as it is)."""
    if kind is None:
        return None
    if kind != "one-cycle":
        raise ValueError(f"unknown schedule {kind!r}")
    peak = optimizer.param_groups[0]["lr"]
    return torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=peak, total_steps=steps, pct_start=WARMUP, anneal_strategy="linear",
        cycle_momentum=False, div_factor=10, final_div_factor=1000)


def seed_runs(args) -> list[tuple[int, str]]:
    """(seed, run-name suffix) for each run that --seed/--seeds ask for."""
    n = getattr(args, "seeds", 1)
    if n == 1:
        return [(args.seed, "")]
    return [(args.seed + i, f"_seed{args.seed + i}") for i in range(n)]


def run_names(args, jobs: Iterable[Job]) -> list[str]:
    return [job.run_name + suffix for _, suffix in seed_runs(args) for job in jobs]


def check_resume(args, run_names: Iterable[str]) -> None:
    """Before anything is loaded: --resume needs at least one of the command's checkpoints."""
    if not args.resume:
        return
    paths = [Path(args.output_dir) / f"{name}.pt" for name in run_names]
    if not any(p.is_file() for p in paths):
        raise UserError(f"--resume: no checkpoint to resume ({', '.join(map(str, paths))}); "
                        "run without --resume to start training", exit_code=2)


def check_schedule_epochs(run_path: Path, epochs: int) -> None:
    """A run with a learning-rate schedule resumes with the epochs its schedule spans."""
    json_path = run_path.parent / f"{run_path.name}.json"
    if not json_path.is_file():
        return
    before = Run.load(json_path).config.get("epochs")
    if before is not None and before != epochs:
        raise UserError(f"--resume with --epochs {epochs}: this run's learning-rate schedule "
                        f"spans the {before} epochs it started with; resume with --epochs "
                        f"{before}, or start a new run", exit_code=2)


def throttled(callback: Callable[[dict], None] | None, seconds: float = CALLBACK_EVERY_S
              ) -> Callable[[dict], None] | None:
    """`callback` at most every `seconds` while a run goes on, and always once it has ended
    (redrawing figures takes about 0.5 s: not at every check of a fast run)."""
    if callback is None:
        return None
    last = -float("inf")

    def call(run: dict) -> None:
        nonlocal last
        now = time.monotonic()
        if run.get("status") != "running" or run.get("final") is not None or \
                now - last >= seconds:
            last = now
            callback(run)
    return call
