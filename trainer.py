"""The one training loop every task uses.

`Trainer` takes a model, an optimizer and iterables of (images, labels) batches. Twice an
epoch (every `len(train) // 2` steps) it records the mean training loss since the last
check, the loss and accuracy on a fixed subset of the training split, and validation loss
and accuracy; it keeps the best weights (lowest validation loss by default) and stops after
`patience` checks without a new best. At the end the best weights are evaluated on the
whole training, validation and test splits.

Everything is written as it goes, atomically: `<run>.json` (config, history, final) after
every check and `<run>.pt` (a checkpoint dict: model, optimizer, best weights, RNG states,
history, early-stopping state, position in the epoch) so that `--resume` continues a run
that was interrupted or killed, losing at most one check interval. Ctrl-C stops at the next
step and writes everything; a non-finite loss stops training with the step and the
learning rate named.

The loop never imports `dataloaders`: batches only need `len()`, iteration, and optionally
`set_epoch(e)` / `iter_from(k)` for an exact mid-epoch resume.
"""
from __future__ import annotations

import itertools
import math
import signal
import sys
import time
from pathlib import Path
from typing import Callable, Iterable

import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm import tqdm

from cli import TrainingInterrupted, UserError
from runs import atomic_torch_save, atomic_write_json, read_checkpoint
from utils import format_duration

CHECKPOINT_FORMAT = "tdt4265-a3-run"


class TrainingDiverged(UserError):
    """The loss became NaN or infinite; everything up to the last good check was saved."""


def evaluate(model: nn.Module, batches: Iterable, device_type: str,
             autocast_dtype: torch.dtype | None = None, *,
             confusion: bool = False) -> tuple[float, float] | tuple[float, float, list]:
    """Mean cross-entropy and accuracy of `model` over `batches`, in eval() mode.

    Sums stay on the device; one read-back at the end. With confusion=True also the
    confusion matrix (a list of rows: row = true class, column = predicted class).
    """
    was_training = model.training
    model.eval()
    loss_sum = correct = counts = None
    count = 0
    with torch.inference_mode(), torch.autocast(device_type, dtype=autocast_dtype or torch.bfloat16,
                                                enabled=autocast_dtype is not None):
        for images, labels in batches:
            logits = model(images).float()
            batch_loss = F.cross_entropy(logits, labels, reduction="sum")
            predictions = logits.argmax(1)
            batch_correct = (predictions == labels).sum()
            loss_sum = batch_loss if loss_sum is None else loss_sum + batch_loss
            correct = batch_correct if correct is None else correct + batch_correct
            if confusion:
                n_classes = logits.shape[1]
                pairs = torch.bincount(labels * n_classes + predictions,
                                       minlength=n_classes * n_classes)
                counts = pairs if counts is None else counts + pairs
            count += len(labels)
    model.train(was_training)
    if count == 0:
        return (float("nan"), float("nan")) + (([],) if confusion else ())
    result = (loss_sum.item() / count, correct.item() / count)
    if confusion:
        n_classes = int(round(counts.numel() ** 0.5))
        result += (counts.view(n_classes, n_classes).tolist(),)
    return result


