"""Tables and facts from saved runs, as `Table` data (Markdown and LaTeX alike): the final
numbers beside the original report's (1b, 2b, 3a), the training details (2a, 3a), per-class
accuracy and the most confused pairs, the handout's 10-epoch bar, the best Task 2 model and
why, and what makes a run a quick look.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

import runrecord
from recipes import BAR_ACCURACY, BAR_EPOCHS, RECIPES
from runrecord import Run, RunGroup, mean_std, predates_test_curve, spread_note
from tables import Table, to_markdown


# --------------------------------------------------------------------------- quick looks
def _typed(run: dict | Run) -> Run:
    """A run as read from its file (the task scripts hand those) or a Run, as a Run."""
    if isinstance(run, Run):
        return run
    return Run.from_dict(run, Path(f"{(run.get('config') or {}).get('model', 'run')}.json"))


def runs_in(run_or_runs) -> list[Run]:
    """One run or a group of seeds (dicts as read, Runs or a RunGroup) as a list of Runs."""
    return [_typed(r) for r in group_of(run_or_runs)]


def quick_look(run: dict) -> str | None:
    """What makes a run a quick look, not comparable with the original report ('--subset 300,
    1 of 10 epochs'), or None (`Run.quick_look`)."""
    return _typed(run).quick_look


def quick_look_note(runs: Iterable[dict]) -> str | None:
    """'quick look (--subset 300, 1 of 10 epochs)' when any of `runs` is one, else None
    (runrecord's wording)."""
    return runrecord.quick_look_note([_typed(r) for r in runs])


def format_mean_std(values: Sequence[float | None], digits: int = 3) -> str:
    """'-' for no value, the value for one, 'mean ± sample standard deviation' for several
    (runrecord.mean_std; None values skipped)."""
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    mean, std = mean_std(values)
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


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


def best_val_accuracy(run_or_runs) -> float | None:
    """The validation accuracy of a model's best checkpoints (mean over its seeds): from the
    final evaluation, else the best check of a run still going."""
    values = []
    for run in runs_in(run_or_runs):
        final = run.accuracy("val")
        checks = [h["val_accuracy"] for h in run.history if h.get("val_accuracy") is not None]
        value = final if final is not None else (max(checks) if checks else None)
        if value is not None:
            values.append(value)
    return float(np.mean(values)) if values else None


def best_model(models: dict, chosen: str | None = None) -> tuple[str, str]:
    """(label, why) of the Task 2 model that 2c, 2d and 3d show: `chosen` (a label, from
    --best-model), else the one whose best checkpoints have the best validation accuracy.
    `why` says which and by how much, for titles and REPORT.md."""
    scores = {label: best_val_accuracy(runs) for label, runs in models.items()}
    known = {label: v for label, v in scores.items() if v is not None}
    if chosen is not None and chosen not in models:
        raise ValueError(f"{chosen} has no run here (have: {', '.join(models) or 'none'})")
    label = chosen or (max(known, key=known.get) if known else next(iter(models)))
    others = "; ".join(f"{other}: {v:.4f}" for other, v in known.items() if other != label)
    value = f"{known[label]:.4f}" if label in known else "-"
    why = ("chosen with --best-model" if chosen else "the best validation accuracy") + \
        f": {value}" + (f" against {others}" if others else "")
    return label, why


def training_details(run_or_runs) -> str:
    """`training_data` in Markdown."""
    return to_markdown(training_data(run_or_runs))


def training_data(run_or_runs, title: str = "") -> Table:
    """Task 2a's (and 3a's) training details of a model, from its run config (several seeds:
    the first's, with every seed named): a table of everything needed to train it again."""
    group = runs_in(run_or_runs)
    config, args, data, model = group[0].config, group[0].args, group[0].data, group[0].model

    recipe = RECIPES.get(model)

    def setting(name, flag=None):  # older runs kept some only among the flags, or not at all
        for value in (config.get(name), args.get(flag or name),
                      getattr(recipe, name, None) if name in ("optimizer",) else None):
            if value is not None:
                return value
        return None

    patience, epochs, metric = setting("patience"), setting("epochs"), \
        setting("stop_metric", "early_stop_metric")
    lr, batch_size = setting("lr"), setting("batch_size")
    momentum, decay = config.get("momentum"), config.get("weight_decay")
    optimizer = {"SGD": "SGD, " + (f"{'Nesterov ' if config.get('nesterov') else ''}momentum "
                                   f"{momentum:g}" if momentum else "no momentum"),
                 "Adam": "Adam, betas (0.9, 0.999), eps 1e-8"}.get(
        setting("optimizer"), str(setting("optimizer")))
    rate = f"{lr:g}" if lr else "?"
    if config.get("schedule") == "one-cycle":
        rate = (f"{rate} at the peak of a one-cycle schedule stepped every batch: linear "
                f"warm-up from {lr / 10:g} over the first 20 % of the steps, then linear decay "
                f"to {lr / 1e4:g} at the last")
    rows = [("optimizer", optimizer + (f", weight decay {decay:g}" if decay else
                                       ", no weight decay")),
            ("learning rate", rate),
            ("batch size", str(batch_size or "?")),
            ("epochs", f"{epochs or '?'}, the checkpoint with the best "
                       + ("validation accuracy" if metric == "val_accuracy" else "validation loss")
                       + (f"; early stop after {patience} checks (two an epoch) without a new "
                          "best" if patience else "; no early stopping")),
            ("weight initialisation", _initialisation(model, config, args)),
            ("regularisation", _regularisation(model, config, args)),
            ("loss", "cross-entropy on the logits (its softmax is the tables' Softmax)"),
            ("data", _data_details(config, data)),
            ("precision, device", f"{config.get('precision', '?')}, {config.get('device', '?')}"),
            ("seeds", ", ".join(str("?" if r.seed is None else r.seed) for r in group))]
    return Table(["setting", "value"], [list(r) for r in rows], title=title)


def _initialisation(model: str | None, config: dict, args: dict) -> str:
    if model == "resnet18":
        return (f"{weights_label(config)}; the new 512->10 fc: PyTorch's default; trains "
                f"{', '.join(config.get('train_stages') or ['?'])}, the rest frozen (their "
                "BatchNorm statistics too)")
    if args.get("init") == "xavier":
        return ("Xavier uniform for the convolution weights, zero convolution biases; "
                "PyTorch's default for the rest")
    return "PyTorch's default"


def _regularisation(model: str | None, config: dict, args: dict) -> str:
    extra = (f"weight decay {config['weight_decay']:g}" if config.get("weight_decay")
             else "no weight decay") + ", " + \
        ("random crops (zero padding 4) and horizontal flips of the training images"
         if config.get("augment") else "no data augmentation")
    model = (model or "").removesuffix("-10ep")  # the same architectures
    if model == "model22":
        return (f"Dropout2d p = {args.get('dropout', '?')} after the second convolution of "
                f"each block; BatchNorm after every convolution and the first dense layer; {extra}")
    if model == "model21":
        return f"BatchNorm after every convolution; no dropout; {extra}"
    return f"none; {extra}"


def _data_details(config: dict, data: dict) -> str:
    split = (f"{data['n_train']:,} train / {data.get('n_val', 0):,} validation (seeded) / "
             f"{data.get('n_test', 0):,} test images" if data.get("n_train") is not None
             else "?")
    mean, std = data.get("mean"), data.get("std")
    norm = (f"normalised with mean ({', '.join(f'{m:g}' for m in mean)}) and std "
            f"({', '.join(f'{v:g}' for v in std)})" if mean and std else "normalised")
    size = data.get("image_size") or 32
    resize = (f", upsampled to {size}x{size} ({data.get('resize_mode')})" if size != 32 else "")
    kernel = (config.get("args") or {}).get("kernel_size")
    return split + "; " + norm + resize + (f"; {kernel}x{kernel} kernels" if kernel else "")


# The handout's bar for Task 2: "at least 75 % test accuracy within 10 epochs".


def at_epoch(run: dict | Run, key: str = "test_accuracy", epochs: float = BAR_EPOCHS
             ) -> tuple[float, float] | None:
    """(epoch, value) of `key` at the last check at or before `epochs` that recorded it."""
    checks = [(h["epoch"], h[key]) for h in _typed(run).history
              if h.get(key) is not None and h["epoch"] <= epochs + 1e-9]
    return checks[-1] if checks else None


def bar_cells(run_or_runs) -> tuple[str, str, str]:
    """A model against the handout's bar, as measured: (its test accuracy at the last check at
    or before epoch 10, from the test curve, several seeds: their mean ± sample standard
    deviation; that epoch; the
    verdict), never a number from a later or a chosen check. Without a test curve: the
    validation accuracy there instead, said so."""
    group = runs_in(run_or_runs)
    tests = [at_epoch(r) for r in group]
    seeds = f" ({len(group)} seeds)" if len(group) > 1 else ""
    if not any(tests):
        vals = [v for v in (at_epoch(r, "val_accuracy") for r in group) if v]
        return (f"not recorded: {predates_test_curve(len(group))}"
                + (f" (validation accuracy {format_mean_std([v for _, v in vals], 4)}{seeds})"
                   if vals else ""), f"{vals[-1][0]:.1f}" if vals else "-", "not measured")
    measured = [t for t in tests if t]
    short = [r for r in group if r.history and r.last_epoch < BAR_EPOCHS - 0.01
             and r.status != "running"]
    reached = sum(v >= BAR_ACCURACY for _, v in measured)
    verdict = ("reaches" if reached == len(measured) else "misses" if not reached else
               f"reaches it in {reached} of {len(measured)} seeds,")
    verdict += (f" the handout's bar of {BAR_ACCURACY:.2f}"
                + (f" ({len(group) - len(measured)} seed(s) without a test curve)"
                   if len(measured) < len(group) else "")
                + (f"; {'its runs' if len(group) > 1 else 'it'} trained "
                   f"{max(r.last_epoch for r in short):.0f} epochs only"
                   if short else ""))
    return (f"{format_mean_std([v for _, v in measured], 4)}{seeds}",
            f"{max(e for e, _ in measured):.1f}", verdict)


def bar_data(models: dict, title: str = "") -> Table:
    """The handout's bar for Task 2, one row per model (`bar_cells`)."""
    note = spread_note([len(runs_in(group)) for group in models.values()])
    return Table(["model", f"test accuracy within {BAR_EPOCHS} epochs", "at epoch", "verdict"],
                 [[label, *bar_cells(group)] for label, group in models.items()], title=title,
                 notes=[note] if note else [])


def ten_epoch_line(label: str, run_or_runs) -> str:
    """`bar_cells` as one console line."""
    accuracy, epoch, verdict = bar_cells(run_or_runs)
    if verdict == "not measured":
        return (f"{label}: test accuracy within {BAR_EPOCHS} epochs {accuracy}"
                .replace(" (validation accuracy", f" (validation accuracy at epoch {epoch}:"))
    return (f"{label}: test accuracy {accuracy} at epoch {epoch} (the last check at or before "
            f"epoch {BAR_EPOCHS}): {verdict}")


def final_data(runs: dict[str, dict | list[dict]], reference: dict[str, dict] | None = None,
               title: str = "") -> Table:
    """The Task 2.2-style table (test/val/train loss and accuracy per run).

    A value of `runs` may be a list of runs (seeds): its cells are 'mean ± sample standard
    deviation', said in the table's note.
    `reference` rows (the original report's numbers) are added below ours with '(report)'
    after the name; a missing value prints as '-'.
    """
    cols = [("test", "loss"), ("test", "accuracy"), ("val", "loss"), ("val", "accuracy"),
            ("train", "loss"), ("train", "accuracy")]
    header = ["model"] + [f"{s} {'acc' if m == 'accuracy' else m}" for s, m in cols]

    rows = []
    for name, run in runs.items():
        group = runs_in(run)
        note = runrecord.quick_look_note(group)
        rows.append([name + (f" ({len(group)} seeds)" if len(group) > 1 else "")
                     + (f", {note}" if note else "")]
                    + [format_mean_std([getattr(r.final.get(s), m, None) for r in group], 3)
                       for s, m in cols])
    for name, final in (reference or {}).items():  # the original report's, from recipes.py
        rows.append([f"{name} (report)"] + [format_mean_std([final.get(s, {}).get(m)], 3)
                                            for s, m in cols])
    note = spread_note([len(runs_in(run)) for run in runs.values()])
    return Table(header, rows, title=title, notes=[note] if note else [])


def final_table(runs: dict[str, dict | list[dict]],
                reference: dict[str, dict] | None = None) -> tuple[str, str]:
    """`final_data` as (fixed-width text, Markdown)."""
    table = final_data(runs, reference)
    rows, header = table.rows, table.header
    w0 = max(len(r[0]) for r in rows + [header])
    w = max(len(c) for r in rows + [header] for c in r[1:]) + 2
    text = "\n".join(f"{r[0]:<{w0}}" + "".join(f"{c:>{w}}" for c in r[1:]) for r in [header] + rows)
    return "\n".join([text, *table.notes]), to_markdown(table)


def group_of(run_or_runs) -> list:
    """One run or a group of seeds as a list."""
    if isinstance(run_or_runs, (list, tuple, RunGroup)):
        return list(run_or_runs)
    return [run_or_runs]


def confusion_counts(run_or_runs) -> tuple[np.ndarray | None, int]:
    """The test confusion matrix (row = true class, column = predicted), summed over the
    runs that recorded one, and how many did; (None, 0) when none did."""
    matrices = [np.asarray(r.confusion, dtype=np.int64) for r in runs_in(run_or_runs)
                if r.confusion]
    if not matrices:
        return None, 0
    return np.sum(matrices, axis=0), len(matrices)


def most_confused(counts: np.ndarray, classes: Sequence[str], n: int = 3
                  ) -> list[tuple[str, str, int, float]]:
    """The `n` largest off-diagonal cells: (true, predicted, count, share of the true class);
    ties by class order."""
    totals = counts.sum(axis=1)
    cells = [(-int(counts[i, j]), i, j) for i in range(len(classes))
             for j in range(len(classes)) if i != j and counts[i, j] > 0]
    return [(classes[i], classes[j], -c, -c / totals[i] if totals[i] else float("nan"))
            for c, i, j in sorted(cells)[:n]]


def per_class_data(runs: dict[str, dict | Sequence[dict]],
                   classes: Sequence[str] | None = None, title: str = "") -> Table:
    """Per-class test accuracy, one row per class and one column per model (several seeds:
    mean ± sample standard deviation, said in the table's note), '-' where a run has no
    per-class data; a last row with the overall test accuracy."""
    if classes is None:
        from dataloaders import CLASSES as classes
    groups = {label: runs_in(group) for label, group in runs.items()}
    header = ["class"] + [label + (f" ({len(g)} seeds)" if len(g) > 1 else "")
                          for label, g in groups.items()]
    rows = [[name] + [format_mean_std(
        [(r.per_class or [None] * len(classes))[k] for r in g], digits=3)
        for g in groups.values()] for k, name in enumerate(classes)]
    rows.append(["**all (test accuracy)**"] + [
        format_mean_std([r.accuracy("test") for r in g], digits=3) for g in groups.values()])
    note = spread_note([len(g) for g in groups.values()])
    return Table(header, rows, title=title, notes=[note] if note else [])


def confused_data(runs: dict[str, dict | Sequence[dict]],
                  classes: Sequence[str] | None = None, title: str = "") -> Table:
    """Each model's three most confused (true -> predicted) pairs, from the confusion counts
    summed over its seeds."""
    if classes is None:
        from dataloaders import CLASSES as classes
    rows = []
    for label, group in runs.items():
        group = runs_in(group)
        counts, n_runs = confusion_counts(group)
        if counts is None:
            why = ("no final evaluation in its run file yet (status "
                   + ", ".join(sorted({r.status for r in group})) + ")"
                   if not any(r.finished for r in group)
                   else "no per-class data (the run predates it)")
            rows.append([label, why, None, None])
            continue
        summed = f" (summed over {n_runs} seeds)" if n_runs > 1 else ""
        rows += [[label + summed, f"{t} -> {p}", f"{c:,}", f"{s:.1%}"]
                 for t, p, c, s in most_confused(counts, classes)]
    return Table(["model", "true -> predicted", "test images", "share of the true class"],
                 rows, title=title)


def per_class_table(runs: dict[str, dict | Sequence[dict]],
                    classes: Sequence[str] | None = None) -> str:
    """`per_class_data` and `confused_data` in Markdown."""
    return (to_markdown(per_class_data(runs, classes)) + "\n"
            + to_markdown(confused_data(runs, classes,
                                        "Most confused (true -> predicted)")))
