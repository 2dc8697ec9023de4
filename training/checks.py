"""What a check decides and shows: which check is best and whether to stop early
(`EarlyStopping`), the console line of a check (`format_check`) and the one way a duration is
written (`format_duration`).
"""
from __future__ import annotations

import math

from torch import nn


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


def format_duration(seconds: float) -> str:
    """1m05s, or 1h02m05s."""
    seconds = round(seconds)
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"
