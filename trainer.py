"""The one training loop every task uses, and what every task script does with it.

`Trainer` takes a model, its optimizer, its step (`training.steps.Step`: eager or graphed, any
precision), the batches of each split (`training.batches.Splits`) and the loop's `Settings`.
Twice an epoch (every `len(train) // 2` steps) it records the mean training loss since the
last check, the loss and accuracy on a fixed subset of the training split, validation loss
and accuracy, and test loss and accuracy (`test_curve`; never used to choose anything); it
keeps the best weights (lowest validation loss by default) and stops after `patience` checks
without a new best. At the end the best weights are evaluated on the whole training,
validation and test splits (the test split also per class).

After every check the run is saved (`training.storage.RunStore`: the JSON and a checkpoint,
atomically), so that `--resume` continues a run that was interrupted or killed, losing at most
one check interval. Ctrl-C stops at the next step and saves; a non-finite loss stops training.
Failures are raised as the typed errors of `training.errors` (`TrainingInterrupted`,
`TrainingDiverged`, `OutOfMemory`), which the command line words for the user.

The loop itself reads no data: batches only need `len()` and iteration, and optionally
`set_epoch(e)` and what the step asks of them (`iter_from(k)` for an exact mid-epoch resume;
a graphed step: `iter_indices_from(k)` and `gather(index)`).

Every task script describes its models as `training.jobs.Job`s and calls `run_jobs(args,
jobs)`: for each seed and job it loads the data (dataloaders.py), builds the model, its
optimizer and step, and trains it with a Trainer (`fit`).
"""
from __future__ import annotations

import dataclasses
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Self

import torch
from torch import nn
from tqdm import tqdm

from dataloaders import CifarData, load_cifar10
from training.architecture import parameter_table
from training.batches import Splits
from training.checks import EarlyStopping, format_check, format_duration
from training.errors import (
    OutOfMemory,
    TrainingDiverged,
    TrainingInterrupted,
    UserError,
    is_out_of_memory,
)
from training.evaluation import Evaluator
from training.jobs import (
    CALLBACK_EVERY_S,
    RESUMABLE_FLAGS,
    Job,
    check_resume,
    check_schedule_epochs,
    make_optimizer,
    make_schedule,
    run_names,
    seed_runs,
    throttled,
)
from training.steps import Interval, Step, legacy_state, make_step, training_rng_kept
from training.storage import RunStore, ensure_output_dir, keep_previous_run
from utils import Hardware, make_config, resolve_hardware, seed_everything


@dataclass(frozen=True)
class Settings:
    """How the loop runs: `epochs`; where (`device`) and at which precision it evaluates
    (`autocast_dtype`, the step's; None: fp32); what picks the best check (`stop_metric`) and
    how many checks without a new best stop it (`patience`, 0: never); `checks_per_epoch`;
    `test_curve`: measure the test split at every check too (False: only at the end; "last":
    at the last check too, the last weights); `progress` bars; the flags (config["args"]
    keys) that --resume may change (`resume_may_differ`, `training.storage.RunStore`)."""
    epochs: int
    device: torch.device | str = "cpu"
    autocast_dtype: torch.dtype | None = None
    patience: int = 4
    stop_metric: str = "val_loss"
    checks_per_epoch: int = 2
    test_curve: bool | str = True
    progress: bool = True
    resume_may_differ: tuple[str, ...] = ()


class CtrlC:
    """While in a `with` block in the main thread: the first Ctrl-C sets `pressed` (the
    loop stops after its step and saves), a second one raises KeyboardInterrupt."""

    def __init__(self):
        self.pressed, self._previous = False, None

    def __enter__(self) -> Self:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None

    def _handle(self, signum, frame):
        if self.pressed:
            raise KeyboardInterrupt
        self.pressed = True
        tqdm.write("Ctrl-C: stopping after this step and saving the run "
                   "(press again to quit without saving)", file=sys.stderr)


