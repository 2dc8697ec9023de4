"""A run as the reporting side reads it: `Run`, made once from a run JSON (final numbers per
split, seed, history, test curve or not, quick look or not, provenance), and `RunGroup`, the
seeds of one recipe (mean ± sample standard deviation of the final numbers, per class).

Every table and figure takes these, never the raw dict: a run file of the wrong shape is one
line naming the file, here, when it is loaded.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from statistics import mean
from typing import Any

from training.errors import UserError
from training.recipes import default_epochs

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Final:
    """The best checkpoint's numbers on one split (None: not measured)."""
    loss: float | None = None
    accuracy: float | None = None


@dataclass
class Run:
    path: Path
    name: str
    config: dict
    status: str
    history: list[dict]
    final: dict[str, Final]            # split -> Final; empty while the run has not finished
    per_class: list[float] | None      # test accuracy per class
    confusion: list[list[int]] | None  # test confusion counts, rows true, columns predicted
    seed: int | None
    best_epoch: float | None
    best_check: int | None             # the history entry of the best checkpoint
    train_seconds: float | None
    raw: dict = field(repr=False, default_factory=dict)

    # ------------------------------------------------------------------ reading
    @classmethod
    def load(cls, path: Path | str) -> Run:
        """A run JSON as a Run; a missing, unreadable or wrongly shaped file is a UserError
        naming it."""
        path = Path(path)
        if not path.is_file():
            raise UserError(f"no saved run at {path}")
        try:
            data = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise UserError(f"{path} is not a valid run JSON; rerun the task that writes it"
                            ) from None
        return cls.from_dict(data, path)

    @classmethod
    def from_dict(cls, data: Any, path: Path | str) -> Run:
        path = Path(path)

        def wrong(what: str) -> UserError:
            return UserError(f"{path} is not a run written by this project ({what})")

        if not isinstance(data, dict) or not isinstance(data.get("history"), list):
            raise UserError(f"{path} has no 'history' list; it is not a run written by this "
                            "project")
        if not all(isinstance(h, dict) for h in data["history"]):
            raise wrong("a 'history' entry is not an object")
        config = {} if data.get("config") is None else data["config"]
        final = {} if data.get("final") is None else data["final"]
        if not isinstance(config, dict) or not isinstance(final, dict):
            raise wrong("'config' and 'final' must be objects")
        splits = {}
        for split in SPLITS:
            numbers = final.get(split)
            if numbers is None:
                continue
            if not isinstance(numbers, dict) or not all(
                    isinstance(numbers.get(k), (int, float, type(None)))
                    for k in ("loss", "accuracy")):
                raise wrong(f"'final.{split}' must hold numbers 'loss' and 'accuracy'")
            splits[split] = Final(numbers.get("loss"), numbers.get("accuracy"))
        test = final.get("test") or {}
        return cls(path=path, name=path.name.removesuffix(".json"), config=config,
                   status=str(data.get("status", "?")), history=data["history"],
                   final=splits, per_class=test.get("per_class_accuracy"),
                   confusion=test.get("confusion_matrix"), seed=config.get("seed"),
                   best_epoch=final.get("best_epoch"), best_check=data.get("best_check"),
                   train_seconds=(data.get("timings") or {}).get("train_s"), raw=data)

    # ------------------------------------------------------------------ what it is
    def accuracy(self, split: str = "test") -> float | None:
        return self.final[split].accuracy if split in self.final else None

    def loss(self, split: str = "test") -> float | None:
        return self.final[split].loss if split in self.final else None

    @property
    def finished(self) -> bool:
        return bool(self.final)

    @property
    def model(self) -> str | None:
        return self.config.get("model")

    @property
    def epochs(self) -> int | None:
        return self.config.get("epochs") or self.args.get("epochs")

    @property
    def args(self) -> dict:
        return self.config.get("args") or {}

    @property
    def experiment(self) -> dict | None:
        """A Task 2e run's variant, its baseline and what it changes (task2_experiments.py);
        None for every other run."""
        return self.config.get("experiment") or None

    @property
    def parameters(self) -> int | None:
        """The model's parameters, as the run recorded them."""
        return self.config.get("parameters")

    @property
    def stop_metric(self) -> str:
        """What picked the run's best checkpoint (val_loss unless it recorded another)."""
        return self.config.get("stop_metric", "val_loss")

    @property
    def pretrained_source(self) -> str | None:
        """A ResNet18 run's weights: "imagenet" when they were torchvision's ImageNet file."""
        return self.config.get("pretrained_source")

    @property
    def has_test_curve(self) -> bool:
        return any(h.get("test_accuracy") is not None for h in self.history)

    @property
    def last_epoch(self) -> float:
        return self.history[-1].get("epoch", 0.0) if self.history else 0.0

    @property
    def quick_look_parts(self) -> list[str]:
        """What makes this run a quick look (trained on a --subset, or for fewer epochs than
        its task's default), read from its config alone; empty when it is a full run."""
        parts = []
        if self.args.get("subset") is not None:
            parts.append(f"--subset {self.args['subset']}")
        default = default_epochs(self.config)
        if self.epochs is not None and default is not None and self.epochs < default:
            parts.append(f"{self.epochs} of {default} epochs")
        return parts

    @property
    def quick_look(self) -> str | None:
        return ", ".join(self.quick_look_parts) or None

    # ------------------------------------------------------------------ provenance
    @property
    def command(self) -> str | None:
        return self.config.get("command")

    @property
    def environment(self) -> dict:
        return self.config.get("environment") or {}

    @property
    def device(self) -> str:
        """'cuda (NVIDIA H200)' or 'cpu (2 threads)'."""
        env, threads = self.environment, self.threads
        return self.device_type + (
            f" ({env['gpu']})" if env.get("gpu") else
            f" ({threads} thread{'' if threads == 1 else 's'})")

    @property
    def device_type(self) -> str:
        """The device the run trained on as its config records it: 'cpu', 'cuda', ..."""
        return str(self.config.get("device", "?"))

    @property
    def threads(self) -> int | str:
        """The CPU threads the run had ('?' when it recorded none)."""
        return self.environment.get("threads", "?")

    @property
    def cpu(self) -> str | None:
        """The CPU's model name the run started on (runs before 2026-12-06 did not record it)."""
        return self.environment.get("cpu")

    @property
    def resumed_on(self) -> list[dict]:
        """The environments of resumes on another CPU or thread count, in order."""
        return list(self.config.get("resumed_on") or [])

    @property
    def figure_prefix(self) -> str | None:
        return self.raw.get("figure_prefix") or self.config.get("figure_prefix")

    @property
    def precision(self) -> str:
        return str(self.config.get("precision", "?"))

    @property
    def torch_version(self) -> str:
        return str(self.environment.get("torch", "?"))

    @property
    def data(self) -> dict:
        return self.config.get("data") or {}

    @property
    def data_kind(self) -> str | None:
        return self.data.get("kind")

    @property
    def started(self) -> str | None:
        """The start time the run recorded (ISO 8601), or None."""
        return self.config.get("started")

    @property
    def code_version(self) -> str | None:
        """'abc1234' or 'abc1234 (uncommitted changes)' from the config's `code`, or None for
        runs that predate it."""
        code = self.config.get("code")
        if not isinstance(code, dict) or not code.get("commit"):
            return None
        return str(code["commit"])[:7] + (" (uncommitted changes)" if code.get("dirty") else "")


