"""The one training loop every task uses.

`Trainer` takes a model, an optimizer and iterables of (images, labels) batches. Twice an
epoch (every `len(train) // 2` steps) it records the mean training loss since the last
check, the loss and accuracy on a fixed subset of the training split, and validation loss
and accuracy; it keeps the best weights (lowest validation loss by default) and stops after
`patience` checks without a new best. At the end the best weights are evaluated on the
whole training, validation and test splits (the test split also per class).

After every check the run is saved (`runs.RunStore`: the JSON and a checkpoint, atomically),
so that `--resume` continues a run that was interrupted or killed, losing at most one check
interval. Ctrl-C stops at the next step and saves; a non-finite loss stops training with the
step and the learning rate named.

The loop never imports `dataloaders`: batches only need `len()` and iteration, and
optionally `set_epoch(e)`, `iter_from(k)` (an exact mid-epoch resume), and
`iter_indices_from(k)` with `gather(index)` (the batches as index tensors: what a graphed
step replays, `steps.GraphedStep`).
"""
from __future__ import annotations

import itertools
import math
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Iterable, Iterator

import torch
import torch.nn as nn
from tqdm import tqdm

from cli import TrainingInterrupted, UserError, is_out_of_memory
from evaluation import Evaluator
from runs import RunStore
from steps import GraphedStep, TrainStep, make_capturable
from utils import format_duration


# The Trainer's progress as the checkpoint keeps it (with "elapsed" and early stopping's).
PROGRESS = ("epoch", "batch_in_epoch", "step", "loss_count", "history", "status", "final")


class TrainingDiverged(UserError):
    """The loss became NaN or infinite; everything up to the last good check was saved."""


