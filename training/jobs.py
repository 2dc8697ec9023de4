"""What every task script does with its models, written once: check --resume, choose the
device, then for each seed and model load the data, build the model and optimizer, describe
the run and train it with the Trainer.

A task script describes each model as a `Job` and calls `run_jobs(args, jobs)`.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import torch
import torch.nn as nn

from architecture import parameter_table
from cli import UserError
from dataloaders import CifarData, load_cifar10
from recipes import Recipe
from runs import ensure_output_dir, keep_previous_run, load_run
from steps import make_step
from trainer import Trainer
from utils import Hardware, format_duration, make_config, resolve_hardware, seed_everything

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
           suffix: str = "", config: dict | None = None, data: dict | None = None) -> "Job":
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


def setup_run(args) -> Hardware:
    """Check that --output-dir is writable (before any training), decide the hardware,
    seed."""
    ensure_output_dir(args.output_dir)
    hardware = resolve_hardware(args)
    seed_everything(args.seed)
    return hardware


def run_jobs(args, jobs: list[Job], on_check: Callable[[dict], None] | None = None,
             loaded: dict[tuple, CifarData] | None = None,
             callback_every_s: float = CALLBACK_EVERY_S) -> dict[str, dict]:
    """Train every job for every seed of --seed/--seeds; {run name: run}.

    Each model's initialisation is seeded by itself (not by what ran before it); the data
    is loaded once per seed, batch size and data options (`loaded`: a dict that keeps it
    across calls, for a command that calls this once per run). `on_check` (figures,
    tables) follows a check at most every `callback_every_s` seconds and once at the end;
    whatever it draws at random is not taken from training (`Trainer.save`), so how often it
    runs never changes a run.
    """
    check_resume(args, run_names(args, jobs))
    hardware = setup_run(args)
    runs = {}
    loaded = {} if loaded is None else loaded
    for seed, suffix in seed_runs(args):
        for job in jobs:
            key = (seed, job.batch_size, tuple(sorted(job.data.items())))
            if key not in loaded:
                loaded[key] = load_cifar10(
                    args.data_dir, job.batch_size, seed=seed, device=hardware.device,
                    subset=args.subset, channels_last=hardware.channels_last,
                    eval_batch_size=args.eval_batch_size, progress=not args.no_progress,
                    **job.data)
            data = loaded[key]
            seed_everything(seed)
            model = job.build_model().to(hardware.device, memory_format=hardware.memory_format)
            optimizer = make_optimizer(job.optimizer, model, job.lr, job.weight_decay,
                                       job.momentum, job.nesterov)
            stopping = {"stop_metric": job.stop_metric or args.early_stop_metric,
                        "patience": args.patience if job.patience is None else job.patience,
                        "epochs": job.epochs or args.epochs}
            scheduler = make_schedule(job.schedule, optimizer,
                                      stopping["epochs"] * len(data.train))
            extras = {"weight_decay": job.weight_decay, "momentum": job.momentum,
                      "nesterov": job.nesterov, "schedule": job.schedule,
                      "augment": job.data.get("augment", False)}
            config = make_config(args, hardware, data.info, seed=seed,
                                 parameters=parameter_table(model)[1], optimizer=job.optimizer,
                                 lr=job.lr, batch_size=job.batch_size, **stopping,
                                 **{k: v for k, v in extras.items() if v}, **job.config)
            runs[job.run_name + suffix] = fit(model, optimizer, data, args, hardware,
                                              run_name=job.run_name + suffix, config=config,
                                              on_check=on_check, scheduler=scheduler,
                                              callback_every_s=callback_every_s, **stopping)
    return runs


def check_schedule_epochs(run_path: Path, epochs: int) -> None:
    """A run with a learning-rate schedule resumes with the epochs its schedule spans."""
    json_path = run_path.parent / f"{run_path.name}.json"
    if not json_path.is_file():
        return
    before = (load_run(json_path).get("config") or {}).get("epochs")
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


def fit(model: nn.Module, optimizer: torch.optim.Optimizer, data: CifarData, args,
        hardware: Hardware, *, run_name: str, config: dict, stop_metric: str, patience: int,
        epochs: int, on_check: Callable[[dict], None] | None = None,
        scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
        callback_every_s: float = CALLBACK_EVERY_S) -> dict:
    """Train `model` on `data` with the common flags in `args` (and `scheduler`, stepped
    after every step); the run goes to `<args.output_dir>/<run_name>.json/.pt`."""
    run_path = Path(args.output_dir) / run_name
    resume = args.resume
    if resume and not (run_path.parent / f"{run_name}.pt").is_file():
        # The command had other runs to resume (check_resume); this one had not started yet.
        print(f"{run_name}: no checkpoint to resume, it starts from the beginning")
        resume = False
    if resume and scheduler is not None:
        check_schedule_epochs(run_path, epochs)
    if not resume:  # a new run never overwrites an earlier one of the same name
        kept = keep_previous_run(run_path)
        if kept is not None:
            print(f"{run_name}: the earlier run in {run_path.parent} is kept in "
                  f"{kept.parent}/{kept.name[:-5]}.* (--resume continues a run instead)")
    if len(data.train) == 0:
        raise UserError("the training split has no batches; use a larger --subset or a "
                        "smaller --batch-size", exit_code=2)
    graphed = hardware.cuda_graphs
    if graphed and (scheduler is not None or getattr(data.train, "augment", False)):
        raise UserError("--cuda-graphs on cannot train this recipe: its learning-rate "
                        "schedule and augmentation change every step, which one captured "
                        "graph cannot; use --cuda-graphs off (or auto)", exit_code=2)
    step = make_step(model, optimizer, data.train, hardware.device, hardware.autocast_dtype,
                     graphed=graphed, scheduler=scheduler)
    # A grid run (Task 2e's experiments) measures what its comparisons read and no more:
    # validation at every check, the test split at the last check and at the best weights,
    # nothing of the training split.
    grid = getattr(args, "grid_checks", False)
    trainer = Trainer(model, optimizer, data.train, data.val, step=step, test=data.test,
                      train_eval=None if grid else data.train_eval,
                      train_full=None if grid else data.train_full,
                      epochs=epochs, patience=patience, stop_metric=stop_metric,
                      device=hardware.device, autocast_dtype=hardware.autocast_dtype,
                      run_path=run_path, config=config, progress=not args.no_progress,
                      test_curve="last" if grid else not getattr(args, "no_test_curve", False),
                      on_check=throttled(on_check, callback_every_s),
                      resume_may_differ=RESUMABLE_FLAGS)
    print(f"{run_name}: {hardware.device.type}, {hardware.precision}"
          + (" with dynamic loss scaling" if hardware.precision == "fp16" else "")
          + f"; {len(data.train)} batches/epoch, a check every {trainer.check_every} "
          f"steps, {epochs} epochs, the best checkpoint by {stop_metric}"
          + (f", early stop after {patience} checks without a new best" if patience
             else ", no early stopping")
          + (", CUDA graphs" if hardware.cuda_graphs else "")
          + (" (resuming)" if resume else ""))
    run = trainer.train(resume=resume)
    final = run["final"]
    print(f"{run_name}: best check at epoch {final.get('best_epoch', float('nan')):.2f} -> "
          + ", ".join(f"{s} loss {final[s]['loss']:.4f} acc {final[s]['accuracy']:.4f}"
                      for s in ("train", "val", "test") if s in final)
          + f" ({format_duration(run['timings']['train_s'])}, {run['status']})")
    if run.get("loss_scaler"):
        print(f"{run_name}: the fp16 loss scaler skipped {run['loss_scaler']['skipped_steps']} "
              f"steps (overflowed gradients); scale now {run['loss_scaler']['scale']:g}")
    return run
