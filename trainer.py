"""The one training loop every task uses.

`Trainer` takes a model, its optimizer, iterables of (images, labels) batches and a step
(`steps.Step`: eager or graphed, any precision; eager by default). Twice an epoch (every
`len(train) // 2` steps) it records the mean training loss since the last check, the loss
and accuracy on a fixed subset of the training split, validation loss and accuracy, and test
loss and accuracy (`test_curve`; never used to choose anything); it keeps the best weights
(lowest validation loss by default) and stops after `patience` checks without a new best.
At the end the best weights are evaluated on the whole training, validation and test splits
(the test split also per class).

After every check the run is saved (`runs.RunStore`: the JSON and a checkpoint, atomically),
so that `--resume` continues a run that was interrupted or killed, losing at most one check
interval. Ctrl-C stops at the next step and saves; a non-finite loss stops training. Failures
are raised as the typed errors of `cli` (`TrainingInterrupted`, `TrainingDiverged`,
`OutOfMemory`), which the command line words for the user.

The loop never imports `dataloaders`: batches only need `len()` and iteration, and
optionally `set_epoch(e)` and what the step asks of them (`iter_from(k)` for an exact
mid-epoch resume; a graphed step: `iter_indices_from(k)` and `gather(index)`).
"""
from __future__ import annotations

import math
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Iterable

import torch
import torch.nn as nn
from tqdm import tqdm

from cli import OutOfMemory, TrainingDiverged, TrainingInterrupted, is_out_of_memory
from evaluation import Evaluator
from runs import RunStore
from steps import Interval, Step, legacy_state, make_step, training_rng_kept
from utils import format_duration

__all__ = ["Trainer", "EarlyStopping", "CtrlC", "TrainingDiverged", "OutOfMemory",
           "format_check"]


class EarlyStopping:
    """Which check is best by `stop_metric` ('val_loss': lower is better, 'val_accuracy':
    higher), a copy of its weights, and whether `patience` checks have passed without a new
    best (0: never)."""

    def __init__(self, stop_metric: str, patience: int):
        if stop_metric not in ("val_loss", "val_accuracy"):
            raise ValueError(f"stop_metric must be val_loss or val_accuracy, not {stop_metric}")
        self.stop_metric, self.patience = stop_metric, patience
        self.best_check: int | None = None
        self.best_value: float | None = None
        self.best_state: dict | None = None  # the best check's weights, on the CPU
        self.checks_since_best = 0

    def update(self, history: list[dict], model: nn.Module) -> bool:
        """Judge the last check of `history`; True when it is a new best."""
        value = history[-1][self.stop_metric]
        if self.best_value is None or math.isnan(self.best_value):
            improved = not math.isnan(value)
        elif self.stop_metric == "val_loss":
            improved = value < self.best_value
        else:
            improved = value > self.best_value
        if improved:
            self.best_value, self.best_check, self.checks_since_best = value, len(history) - 1, 0
            self.best_state = {k: v.detach().to("cpu", copy=True)
                               for k, v in model.state_dict().items()}
        else:
            self.checks_since_best += 1
        return improved

    @property
    def stop(self) -> bool:
        return self.patience > 0 and self.checks_since_best >= self.patience

    def state(self) -> dict:
        return {"best_check": self.best_check, "best_value": self.best_value,
                "checks_since_best": self.checks_since_best}

    def load(self, state: dict, best_state: dict | None) -> None:
        self.best_check, self.best_value = state["best_check"], state["best_value"]
        self.checks_since_best, self.best_state = state["checks_since_best"], best_state


class CtrlC:
    """While in a `with` block in the main thread: the first Ctrl-C sets `pressed` (the
    loop stops after its step and saves), a second one raises KeyboardInterrupt."""

    def __init__(self):
        self.pressed, self._previous = False, None

    def __enter__(self) -> "CtrlC":
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
    """Train `model` with `step` on `train` batches, check on `val`, evaluate the best weights
    at the end.

    `step` (default: the eager step, autocast to `autocast_dtype`, which evaluation uses too);
    `test_curve`: measure `test` at every check too (False: only at the end; "last": at the
    last check too, the last weights); `on_check(run)`
    follows each check and the end (figures; its failure does not stop
    training); `resume_may_differ`: config["args"] keys that --resume may change
    (`runs.RunStore`).
    """

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, train: Iterable,
                 val: Iterable, *, epochs: int, device: torch.device, run_path: Path | str,
                 step: Step | None = None, test: Iterable | None = None,
                 train_eval: Iterable | None = None, train_full: Iterable | None = None,
                 patience: int = 4, stop_metric: str = "val_loss",
                 autocast_dtype: torch.dtype | None = None, config: dict | None = None,
                 checks_per_epoch: int = 2, progress: bool = True,
                 test_curve: bool | str = True,
                 on_check: Callable[[dict], None] | None = None,
                 resume_may_differ: Iterable[str] = ()):
        if len(train) == 0:
            raise ValueError("the training split has no batches")
        self.model, self.optimizer, self.device = model, optimizer, torch.device(device)
        self.train_batches, self.val_batches, self.epochs = train, val, epochs
        self.train_step = step or make_step(model, optimizer, train, self.device, autocast_dtype)
        self.evaluator = Evaluator(model, self.device, autocast_dtype, val, test, train_eval,
                                   train_full, test_curve)
        self.early_stopping = EarlyStopping(stop_metric, patience)
        self.config = config or {}
        self.store = RunStore(run_path, self.config, self.device, resume_may_differ)
        self.check_every = max(1, len(train) // checks_per_epoch)
        self.progress, self.on_check = progress, on_check
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
            except Exception as err:  # a figure that fails to draw must not stop training
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


def format_check(entry: dict, improved: bool) -> str:
    """The fixed-width console line of one check ('*': a new best by the stop metric)."""
    def part(key: str, name: str, width: int = 6) -> str:
        value = entry.get(key)
        return f" | {name} {value:{width}.4f}" if value is not None else ""

    return (f"epoch {entry['epoch']:6.2f} | step {entry['step']:7d} | train loss "
            f"{entry['train_loss']:7.4f} | val loss {entry['val_loss']:7.4f} | val acc "
            f"{entry['val_accuracy']:6.4f}" + part("train_accuracy", "train acc")
            + part("test_accuracy", "test acc")
            + f" | {format_duration(entry['elapsed_s']):>9}" + (" *" if improved else ""))