class OutOfMemory(UserError):
    """The device ran out of memory; the run up to its last finished check stays saved."""


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
    """Train `model` on `train` batches, check on `val`, evaluate the best weights at the end.

    `on_check(run)` follows each check and the end (figures; its failure does not stop
    training); `cuda_graphs` replays full batches as CUDA graphs (`steps.GraphedStep`);
    `resume_may_differ`: config["args"] keys that --resume may change (`runs.RunStore`).
    """

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, train: Iterable,
                 val: Iterable, *, epochs: int, device: torch.device, run_path: Path | str,
                 test: Iterable | None = None, train_eval: Iterable | None = None,
                 train_full: Iterable | None = None, patience: int = 4,
                 stop_metric: str = "val_loss", autocast_dtype: torch.dtype | None = None,
                 config: dict | None = None, checks_per_epoch: int = 2, progress: bool = True,
                 on_check: Callable[[dict], None] | None = None,
                 criterion: nn.Module | None = None, cuda_graphs: bool = False,
                 resume_may_differ: Iterable[str] = (), resume_command: str | None = None):
        if len(train) == 0:
            raise UserError("the training split has no batches; use a larger --subset or a "
                            "smaller --batch-size", exit_code=2)
        device = torch.device(device)
        self.model, self.optimizer, self.device = model, optimizer, device
        self.train_batches, self.val_batches, self.epochs = train, val, epochs
        self.evaluator = Evaluator(model, device, autocast_dtype, val, test, train_eval,
                                   train_full)
        self.early_stopping = EarlyStopping(stop_metric, patience)
        self.config = config or {}
        self.store = RunStore(run_path, self.config, device, resume_may_differ)
        self.check_every = max(1, len(train) // checks_per_epoch)
        self.progress, self.on_check, self.resume_command = progress, on_check, resume_command
        self.train_step = TrainStep(model, optimizer, criterion or nn.CrossEntropyLoss(),
                                    device, autocast_dtype)
        self.graphed_step = GraphedStep.over(self.train_step, train) if cuda_graphs else None
        # Progress: what a resume needs besides the weights, saved in the checkpoint.
        self.epoch = self.batch_in_epoch = 0  # current epoch (0-based), batches done in it
        self.step = self.loss_count = 0       # optimizer steps so far, since the last check
        self.history: list[dict] = []
        self.status, self.final = "running", None
        self.elapsed = 0.0        # seconds spent in earlier sessions of this run (resume)
        self._session_start: float | None = None
        self._ctrl_c = CtrlC()
        self._evaluating = False  # what an out-of-memory error names

    # ------------------------------------------------------------------ saving and loading
    def run_dict(self) -> dict:
        return {"config": self.config, "status": self.status, "history": self.history,
                "best_check": self.early_stopping.best_check,
                "stop_metric": self.early_stopping.stop_metric, "final": self.final,
                "timings": {"train_s": round(self.elapsed_s(), 2)},
                "figure_prefix": self.config.get("figure_prefix"),
                "loss_scaler": self.loss_scaler_state()}

    def loss_scaler_state(self) -> dict | None:
        """fp16 only: the steps the loss scaler skipped (overflowed gradients) and its scale."""
        step = self.train_step
        if step.scaler is None:
            return None
        return {"skipped_steps": int(step.skipped.item()), "scale": step.loss_scale}

    def elapsed_s(self) -> float:
        start = self._session_start
        return self.elapsed + (time.perf_counter() - start if start else 0.0)

    def save(self) -> None:
        """Write the checkpoint and the JSON, then call on_check."""
        scaler = self.train_step.scaler
        self.store.save(self.run_dict(), self.model, self.optimizer, {
            "best_model": self.early_stopping.best_state,
            "scaler": scaler.state_dict() if scaler is not None else None,
            "trainer": {**{k: getattr(self, k) for k in PROGRESS}, "elapsed": self.elapsed_s(),
                        **self.early_stopping.state(),
                        "loss_sum": float(self.train_step.loss_sum.item()),
                        "skipped_steps": int(self.train_step.skipped.item())}})
        if self.on_check is not None:
            try:
                self.on_check(self.run_dict())
            except Exception as err:  # a figure that fails to draw must not stop training
                tqdm.write(f"warning: the check callback failed ({type(err).__name__}: {err}); "
                           "training goes on", file=sys.stderr)

    def restore(self) -> None:
        """Continue from `<run>.pt` (the --resume path): weights, optimizer, progress, RNG."""
        ckpt = self.store.load(self.model, self.optimizer)
        if self.graphed_step is None:  # the interrupted run may have been graphed
            make_capturable(self.optimizer, False)
        for key in (*PROGRESS, "elapsed"):
            setattr(self, key, ckpt["trainer"][key])
        self.early_stopping.load(ckpt["trainer"], ckpt["best_model"])
        self.train_step.reset(ckpt["trainer"]["loss_sum"], self.step)
        self.train_step.skipped.fill_(ckpt["trainer"].get("skipped_steps", 0))
        scaler = self.train_step.scaler
        if scaler is not None and ckpt.get("scaler"):
            scaler.load_state_dict(ckpt["scaler"])  # the scale and growth count it had

    # ------------------------------------------------------------------ training
    def batch_source(self, start: int = 0) -> Iterator:
        """This epoch's training batches from batch `start` on, as `train_batch` takes them."""
        if self.graphed_step is not None:
            return self.train_batches.iter_indices_from(start)
        if hasattr(self.train_batches, "iter_from"):
            return self.train_batches.iter_from(start)
        return itertools.islice(iter(self.train_batches), start, None)

    def train_batch(self, batch) -> None:
        """One optimizer step on one item of `batch_source`: an index tensor with CUDA
        graphs, else (images, labels). No read-back."""
        if self.graphed_step is not None:
            self.graphed_step(batch)
        else:
            self.train_step(*batch)
        self.step += 1
        self.loss_count += 1

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
            raise OutOfMemory(self._out_of_memory_message(err)) from err

    def _out_of_memory_message(self, err: BaseException) -> str:
        """What ran out of memory, what to lower, and what is saved."""
        if self._evaluating:
            size = getattr(self.val_batches, "batch_size", None)
            what = (f"while evaluating (batch size {size}): lower --eval-batch-size "
                    "(--resume may change it)")
        else:
            size = getattr(self.train_batches, "batch_size", None)
            what = (f"in a training step (batch size {size}"
                    + (", captured as a CUDA graph" if self.graphed_step is not None else "")
                    + "): lower --batch-size (a new run)"
                    + (" or use --cuda-graphs off" if self.graphed_step is not None else ""))
        saved = (f"the run up to its last check (epoch {self.history[-1]['epoch']:.2f}) is in "
                 f"{self.store.json_path} and {self.store.checkpoint_path}"
                 if self.history and self.store.checkpoint_path.is_file()
                 else "no check had finished, nothing was saved")
        return f"out of memory on {self.device.type} {what}; {saved} ({type(err).__name__})"

    def _train_loop(self):
        n_batches = len(self.train_batches)
        self.model.train()
        last_postfix = time.monotonic()
        while self.epoch < self.epochs:
            if hasattr(self.train_batches, "set_epoch"):
                self.train_batches.set_epoch(self.epoch)
            start = self.batch_in_epoch
            bar = tqdm(total=n_batches, initial=start, desc=f"epoch {self.epoch + 1}/{self.epochs}",
                       unit="batch", leave=False, disable=not self.progress, dynamic_ncols=True)
            stop = False
            for batch in self.batch_source(start):
                self.train_batch(batch)
                self.batch_in_epoch += 1
                bar.update()
                now = time.monotonic()
                if now - last_postfix > 1.0:  # at most one read-back a second
                    last_postfix = now
                    self._raise_if_diverged()
                    if self.loss_count:
                        bar.set_postfix(loss=f"{self.train_step.loss_sum.item() / self.loss_count:.4f}")
                if self.batch_in_epoch % self.check_every == 0:
                    self._raise_if_diverged()
                    stop = self._check()  # evaluate() puts the model back in train()
                    if self.batch_in_epoch == n_batches:
                        self.epoch, self.batch_in_epoch = self.epoch + 1, 0
                    if stop:
                        self.status = "early_stopped"
                    self.save()
                    if stop:
                        break
                if self._ctrl_c.pressed:
                    bar.close()
                    self._stop_interrupted()
            bar.close()
            self._raise_if_diverged()
            if stop:
                return
            if self.batch_in_epoch:  # the epoch ended between checks
                self.epoch, self.batch_in_epoch = self.epoch + 1, 0
        self.status = "finished"

    def _check(self) -> bool:
        """Record one check; returns True when early stopping says stop."""
        train_loss = (self.train_step.loss_sum.item() / self.loss_count if self.loss_count
                      else float("nan"))
        self._evaluating = True
        entry = {"epoch": round(self.step / len(self.train_batches), 4), "step": self.step,
                 "train_loss": train_loss, **self.evaluator.check(),
                 "elapsed_s": round(self.elapsed_s(), 2)}
        self._evaluating = False
        if self.train_step.scaler is not None:
            entry["loss_scale"] = self.train_step.loss_scale
            entry["skipped_steps"] = int(self.train_step.skipped.item())  # since the start
        self.history.append(entry)
        improved = self.early_stopping.update(self.history, self.model)
        tqdm.write(format_check(entry, improved), file=sys.stdout)
        self.loss_count = 0
        self.train_step.reset(0.0, self.step)
        return self.early_stopping.stop

    def _raise_if_diverged(self):
        bad = int(self.train_step.first_bad.item())
        if bad < 0:
            return
        self.status = "diverged"
        self._finish()
        lr = self.optimizer.param_groups[0]["lr"]
        raise TrainingDiverged(
            f"the training loss became NaN or infinite at step {bad} (epoch "
            f"{bad / len(self.train_batches):.2f}) with learning rate {lr:g}; "
            f"lower --lr. The run so far and its best weights are in {self.store.json_path} "
            f"and {self.store.checkpoint_path}")

    def _stop_interrupted(self):
        self.status = "interrupted"
        self.save()
        raise TrainingInterrupted(
            f"interrupted at epoch {self.step / len(self.train_batches):.2f} (step {self.step}); "
            f"saved {self.store.json_path} and {self.store.checkpoint_path}. Resume with: "
            + (self.resume_command or "the same command and --resume"))

    def _finish(self):
        """Evaluate the best weights on train/val/test and write the final run."""
        best = self.early_stopping
        if best.best_state is not None:
            self.model.load_state_dict(best.best_state)  # copies into the same tensors
        self._evaluating = True
        self.final = self.evaluator.final()
        self._evaluating = False
        if best.best_check is not None:
            check = self.history[best.best_check]
            self.final["best_epoch"], self.final["best_step"] = check["epoch"], check["step"]
        self.save()


def format_check(entry: dict, improved: bool) -> str:
    """The fixed-width console line of one check ('*': a new best)."""
    train_acc = entry.get("train_accuracy")
    return (f"epoch {entry['epoch']:6.2f} | step {entry['step']:7d} | train loss "
            f"{entry['train_loss']:7.4f} | val loss {entry['val_loss']:7.4f} | val acc "
            f"{entry['val_accuracy']:6.4f}"
            + (f" | train acc {train_acc:6.4f}" if train_acc is not None else "")
            + f" | {format_duration(entry['elapsed_s']):>9}" + (" *" if improved else ""))
