"""Evaluating a model: mean cross-entropy, accuracy and the confusion matrix over batches,
in eval() mode under inference_mode; and what the Trainer measures at a check and at the end.
"""
from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import nn

from training.steps import autocast


def evaluate(model: nn.Module, batches: Iterable, device_type: str,
             autocast_dtype: torch.dtype | None = None, *,
             confusion: bool = False) -> tuple[float, float] | tuple[float, float, list]:
    """Mean cross-entropy and accuracy of `model` over `batches`, in eval() mode.

    Sums stay on the device, in fp32 whatever the autocast dtype; one read-back at the end.
    With confusion=True also the confusion matrix (a list of rows: row = true class,
    column = predicted class).
    """
    was_training = model.training
    model.eval()
    loss_sum = correct = counts = None
    count = 0
    with torch.inference_mode(), autocast(device_type, autocast_dtype):
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
        n_classes = round(counts.numel() ** 0.5)
        result += (counts.view(n_classes, n_classes).tolist(),)
    return result


class Evaluator:
    """What a check and the final evaluation measure, each in eval() mode.

    At a check: validation loss and accuracy, test loss and accuracy (`test_curve`: True at
    every check, the handout's curves; "last": at the run's last check only, the last
    weights' test accuracy; False: never; recorded, never used to choose anything), and
    train loss and accuracy on a fixed subset (`train_eval`). At the end: loss and accuracy on the whole training
    (`train_full`), validation and test splits, the test split also per class with its
    confusion matrix."""

    def __init__(self, model: nn.Module, device: torch.device, autocast_dtype: torch.dtype | None,
                 val: Iterable, test: Iterable | None = None, train_eval: Iterable | None = None,
                 train_full: Iterable | None = None, test_curve: bool | str = True):
        self.model, self.device_type, self.autocast_dtype = model, device.type, autocast_dtype
        self.val, self.test, self.train_eval, self.train_full = val, test, train_eval, train_full
        self.test_curve = test_curve

    def _evaluate(self, batches, **kwargs):
        return evaluate(self.model, batches, self.device_type, self.autocast_dtype, **kwargs)

    def check(self) -> dict:
        entry = dict(zip(("val_loss", "val_accuracy"), self._evaluate(self.val)))
        if self.test_curve is True:
            entry.update(self.check_test())
        if self.train_eval is not None:
            entry["train_eval_loss"], entry["train_accuracy"] = self._evaluate(self.train_eval)
        return entry

    def check_test(self) -> dict:
        """The test split's loss and accuracy at a check (none without a test split)."""
        if self.test is None:
            return {}
        return dict(zip(("test_loss", "test_accuracy"), self._evaluate(self.test)))

    def final(self) -> dict:
        final = {}
        for split, batches in (("train", self.train_full), ("val", self.val),
                               ("test", self.test)):
            if batches is not None:
                loss, acc, *matrix = self._evaluate(batches, confusion=split == "test")
                final[split] = {"loss": loss, "accuracy": acc}
                if matrix:  # the test split: which classes the model confuses
                    final[split]["per_class_accuracy"] = [
                        row[k] / sum(row) if sum(row) else None
                        for k, row in enumerate(matrix[0])]
                    final[split]["confusion_matrix"] = matrix[0]
        return final