def weights_label(config: dict) -> str:
    """A short label for figure titles: which weights a ResNet18 run or model started from.

    "NOT ImageNet": the file's SHA-256 is not that of torchvision's IMAGENET1K_V1 file."""
    if config.get("pretrained_source") == "imagenet":
        return "ImageNet weights (IMAGENET1K_V1)"
    return f"weights: {weights_file_name(config) or '?'}, NOT ImageNet"


def weights_file_name(config: dict) -> str:
    """The file name of the weights a ResNet18 run started from, '' when it recorded none."""
    weights = config.get("weights_file") or config.get("weights")
    return Path(str(weights)).name if weights else ""


def predates_test_curve(n_runs: int) -> str:
    """The one wording of runs without a test curve (made before checks recorded the test
    split): 'the run predates the test curve'."""
    return f"the run{'s predate' if n_runs != 1 else ' predates'} the test curve"


def no_test_curve(runs: Sequence[Run]) -> str | None:
    """Whether `runs` (a model's seeds) lack the test curve, decided here once: when none of
    them recorded the test split at a check (runs made before checks did), the one wording of
    it (`predates_test_curve`); None when one did, or there are no runs."""
    if not runs or any(r.has_test_curve for r in runs):
        return None
    return predates_test_curve(len(runs))


def quick_look_note(runs: Sequence[Run]) -> str | None:
    """'quick look (--subset 300, 1 of 10 epochs)' when any of `runs` is one (each reason
    once), else None: the one wording of a quick look."""
    parts = list(dict.fromkeys(p for r in runs for p in r.quick_look_parts))
    return f"quick look ({', '.join(parts)})" if parts else None


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """The mean of `values` and their sample standard deviation: the root of the sum of
    squared deviations from the mean divided by n - 1 (numpy's ddof=1; 0 for one value). The
    one mean ± standard deviation of the project: every "±" of the tables and REPORT, every
    band of the figures and every interval over seeds is computed here."""
    n = len(values)
    if n < 2:
        return mean(values), 0.0
    centre = sum(values) / n
    return mean(values), (sum((v - centre) ** 2 for v in values) / (n - 1)) ** 0.5