class Trainer:
    """Train `model` with `optimizer` on `train` batches; see the module docstring.

    run_path: where `<run_path>.json` and `<run_path>.pt` are written.
    config: JSON-able description of the run (flags, model, data), stored in both files.
    stop_metric: 'val_loss' (lower is better) or 'val_accuracy' (higher is better);
        it picks the best checkpoint and drives early stopping.
    patience: checks without a new best before stopping; 0 never stops early.
    on_check: called with the run dict after each check and at the end (e.g. to redraw
        figures), so a killed run still leaves figures of what it did.
    """

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, train: Iterable,
                 val: Iterable, *, epochs: int, device: torch.device, run_path: Path | str,
                 test: Iterable | None = None, train_eval: Iterable | None = None,
                 train_full: Iterable | None = None, patience: int = 4,
                 stop_metric: str = "val_loss", autocast_dtype: torch.dtype | None = None,
                 config: dict | None = None, checks_per_epoch: int = 2, progress: bool = True,
                 on_check: Callable[[dict], None] | None = None,
                 criterion: nn.Module | None = None):
        if stop_metric not in ("val_loss", "val_accuracy"):
            raise ValueError(f"stop_metric must be val_loss or val_accuracy, not {stop_metric}")
        if len(train) == 0:
            raise UserError("the training split has no batches; use a larger --subset or a "
                            "smaller --batch-size", exit_code=2)
        self.model, self.optimizer = model, optimizer
        self.train_batches, self.val_batches, self.test_batches = train, val, test
        self.train_eval_batches, self.train_full_batches = train_eval, train_full
        self.epochs, self.patience, self.stop_metric = epochs, patience, stop_metric
        self.device, self.autocast_dtype = torch.device(device), autocast_dtype
        self.run_path = Path(run_path)
        self.config = config or {}
        self.check_every = max(1, len(train) // checks_per_epoch)
        self.progress, self.on_check = progress, on_check
        self.criterion = criterion or nn.CrossEntropyLoss()
        # Progress state: everything a resume needs, saved in the checkpoint.
        self.epoch = 0            # current epoch (0-based)
        self.batch_in_epoch = 0   # batches of the current epoch already trained on
        self.step = 0             # optimizer steps so far
        self.history: list[dict] = []
        self.best_check: int | None = None
        self.best_value: float | None = None
        self.best_state: dict | None = None
        self.checks_since_best = 0
        self.status = "running"
        self.elapsed = 0.0        # seconds spent in earlier sessions of this run (resume)
        self.final: dict | None = None
        self._interrupted = False
        self._last_callback = -math.inf
        self._reset_interval()

    # ------------------------------------------------------------------ bookkeeping
    @property
    def json_path(self) -> Path:
        # not with_suffix(): a run name may hold dots (e.g. task2_model22_p0.1)
        return self.run_path.parent / f"{self.run_path.name}.json"

    @property
    def checkpoint_path(self) -> Path:
        return self.run_path.parent / f"{self.run_path.name}.pt"

    def _reset_interval(self, loss_sum: float = 0.0, count: int = 0):
        # Kept on the device and read back only at checks: no host sync per step.
        self._loss_sum = torch.tensor(loss_sum, device=self.device)
        self._loss_count = count
        self._first_bad_step = torch.tensor(-1, device=self.device)
        self._device_step = torch.tensor(self.step, device=self.device)

    def _lr(self) -> float:
        return self.optimizer.param_groups[0]["lr"]

    def run_dict(self) -> dict:
        return {"config": self.config, "status": self.status, "history": self.history,
                "best_check": self.best_check, "stop_metric": self.stop_metric,
                "final": self.final,
                "timings": {"train_s": round(self._elapsed_now(), 2)},
                "figure_prefix": self.config.get("figure_prefix")}

    def _elapsed_now(self) -> float:
        start = getattr(self, "_session_start", None)
        return self.elapsed + (time.perf_counter() - start if start else 0.0)

    def _write_json(self):
        atomic_write_json(self.json_path, self.run_dict())

    def _write_checkpoint(self):
        cuda_rng = torch.cuda.get_rng_state_all() if self.device.type == "cuda" else []
        atomic_torch_save({
            "format": CHECKPOINT_FORMAT,
            "config": self.config,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "best_model": self.best_state,
            "trainer": {"epoch": self.epoch, "batch_in_epoch": self.batch_in_epoch,
                        "step": self.step, "history": self.history,
                        "best_check": self.best_check, "best_value": self.best_value,
                        "checks_since_best": self.checks_since_best, "status": self.status,
                        "elapsed": self._elapsed_now(), "final": self.final,
                        "loss_sum": float(self._loss_sum.item()),
                        "loss_count": self._loss_count},
            "rng": {"torch": torch.get_rng_state(), "cuda": cuda_rng},
        }, self.checkpoint_path)

    def _save(self, force_callback: bool = False):
        self._write_checkpoint()
        self._write_json()
        # Redrawing figures takes ~0.5 s: at most every 20 s, and always at the end.
        now = time.monotonic()
        if self.on_check is not None and (force_callback or now - self._last_callback >= 20):
            self._last_callback = now
            try:
                self.on_check(self.run_dict())
            except Exception as err:  # a figure that fails to draw must not stop training
                tqdm.write(f"warning: the check callback failed ({type(err).__name__}: {err}); "
                           "training goes on", file=sys.stderr)

    def load_checkpoint(self) -> None:
        """Restore everything from `<run>.pt` (the `--resume` path)."""
        ckpt = read_checkpoint(self.checkpoint_path)
        if ckpt.get("format") != CHECKPOINT_FORMAT:
            raise UserError(f"{self.checkpoint_path} is not a checkpoint of this project's "
                            "Trainer; remove --resume to start again")
        old_model = ckpt.get("config", {}).get("model")
        if old_model != self.config.get("model"):
            raise UserError(f"{self.checkpoint_path} holds a run of {old_model!r}, not "
                            f"{self.config.get('model')!r}; check --run-name/--output-dir")
        # Flags that change the data or the optimisation must match the interrupted run's.
        # (--model picks which of task 2's runs to train; the run's own model is checked above.
        # A flag that one of the two runs does not know is not compared.)
        harmless = {"resume", "epochs", "patience", "device", "data_dir", "output_dir",
                    "no_progress", "debug", "plot_only", "model", "seeds"}
        old_args = ckpt.get("config", {}).get("args", {})
        new_args = self.config.get("args", {})
        changed = sorted(k for k in set(old_args) & set(new_args)
                         if k not in harmless and old_args[k] != new_args[k])
        if changed:
            raise UserError("--resume with other flags than the interrupted run's ("
                            + ", ".join(f"--{k.replace('_', '-')} was {old_args.get(k)}"
                                        for k in changed)
                            + "); resume with the same flags or start a new run", exit_code=2)
        try:
            self.model.load_state_dict(ckpt["model"])
            self.optimizer.load_state_dict(ckpt["optimizer"])
        except (RuntimeError, ValueError, KeyError) as err:
            raise UserError(f"{self.checkpoint_path} does not fit this model/optimizer "
                            f"({str(err).splitlines()[0]}); the flags differ from the "
                            "interrupted run's") from None
        t = ckpt["trainer"]
        self.epoch, self.batch_in_epoch, self.step = t["epoch"], t["batch_in_epoch"], t["step"]
        self.history, self.best_check = t["history"], t["best_check"]
        self.best_value, self.checks_since_best = t["best_value"], t["checks_since_best"]
        self.status, self.elapsed, self.final = t["status"], t["elapsed"], t["final"]
        self.best_state = ckpt["best_model"]
        self._reset_interval(t["loss_sum"], t["loss_count"])
        torch.set_rng_state(ckpt["rng"]["torch"])
        if self.device.type == "cuda" and ckpt["rng"]["cuda"]:
            torch.cuda.set_rng_state_all(ckpt["rng"]["cuda"])

    # ------------------------------------------------------------------ training
    def _train_step(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        with torch.autocast(self.device.type, dtype=self.autocast_dtype or torch.bfloat16,
                            enabled=self.autocast_dtype is not None):
            logits = self.model(images)
        loss = self.criterion(logits.float(), labels)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return loss.detach()

    def train_one_batch(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        """One optimizer step and its bookkeeping, all on the device (no read-back)."""
        loss = self._train_step(images, labels)
        self._loss_sum += loss
        self._loss_count += 1
        self._device_step += 1
        # Remember the first non-finite step without reading the loss back.
        self._first_bad_step = torch.where(
            (~torch.isfinite(loss)) & (self._first_bad_step < 0),
            self._device_step, self._first_bad_step)
        self.step += 1

    def _better(self, value: float) -> bool:
        if self.best_value is None or math.isnan(self.best_value):
            return not math.isnan(value)
        return value < self.best_value if self.stop_metric == "val_loss" else value > self.best_value

    def _check(self) -> bool:
        """Record one check; returns True when early stopping says stop."""
        train_loss = (self._loss_sum.item() / self._loss_count) if self._loss_count else float("nan")
        val_loss, val_acc = evaluate(self.model, self.val_batches, self.device.type, self.autocast_dtype)
        entry = {"epoch": round(self.step / len(self.train_batches), 4), "step": self.step,
                 "train_loss": train_loss, "val_loss": val_loss, "val_accuracy": val_acc}
        if self.train_eval_batches is not None:
            entry["train_eval_loss"], entry["train_accuracy"] = evaluate(
                self.model, self.train_eval_batches, self.device.type, self.autocast_dtype)
        entry["elapsed_s"] = round(self._elapsed_now(), 2)
        self.history.append(entry)
        value = entry[self.stop_metric]
        improved = self._better(value)
        if improved:
            self.best_value, self.best_check, self.checks_since_best = value, len(self.history) - 1, 0
            self.best_state = {k: v.detach().to("cpu", copy=True)
                               for k, v in self.model.state_dict().items()}
        else:
            self.checks_since_best += 1
        train_acc = entry.get("train_accuracy")
        tqdm.write(f"epoch {entry['epoch']:6.2f} | step {self.step:7d} | train loss {train_loss:7.4f}"
                   f" | val loss {val_loss:7.4f} | val acc {val_acc:6.4f}"
                   + (f" | train acc {train_acc:6.4f}" if train_acc is not None else "")
                   + f" | {format_duration(entry['elapsed_s']):>9}" + (" *" if improved else ""),
                   file=sys.stdout)
        self._reset_interval()
        return self.patience > 0 and self.checks_since_best >= self.patience

    def _raise_if_diverged(self):
        bad = int(self._first_bad_step.item())
        if bad < 0:
            return
        self.status = "diverged"
        self._finish()
        raise TrainingDiverged(
            f"the training loss became NaN or infinite at step {bad} (epoch "
            f"{bad / len(self.train_batches):.2f}) with learning rate {self._lr():g}; "
            f"lower --lr. The run so far and its best weights are in {self.json_path} and "
            f"{self.checkpoint_path}")

    def _handle_sigint(self, signum, frame):
        if self._interrupted:  # a second Ctrl-C: stop at once
            raise KeyboardInterrupt
        self._interrupted = True
        tqdm.write("Ctrl-C: stopping after this step and saving the run "
                   "(press again to quit without saving)", file=sys.stderr)

    def _stop_interrupted(self):
        self.status = "interrupted"
        self._save(force_callback=True)
        argv = [a for a in sys.argv if a != "--resume"]
        resume = " ".join(["python", *argv, "--resume"])
        raise TrainingInterrupted(
            f"interrupted at epoch {self.step / len(self.train_batches):.2f} (step {self.step}); "
            f"saved {self.json_path} and {self.checkpoint_path}. Resume with: {resume}")

    def train(self, resume: bool = False) -> dict:
        """Train (or continue, with resume=True), evaluate the best weights, return the run."""
        if resume:
            self.load_checkpoint()
            # An interrupted run goes on; a finished one goes on when --epochs was raised.
            if self.status == "interrupted" or (self.status == "finished" and self.epoch < self.epochs):
                self.status, self.final = "running", None
        self._session_start = time.perf_counter()
        previous = signal.signal(signal.SIGINT, self._handle_sigint) \
            if _in_main_thread() else None
        try:
            if self.status == "running":
                self._train_loop()
            if self.final is None:
                self._finish()
            return self.run_dict()
        finally:
            if previous is not None:
                signal.signal(signal.SIGINT, previous)

    def _train_loop(self):
        n_batches = len(self.train_batches)
        self.model.train()
        last_postfix = time.monotonic()
        while self.epoch < self.epochs:
            if hasattr(self.train_batches, "set_epoch"):
                self.train_batches.set_epoch(self.epoch)
            start = self.batch_in_epoch
            if hasattr(self.train_batches, "iter_from"):
                batches = self.train_batches.iter_from(start)
            else:
                batches = itertools.islice(iter(self.train_batches), start, None)
            bar = tqdm(total=n_batches, initial=start, desc=f"epoch {self.epoch + 1}/{self.epochs}",
                       unit="batch", leave=False, disable=not self.progress, dynamic_ncols=True)
            stop = False
            for images, labels in batches:
                self.train_one_batch(images, labels)
                self.batch_in_epoch += 1
                bar.update()
                now = time.monotonic()
                if now - last_postfix > 1.0:  # at most one read-back a second
                    last_postfix = now
                    self._raise_if_diverged()
                    if self._loss_count:
                        bar.set_postfix(loss=f"{self._loss_sum.item() / self._loss_count:.4f}")
                if self.batch_in_epoch % self.check_every == 0:
                    self._raise_if_diverged()
                    stop = self._check()
                    self.model.train()
                    if self.batch_in_epoch == n_batches:
                        self.epoch, self.batch_in_epoch = self.epoch + 1, 0
                    if stop:
                        self.status = "early_stopped"
                    self._save()
                    if stop:
                        break
                if self._interrupted:
                    bar.close()
                    self._stop_interrupted()
            bar.close()
            self._raise_if_diverged()
            if stop:
                return
            if self.batch_in_epoch:  # the epoch ended between checks
                self.epoch, self.batch_in_epoch = self.epoch + 1, 0
        self.status = "finished"

    def _finish(self):
        """Evaluate the best weights on train/val/test and write the final run."""
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state)
        final = {}
        for split, batches in (("train", self.train_full_batches), ("val", self.val_batches),
                               ("test", self.test_batches)):
            if batches is not None:
                loss, acc, *matrix = evaluate(self.model, batches, self.device.type,
                                              self.autocast_dtype, confusion=split == "test")
                final[split] = {"loss": loss, "accuracy": acc}
                if matrix:  # the test split: which classes the model confuses
                    final[split]["per_class_accuracy"] = [
                        row[k] / sum(row) if sum(row) else None
                        for k, row in enumerate(matrix[0])]
                    final[split]["confusion_matrix"] = matrix[0]
        if self.best_check is not None:
            best = self.history[self.best_check]
            final["best_epoch"], final["best_step"] = best["epoch"], best["step"]
        self.final = final
        self._save(force_callback=True)


def _in_main_thread() -> bool:
    import threading
    return threading.current_thread() is threading.main_thread()


def check_resume(args, output_dir: Path | str, run_names: Iterable[str]) -> None:
    """Before anything is loaded: --resume needs at least one of the command's checkpoints."""
    if not args.resume:
        return
    paths = [Path(output_dir) / f"{name}.pt" for name in run_names]
    if not any(p.is_file() for p in paths):
        raise UserError(f"--resume: no checkpoint to resume ({', '.join(map(str, paths))}); "
                        "run without --resume to start training", exit_code=2)


def fit(model: nn.Module, optimizer: torch.optim.Optimizer, data, args, *, run_name: str,
        config: dict, device: torch.device, autocast_dtype: torch.dtype | None,
        stop_metric: str | None = None, patience: int | None = None,
        epochs: int | None = None, on_check: Callable[[dict], None] | None = None) -> dict:
    """Train `model` on `data` (anything with train/val/test/train_eval/train_full batches)
    with the common flags in `args`; the run goes to `<args.output_dir>/<run_name>.json/.pt`.
    stop_metric/patience/epochs default to args.early_stop_metric/args.patience/args.epochs.
    """
    epochs = epochs or args.epochs
    stop_metric = stop_metric or args.early_stop_metric
    patience = args.patience if patience is None else patience
    run_path = Path(args.output_dir) / run_name
    resume = args.resume
    if resume and not (run_path.parent / f"{run_name}.pt").is_file():
        # The command had other runs to resume (check_resume); this one had not started yet.
        print(f"{run_name}: no checkpoint to resume, it starts from the beginning")
        resume = False
    trainer = Trainer(model, optimizer, data.train, data.val, test=data.test,
                      train_eval=data.train_eval, train_full=data.train_full,
                      epochs=epochs, patience=patience, stop_metric=stop_metric,
                      device=device, autocast_dtype=autocast_dtype, run_path=run_path,
                      config=config, progress=not args.no_progress, on_check=on_check)
    print(f"{run_name}: {len(data.train)} batches/epoch, a check every {trainer.check_every} "
          f"steps, up to {epochs} epochs, early stop on {stop_metric} after "
          f"{patience or 'no'} checks without a new best"
          + (" (resuming)" if resume else ""))
    run = trainer.train(resume=resume)
    final = run["final"]
    print(f"{run_name}: best check at epoch {final.get('best_epoch', float('nan')):.2f} -> "
          + ", ".join(f"{s} loss {final[s]['loss']:.4f} acc {final[s]['accuracy']:.4f}"
                      for s in ("train", "val", "test") if s in final)
          + f" ({format_duration(run['timings']['train_s'])}, {run['status']})")
    return run