class Trainer:
    """Train `model` with `step` on `data.train`, check on `data.val`, evaluate the best
    weights at the end, as `settings` say; the run goes to `run_path`.json and .pt with
    `config` (what the run records besides). `on_check(run)` follows each check and the end
    (figures; its failure does not stop training)."""

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, step: Step,
                 data: Splits, settings: Settings, *, run_path: Path | str,
                 config: dict | None = None, on_check: Callable[[dict], None] | None = None):
        if len(data.train) == 0:
            raise ValueError("the training split has no batches")
        self.model, self.optimizer, self.train_step = model, optimizer, step
        self.settings, self.device = settings, torch.device(settings.device)
        self.train_batches, self.val_batches, self.epochs = data.train, data.val, settings.epochs
        self.evaluator = Evaluator(model, self.device, settings.autocast_dtype, data.val,
                                   data.test, data.train_eval, data.train_full,
                                   settings.test_curve)
        self.early_stopping = EarlyStopping(settings.stop_metric, settings.patience)
        self.config = config or {}
        self.store = RunStore(run_path, self.config, self.device, settings.resume_may_differ)
        self.check_every = max(1, len(data.train) // settings.checks_per_epoch)
        self.progress, self.on_check = settings.progress, on_check
        # Progress: what a resume needs besides the weights and the step's own state.
        self.step = 0  # optimizer steps so far: the one counter
        self.history: list[dict] = []
        self.status, self.final = "running", None
        self.elapsed = 0.0        # seconds spent in earlier sessions of this run (resume)
        self._session_start: float | None = None
        self._ctrl_c = CtrlC()
        self._evaluating = False  # what an out-of-memory error names
        self._last_weights: dict | None = None  # once the best are loaded: where training was

    @property
    def epoch(self) -> int:
        """The current epoch (0-based): every epoch has len(train) steps."""
        return self.step // len(self.train_batches)

    # ------------------------------------------------------------------ saving and loading
    def run_dict(self) -> dict:
        return {"config": self.config, "status": self.status, "history": self.history,
                "best_check": self.early_stopping.best_check,
                "stop_metric": self.early_stopping.stop_metric, "final": self.final,
                "timings": {"train_s": round(self.elapsed_s(), 2)},
                "figure_prefix": self.config.get("figure_prefix"),
                **self.train_step.summary()}

    def elapsed_s(self) -> float:
        start = self._session_start
        return self.elapsed + (time.perf_counter() - start if start else 0.0)

    def save(self) -> None:
        """Write the checkpoint and the JSON, then call on_check, which draws nothing from
        training's random generators: the state training goes on from is the one saved."""
        self.store.save(self.run_dict(), self.model, self.optimizer, weights=self._last_weights,
                        state={
            "best_model": self.early_stopping.best_state,
            "step_state": self.train_step.state_dict(),
            "trainer": {"step": self.step, "history": self.history, "status": self.status,
                        "final": self.final, "elapsed": self.elapsed_s(),
                        **self.early_stopping.state()}})
        if self.on_check is not None:
            try:
                with training_rng_kept(self.device):
                    self.on_check(self.run_dict())
            # a figure that fails to draw must not stop training
            except Exception as err:  # noqa: BLE001
                tqdm.write(f"warning: the check callback failed ({type(err).__name__}: {err}); "
                           "training goes on", file=sys.stderr)

    def restore(self) -> None:
        """Continue from `<run>.pt` (the --resume path): weights, optimizer, progress, RNG, the
        step's state."""
        ckpt = self.store.load(self.model, self.optimizer)
        saved = ckpt["trainer"]
        self.step, self.history, self.status = saved["step"], saved["history"], saved["status"]
        self.final, self.elapsed = saved["final"], saved["elapsed"]
        self.early_stopping.load(saved, ckpt["best_model"])
        self.train_step.load_state_dict(ckpt.get("step_state") or legacy_state(ckpt))

    # ------------------------------------------------------------------ training
    def train(self, resume: bool = False) -> dict:
        """Train (or continue, with resume=True), evaluate the best weights, return the run."""
        if resume:
            self.restore()
            # An interrupted run goes on; a finished one goes on when --epochs was raised.
            if self.status == "interrupted" or (self.status == "finished" and self.epoch < self.epochs):
                self.status, self.final = "running", None
        self._session_start = time.perf_counter()
        try:
            with self._ctrl_c:
                if self.status == "running":
                    self._train_loop()
                if self.final is None:
                    self._finish()
                return self.run_dict()
        except (RuntimeError, MemoryError) as err:
            if not is_out_of_memory(err):
                raise
            batches = self.val_batches if self._evaluating else self.train_batches
            last = (self.history[-1]["epoch"] if self.history and
                    self.store.checkpoint_path.is_file() else None)
            raise OutOfMemory("evaluating" if self._evaluating else "training",
                              self.device.type, getattr(batches, "batch_size", None),
                              self.train_step.kind, last, self._saved(),
                              type(err).__name__) from err

    def _saved(self) -> tuple[Path, Path]:
        return self.store.json_path, self.store.checkpoint_path

    def _train_loop(self):
        n_batches = len(self.train_batches)
        self.model.train()
        last_peek = time.monotonic()
        while self.epoch < self.epochs:
            epoch = self.epoch
            if hasattr(self.train_batches, "set_epoch"):
                self.train_batches.set_epoch(epoch)
            start = self.step - epoch * n_batches
            bar = tqdm(total=n_batches, initial=start, desc=f"epoch {epoch + 1}/{self.epochs}",
                       unit="batch", leave=False, dynamic_ncols=True,
                       disable=None if self.progress else True)  # None: no bar in a log file
            for batch in self.train_step.batches_from(start):
                self.train_step(batch)
                self.step += 1
                bar.update()
                if time.monotonic() - last_peek > 1.0:  # at most one read-back a second
                    last_peek = time.monotonic()
                    interval = self.train_step.peek()
                    self._raise_if_diverged(interval)
                    if interval.steps:
                        bar.set_postfix(loss=f"{interval.mean_loss:.4f}")
                if (self.step - epoch * n_batches) % self.check_every == 0:
                    stop = self._check()  # evaluate() puts the model back in train()
                    if stop:
                        self.status = "early_stopped"
                    self.save()
                    if stop:
                        bar.close()
                        return
                if self._ctrl_c.pressed:
                    bar.close()
                    self._stop_interrupted()
            bar.close()
            self._raise_if_diverged(self.train_step.peek())
        self.status = "finished"

    def _check(self) -> bool:
        """Record one check; returns True when early stopping says stop."""
        interval = self.train_step.read()
        self._raise_if_diverged(interval)
        self._evaluating = True
        measured = self.evaluator.check()
        self._evaluating = False
        entry = {"epoch": round(self.step / len(self.train_batches), 4), "step": self.step,
                 "train_loss": interval.mean_loss, **measured,
                 "elapsed_s": round(self.elapsed_s(), 2), **interval.fields}
        self.history.append(entry)
        improved = self.early_stopping.update(self.history, self.model)
        if self.evaluator.test_curve == "last" and (self.early_stopping.stop or
                                                    self._last_check()):
            self._evaluating = True
            entry.update(self.evaluator.check_test())  # the last weights, chose nothing
            self._evaluating = False
        tqdm.write(format_check(entry, improved), file=sys.stdout)
        return self.early_stopping.stop

    def _last_check(self) -> bool:
        """Whether no check comes after this one (checks fall every `check_every` steps of
        an epoch)."""
        n = len(self.train_batches)
        within = self.step - self.epoch * n
        following = (self.step + self.check_every if within + self.check_every <= n
                     else (self.epoch + 1) * n + self.check_every)
        return following > self.epochs * n

    def _raise_if_diverged(self, interval: Interval):
        if interval.first_bad is None:
            return
        bad = self.step - interval.steps + interval.first_bad
        self.status = "diverged"
        self._finish()
        raise TrainingDiverged(bad, bad / len(self.train_batches),
                               self.optimizer.param_groups[0]["lr"], self._saved())

    def _stop_interrupted(self):
        self.status = "interrupted"
        self.save()
        raise TrainingInterrupted(self.step / len(self.train_batches), self.step, self._saved())

    def _finish(self):
        """Evaluate the best weights on train/val/test and write the final run."""
        best = self.early_stopping
        if best.best_state is not None:
            # The checkpoint keeps the last weights, which a resume with more epochs goes on
            # from (the last step may come after the best check); the model holds the best.
            self._last_weights = {k: v.detach().to("cpu", copy=True)
                                  for k, v in self.model.state_dict().items()}
            self.model.load_state_dict(best.best_state)  # copies into the same tensors
        self._evaluating = True
        self.final = self.evaluator.final()
        self._evaluating = False
        if best.best_check is not None:
            check = self.history[best.best_check]
            self.final["best_epoch"], self.final["best_step"] = check["epoch"], check["step"]
        self.save()


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
    splits = dataclasses.replace(data, train_eval=None, train_full=None) if grid else data
    settings = Settings(epochs, hardware.device, hardware.autocast_dtype, patience, stop_metric,
                        progress=not args.no_progress,
                        test_curve="last" if grid else not getattr(args, "no_test_curve", False),
                        resume_may_differ=RESUMABLE_FLAGS)
    trainer = Trainer(model, optimizer, step, splits, settings, run_path=run_path,
                      config=config, on_check=throttled(on_check, callback_every_s))
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