def format_mean_std(values: Sequence[float | None], digits: int = 3) -> str:
    """'-' for no value, the value for one, 'mean ± sample standard deviation' for several
    (`mean_std`; None values skipped): the one way it is written."""
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    mean, std = mean_std(values)
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def spread_note(counts: Sequence[int]) -> str | None:
    """The note under a table whose cells show "mean ± spread" over seeds, `counts` being
    the numbers of seeds of those cells: 'Mean ± sample standard deviation over 3 seeds.';
    None when no cell has several seeds."""
    counts = sorted({n for n in counts if n > 1})
    if not counts:
        return None
    seeds = (f"{counts[0]} seeds" if len(counts) == 1 else
             ", ".join(map(str, counts[:-1])) + f" or {counts[-1]} seeds (as each row says)")
    return f"Mean ± sample standard deviation over {seeds}."


@dataclass
class RunGroup:
    """The runs of one recipe (its seeds), in the order of their seeds: a sequence of Runs, as
    every table and figure takes a model's runs."""
    name: str
    runs: list[Run]

    def __len__(self) -> int:
        return len(self.runs)

    def __iter__(self):
        return iter(self.runs)

    def __getitem__(self, index: int) -> Run:
        return self.runs[index]

    def __bool__(self) -> bool:
        return bool(self.runs)

    @property
    def first(self) -> Run:
        return self.runs[0]

    def values(self, split: str = "test", metric: str = "accuracy") -> list[float | None]:
        return [getattr(r.final[split], metric) if split in r.final else None for r in self.runs]

    def mean_std(self, split: str = "test", metric: str = "accuracy"
                 ) -> tuple[float, float] | None:
        """Over the runs that measured it; None when none did."""
        values = [v for v in self.values(split, metric) if v is not None]
        return mean_std(values) if values else None

    def per_class(self) -> list[tuple[float, float]] | None:
        """(mean, sample standard deviation) of each class's test accuracy over the runs that
        recorded it."""
        rows = [r.per_class for r in self.runs if r.per_class]
        return [mean_std(list(col)) for col in zip(*rows)] if rows else None

    @property
    def quick_look(self) -> str | None:
        return quick_look_note(self.runs)

    @property
    def unfinished(self) -> list[Run]:
        return [r for r in self.runs if not r.finished]
